-- Custom headers of a webhook (docs/api.md, "Custom headers"): the JSON map, encrypted with ENCRYPTION_KEY.
ALTER TABLE "webhooks" ADD COLUMN "custom_headers_enc" TEXT;
