-- Compact history, the expand step (docs/operations.md, "Rolling upgrades and
-- the compact history"). Rolling-safe: every statement here only relaxes or
-- adds, so the previous version's API and workers, still running during the
-- rolling restart, read and write exactly as before:
-- - a nullable column added without a default, and NOT NULL dropped, rewrite
--   nothing and take the table's lock only for a moment;
-- - the three indexes dropped serve no query of this version or the previous one
--   (docs/operations.md, "Indexes": every index and the query it serves).
-- With COMPACT_HISTORY on (only once no process of the previous version runs),
-- this version writes events' large payloads compressed (data_z, data keeping
-- only the keys SQL reads) and leaves NULL the copies a delivery or an attempt
-- carried of what its event, webhook or delivery already holds. The columns
-- left NULL are dropped by a later migration (the contract step), not here.

-- The event's JSON, zlib-compressed (raw deflate), when it is large; NULL otherwise.
ALTER TABLE "events" ADD COLUMN "data_z" BYTEA;
ALTER TABLE "events" ALTER COLUMN "data" DROP NOT NULL;

-- Copies of the event's (event), the webhook's (account_id); updated_at is read by no one.
ALTER TABLE "deliveries" ALTER COLUMN "account_id" DROP NOT NULL,
  ALTER COLUMN "event" DROP NOT NULL,
  ALTER COLUMN "updated_at" DROP NOT NULL;

-- Copies of the delivery's.
ALTER TABLE "attempts" ALTER COLUMN "event_id" DROP NOT NULL,
  ALTER COLUMN "event" DROP NOT NULL;

-- No query looks events, extractions or API keys up by account alone (by id and
-- account: the primary key); no account is ever deleted (which would check keys by account).
DROP INDEX "events_account_id_created_at_idx";
DROP INDEX "extractions_account_id_idx";
DROP INDEX "api_keys_account_id_idx";
