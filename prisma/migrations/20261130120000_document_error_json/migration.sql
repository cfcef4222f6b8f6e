-- A failed document's error may be a string or an object such as {"code","message"}:
-- it is passed on unchanged in the callback's data.error. Existing text errors
-- become JSON strings, so every stored error still reads back as it was sent.
ALTER TABLE "extraction_documents" ALTER COLUMN "error" TYPE JSONB USING to_jsonb("error");
