-- The waiting set in a table of its own (issue #25, "Half the bytes"): expand.
--
-- The update that ends a delivery changes its status and next_attempt_at, which
-- the relay's partial index deliveries_waiting_next_attempt_at_id_idx covers
-- (its columns and its predicate). So it is never a HOT update: the row gets a
-- second version, and every index of deliveries a new entry, that nothing reads
-- (docs/scaling.md measures what it costs). Here the set of waiting deliveries
-- (pending, pending_retry) moves to waiting_deliveries, a small table the relay
-- and the partition drop read instead. Once that index is gone (the contract
-- step, prisma/contract/20261208020000_hot_ending_update, run when no process of
-- an earlier version is left), no index of deliveries covers a column the ending
-- update changes, and it is a HOT update: a new version on the same page, no
-- index entry.
--
-- A trigger keeps the set, not the application's statements: every writer of a
-- delivery's status is covered, the previous version's processes during a
-- rolling upgrade included (they keep scanning the partial index, which stays
-- until the contract step).
CREATE TABLE "waiting_deliveries" (
  "id" TEXT NOT NULL,
  "created_at" TIMESTAMPTZ(3) NOT NULL,
  "webhook_id" TEXT NOT NULL,
  "event_id" TEXT NOT NULL,
  "status" TEXT NOT NULL,
  "next_attempt_at" TIMESTAMPTZ(3),
  CONSTRAINT "waiting_deliveries_pkey" PRIMARY KEY ("id")
);
-- The relay's keyset scan (DUE_SQL) and the refill after Redis lost its data (WAITING_SQL).
CREATE INDEX "waiting_deliveries_next_attempt_at_id_idx" ON "waiting_deliveries" ("next_attempt_at", "id");

-- A row per waiting delivery: written when a delivery is inserted or updated
-- into a waiting status (its status and next attempt copied when they change),
-- removed when it leaves one or is deleted.
CREATE FUNCTION hookline_track_waiting() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'DELETE' AND NEW.status IN ('pending', 'pending_retry') THEN
    INSERT INTO waiting_deliveries AS w (id, created_at, webhook_id, event_id, status, next_attempt_at)
    VALUES (NEW.id, NEW.created_at, NEW.webhook_id, NEW.event_id, NEW.status, NEW.next_attempt_at)
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, next_attempt_at = excluded.next_attempt_at
     WHERE (w.status, w.next_attempt_at) IS DISTINCT FROM (excluded.status, excluded.next_attempt_at);
  ELSIF TG_OP <> 'INSERT' AND OLD.status IN ('pending', 'pending_retry') THEN
    DELETE FROM waiting_deliveries WHERE id = OLD.id;
  END IF;
  RETURN NULL;
END $$;

-- A row trigger of the partitioned table: every partition has it, those attached later too.
CREATE TRIGGER "deliveries_track_waiting"
  AFTER INSERT OR DELETE OR UPDATE OF "status", "next_attempt_at" ON "deliveries"
  FOR EACH ROW EXECUTE FUNCTION hookline_track_waiting();

-- The deliveries already waiting, through the partial index (a small set).
INSERT INTO "waiting_deliveries" ("id", "created_at", "webhook_id", "event_id", "status", "next_attempt_at")
SELECT "id", "created_at", "webhook_id", "event_id", "status", "next_attempt_at"
  FROM "deliveries" WHERE "status" IN ('pending', 'pending_retry')
ON CONFLICT ("id") DO NOTHING;

-- Room on each page of deliveries for its rows' ending versions (a HOT update
-- writes the new version on the same page, or is not HOT): partitions made from
-- now on, and those made ahead already. Only rows inserted later are placed by
-- it: no rewrite.
CREATE OR REPLACE FUNCTION hookline_ensure_partitions(step_ms bigint, until timestamptz)
RETURNS TABLE (partition text, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  t text;
  lo timestamptz;
  hi timestamptz;
  part text;
BEGIN
  IF step_ms < 3600000 THEN RAISE EXCEPTION 'partition interval % ms is under an hour', step_ms; END IF;
  PERFORM pg_advisory_xact_lock(72707372);
  PERFORM set_config('lock_timeout', '5s', true);
  FOREACH t IN ARRAY ARRAY['events', 'deliveries', 'attempts'] LOOP
    SELECT max(p.upper_bound) INTO lo FROM hookline_partitions(t) p;
    WHILE lo IS NOT NULL AND lo <= until LOOP
      hi := to_timestamp((floor(extract(epoch FROM lo) * 1000 / step_ms) + 1) * step_ms / 1000.0);
      part := t || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD')
        || CASE WHEN (lo AT TIME ZONE 'UTC')::time = '00:00' THEN '' ELSE to_char(lo AT TIME ZONE 'UTC', '"t"HH24MI') END;
      EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)%s', part, t,
        CASE WHEN t = 'deliveries' THEN ' WITH (fillfactor = 90)' ELSE '' END);
      EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', t, part, lo, hi);
      partition := part; lower_bound := lo; upper_bound := hi;
      RETURN NEXT;
      lo := hi;
    END LOOP;
  END LOOP;
END $$;

DO $$
DECLARE
  part text;
BEGIN
  FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'deliveries'::regclass LOOP
    EXECUTE format('ALTER TABLE %I SET (fillfactor = 90)', part);
  END LOOP;
END
$$;

-- The partition drop's check for waiting deliveries reads the waiting set (a
-- small table, scanned whole) instead of the partial index, which the contract
-- step drops. The rest is as before (20261207160000_partitioned_history).
CREATE OR REPLACE FUNCTION hookline_drop_partition(parent text, part text)
RETURNS TABLE (kept boolean, reason text)
LANGUAGE plpgsql AS $$
DECLARE
  waiting boolean;
  lo timestamptz;
  hi timestamptz;
BEGIN
  IF parent NOT IN ('events', 'deliveries', 'attempts') THEN RAISE EXCEPTION 'not a partitioned history table: %', parent; END IF;
  PERFORM pg_advisory_xact_lock(72707372);
  PERFORM set_config('lock_timeout', '2s', true);
  BEGIN
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', parent);
  EXCEPTION WHEN lock_not_available THEN
    kept := true; reason := 'lock timeout';
    RETURN NEXT;
    RETURN;
  END;
  SELECT p.lower_bound, p.upper_bound INTO lo, hi FROM hookline_partitions(parent) p WHERE p.name = part;
  IF NOT FOUND THEN
    kept := false; reason := 'gone already';
    RETURN NEXT;
    RETURN;
  END IF;
  IF parent = 'deliveries' THEN
    SELECT EXISTS (SELECT 1 FROM waiting_deliveries w WHERE w.created_at >= COALESCE(lo, '-infinity') AND w.created_at < hi) INTO waiting;
  ELSIF parent = 'events' THEN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM waiting_deliveries w JOIN %I e ON e.id = w.event_id)', part) INTO waiting;
  ELSE
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM waiting_deliveries w JOIN %I a ON a.delivery_id = w.id)', part) INTO waiting;
  END IF;
  IF waiting THEN
    kept := true; reason := 'a waiting delivery';
  ELSE
    EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, part);
    EXECUTE format('DROP TABLE %I', part);
    kept := false; reason := NULL;
  END IF;
  RETURN NEXT;
END $$;
