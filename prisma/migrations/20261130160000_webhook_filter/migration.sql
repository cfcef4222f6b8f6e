-- Payload filters: conditions on an event's data, applied by the outbox's
-- matching statement (packages/db/src/outbox.ts, MATCH_SQL). NULL = no filter.
-- Adding a nullable column without a default rewrites nothing.
ALTER TABLE "webhooks" ADD COLUMN "filter" JSONB;
