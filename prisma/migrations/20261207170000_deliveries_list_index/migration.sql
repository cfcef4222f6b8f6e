-- A webhook's deliveries, newest first (issue #25, "History at fleet rates"):
-- the list index loses its id. (webhook_id, created_at DESC) replaces
-- (webhook_id, created_at DESC, id DESC): 24 bytes less per entry (the id, 27
-- bytes, padded), twice per delivery (the update that ends a delivery is not HOT,
-- so every index of deliveries gets a second entry), and entries of one webhook
-- that share a created_at (the outbox writes a batch's deliveries at one time)
-- merge into one posting list (B-tree deduplication). The queries that walked the
-- old index (a page of GET /v1/webhooks/:id/deliveries and of the dashboard's log,
-- the dashboard's last delivery, recovery of a failed window; docs/operations.md,
-- "Indexes") walk this one in the same order: ties of created_at, which the id
-- used to order, are put in id order by an incremental sort of each group of
-- equal created_at, never by a sort of the webhook's deliveries
-- (apps/worker/test/partition-lookups.test.ts checks the plan). The previous
-- version's queries are the same ones: rolling-safe.
--
-- Built per partition, then attached to the partitioned index: an index of that
-- name on a partition is used as it is, so on a large installation build each
-- beforehand, online, and the migration only attaches them (docs/operations.md,
-- "Indexes"):
--   CREATE INDEX CONCURRENTLY <partition>_webhook_id_created_at_idx ON <partition> (webhook_id, created_at DESC);
-- Partitions made later get theirs when they are attached.
CREATE INDEX "deliveries_webhook_id_created_at_idx" ON ONLY "deliveries" ("webhook_id", "created_at" DESC);

DO $$
DECLARE
  part text;
BEGIN
  FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'deliveries'::regclass LOOP
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I ("webhook_id", "created_at" DESC)', part || '_webhook_id_created_at_idx', part);
    EXECUTE format('ALTER INDEX "deliveries_webhook_id_created_at_idx" ATTACH PARTITION %I', part || '_webhook_id_created_at_idx');
  END LOOP;
END
$$;

DROP INDEX "deliveries_webhook_id_created_at_id_idx";
