-- An event's deliveries, on a smaller index (issue #25, "Half the bytes"): expand.
--
-- deliveries_event_id_webhook_id_key (event_id, webhook_id, created_at), unique,
-- costs about 120 bytes per delivery: every entry is distinct, two 27-character
-- ids and a time. What reads it asks for an event's deliveries (the retention
-- sweeper, an operational notice's deliveries, ordered job callbacks: by event,
-- then the webhook filtered among the event's few). The outbox writes an event's
-- deliveries at the event's created_at, so on (event_id, created_at) they share
-- one key, which B-tree deduplication stores once with their row pointers: about
-- a fifth of the size. The contract step drops the unique key
-- (prisma/contract/20261208040000_deliveries_event_key): one delivery per event
-- and webhook is the outbox's by construction (one INSERT per event, from the
-- distinct webhooks it matched, under a new event id; nothing else inserts
-- deliveries), and with created_at in it the key was only ever unique within one
-- partition.
--
-- Built per partition, then attached (as 20261207170000_deliveries_list_index):
-- on a large installation build each beforehand, online, and the migration only
-- attaches them (docs/operations.md, "Indexes"):
--   CREATE INDEX CONCURRENTLY <partition>_event_id_created_at_idx ON <partition> (event_id, created_at);
CREATE INDEX "deliveries_event_id_created_at_idx" ON ONLY "deliveries" ("event_id", "created_at");

DO $$
DECLARE
  part text;
BEGIN
  FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'deliveries'::regclass LOOP
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I ("event_id", "created_at")', part || '_event_id_created_at_idx', part);
    EXECUTE format('ALTER INDEX "deliveries_event_id_created_at_idx" ATTACH PARTITION %I', part || '_event_id_created_at_idx');
  END LOOP;
END
$$;
