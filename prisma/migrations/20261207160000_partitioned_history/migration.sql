-- Time-partitioned history (issue #25; docs/operations.md, "Partitions"). events,
-- deliveries and attempts become tables partitioned by RANGE (created_at). A table
-- cannot be turned into a partitioned one in place, so each is swapped:
--
-- 1. the table and its indexes are renamed to <name>_legacy;
-- 2. a partitioned table takes the name, with the same columns, defaults and
--    indexes (same names); unique keys gain created_at, as a partitioned table's
--    unique keys must hold the partition key: (id, created_at) and so on;
-- 3. the old table is attached as ONE bounded partition, [MINVALUE, cutover)
--    (the next UTC midnight, unless the operator set it beforehand, see below),
--    and the next day's partition is created empty. Never as a
--    DEFAULT partition: a DEFAULT partition holding rows would have to be scanned
--    (under lock) by every later partition creation, and could never be
--    detached by range. The legacy partition is an ordinary range: retention
--    deletes its rows one by one (RETENTION after the migration it is wholly
--    old, and then it is detached and dropped like any other).
--
-- What takes time, under this transaction's lock on the three tables: the
-- unique indexes on (…, created_at) of the old tables, and ATTACH's check that
-- every old row is older than the bound (a sequential read). Both can be done
-- beforehand, online (docs/operations.md, "Partitions"): the indexes with CREATE
-- UNIQUE INDEX CONCURRENTLY under the names below (IF NOT EXISTS then skips
-- them), the bound as a CHECK added NOT VALID then VALIDATEd (step 3 uses it).
-- Then the migration only renames, attaches and creates: catalog work.
--
-- Rolling-safe: the previous version names the same tables and columns and
-- conflicts on no key of these tables (its only ON CONFLICT is on
-- idempotency_records, unchanged), so its statements run unchanged against the
-- partitioned tables (apps/worker/test/rolling-upgrade.test.ts runs them).
-- The foreign keys between the three tables go (a key referencing a
-- partitioned table would have to carry created_at too): an event and its
-- deliveries are written by one statement, a delivery and its attempt by
-- another, and retention removes them together (apps/worker/src/retention.ts).
-- deliveries → webhooks stays.

-- The four tables' locks first, all at once and without waiting while holding
-- one: each try takes them with NOWAIT and, when one is busy, gives back what it
-- took (the exception rolls its subtransaction back) and tries again a few ms
-- later. Taking them one by one as the statements below reach them could hold
-- events while waiting for deliveries, behind a statement of the running
-- traffic that holds deliveries and waits for events: a deadlock, and one of
-- the two fails. Writes queue behind this transaction only once it holds all.
DO $lock$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '5 minutes';
BEGIN
  LOOP
    BEGIN
      LOCK TABLE "events", "deliveries", "attempts" IN ACCESS EXCLUSIVE MODE NOWAIT;
      LOCK TABLE "webhooks" IN SHARE ROW EXCLUSIVE MODE NOWAIT;
      RETURN;
    EXCEPTION WHEN lock_not_available THEN
      IF clock_timestamp() > deadline THEN
        RAISE EXCEPTION 'the partitioning migration could not lock events, deliveries, attempts and webhooks within 5 minutes; run it at a quieter moment';
      END IF;
      PERFORM pg_sleep(0.005 + random() * 0.02);
    END;
  END LOOP;
END
$lock$;

ALTER TABLE "attempts" DROP CONSTRAINT "attempts_delivery_id_fkey";
ALTER TABLE "deliveries" DROP CONSTRAINT "deliveries_event_id_fkey";

-- 1. The old tables, by their new names.
ALTER TABLE "events" RENAME TO "events_legacy";
ALTER INDEX "events_pkey" RENAME TO "events_legacy_pkey";
ALTER INDEX "events_created_at_idx" RENAME TO "events_legacy_created_at_idx";
ALTER INDEX "events_extraction_id_event_idx" RENAME TO "events_legacy_extraction_id_event_idx";
ALTER TABLE "deliveries" RENAME TO "deliveries_legacy";
ALTER INDEX "deliveries_pkey" RENAME TO "deliveries_legacy_pkey";
ALTER INDEX "deliveries_event_id_webhook_id_key" RENAME TO "deliveries_legacy_event_id_webhook_id_key";
ALTER INDEX "deliveries_webhook_id_created_at_id_idx" RENAME TO "deliveries_legacy_webhook_id_created_at_id_idx";
ALTER INDEX "deliveries_waiting_next_attempt_at_id_idx" RENAME TO "deliveries_legacy_waiting_next_attempt_at_id_idx";
ALTER TABLE "attempts" RENAME TO "attempts_legacy";
ALTER INDEX "attempts_pkey" RENAME TO "attempts_legacy_pkey";
ALTER INDEX "attempts_delivery_id_attempt_number_key" RENAME TO "attempts_legacy_delivery_id_attempt_number_key";
ALTER INDEX "attempts_webhook_id_created_at_idx" RENAME TO "attempts_legacy_webhook_id_created_at_idx";
ALTER INDEX "attempts_webhook_id_failed_created_at_idx" RENAME TO "attempts_legacy_webhook_id_failed_created_at_idx";

-- The old tables' keys with created_at (pre-build them CONCURRENTLY under these names to shorten the lock).
CREATE UNIQUE INDEX IF NOT EXISTS "events_legacy_id_created_at_key" ON "events_legacy" ("id", "created_at");
CREATE UNIQUE INDEX IF NOT EXISTS "deliveries_legacy_id_created_at_key" ON "deliveries_legacy" ("id", "created_at");
CREATE UNIQUE INDEX IF NOT EXISTS "deliveries_legacy_event_id_webhook_id_created_at_key" ON "deliveries_legacy" ("event_id", "webhook_id", "created_at");
CREATE UNIQUE INDEX IF NOT EXISTS "attempts_legacy_id_created_at_key" ON "attempts_legacy" ("id", "created_at");
CREATE UNIQUE INDEX IF NOT EXISTS "attempts_legacy_delivery_id_attempt_number_created_at_key" ON "attempts_legacy" ("delivery_id", "attempt_number", "created_at");
-- A partitioned table's primary key needs a primary key of its partition: the old one (id) gives way.
ALTER TABLE "events_legacy" DROP CONSTRAINT "events_legacy_pkey";
ALTER TABLE "events_legacy" ADD CONSTRAINT "events_legacy_pkey" PRIMARY KEY USING INDEX "events_legacy_id_created_at_key";
ALTER TABLE "deliveries_legacy" DROP CONSTRAINT "deliveries_legacy_pkey";
ALTER TABLE "deliveries_legacy" ADD CONSTRAINT "deliveries_legacy_pkey" PRIMARY KEY USING INDEX "deliveries_legacy_id_created_at_key";
ALTER TABLE "attempts_legacy" DROP CONSTRAINT "attempts_legacy_pkey";
ALTER TABLE "attempts_legacy" ADD CONSTRAINT "attempts_legacy_pkey" PRIMARY KEY USING INDEX "attempts_legacy_id_created_at_key";
-- Unique without created_at can no longer be kept by a partitioned table; the old tables' go with them.
DROP INDEX "deliveries_legacy_event_id_webhook_id_key";
DROP INDEX "attempts_legacy_delivery_id_attempt_number_key";

-- 2. The partitioned tables, under the old names.
CREATE TABLE "events" (LIKE "events_legacy" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("created_at");
ALTER TABLE "events" ADD CONSTRAINT "events_pkey" PRIMARY KEY ("id", "created_at");
CREATE INDEX "events_created_at_idx" ON "events" ("created_at");
CREATE INDEX "events_extraction_id_event_idx" ON "events" (("data" ->> 'extraction_id'), "event")
  WHERE "event" IN ('extraction.document_completed', 'extraction.job_completed');

CREATE TABLE "deliveries" (LIKE "deliveries_legacy" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("created_at");
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_pkey" PRIMARY KEY ("id", "created_at");
CREATE UNIQUE INDEX "deliveries_event_id_webhook_id_key" ON "deliveries" ("event_id", "webhook_id", "created_at");
CREATE INDEX "deliveries_webhook_id_created_at_id_idx" ON "deliveries" ("webhook_id", "created_at" DESC, "id" DESC);
CREATE INDEX "deliveries_waiting_next_attempt_at_id_idx" ON "deliveries" ("next_attempt_at", "id")
  WHERE "status" IN ('pending', 'pending_retry');
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_webhook_id_fkey" FOREIGN KEY ("webhook_id") REFERENCES "webhooks" ("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "attempts" (LIKE "attempts_legacy" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("created_at");
ALTER TABLE "attempts" ADD CONSTRAINT "attempts_pkey" PRIMARY KEY ("id", "created_at");
CREATE UNIQUE INDEX "attempts_delivery_id_attempt_number_key" ON "attempts" ("delivery_id", "attempt_number", "created_at");
CREATE INDEX "attempts_webhook_id_created_at_idx" ON "attempts" ("webhook_id", "created_at" DESC);
CREATE INDEX "attempts_webhook_id_failed_created_at_idx" ON "attempts" ("webhook_id", "created_at" DESC) WHERE "status" = 'failed';

-- The partition manager's two statements (packages/db/src/partitions.ts), as
-- functions: each runs as one statement, so as one transaction, on PostgreSQL and
-- on PGlite alike (whose one connection Prisma shares: no BEGIN … COMMIT around
-- it). pg_partman would do this on PostgreSQL, but PGlite has no such extension,
-- and what is needed is small. Both take a transaction-level advisory lock, so
-- creations and drops run one at a time across every process.

-- The partitions of one partitioned table, with their bounds (lower NULL: MINVALUE).
CREATE FUNCTION hookline_partitions(parent text)
RETURNS TABLE (name text, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT c.relname::text,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = parent::regclass
   ORDER BY 3
$$;

-- Creates the partitions of events, deliveries and attempts that are missing up
-- to `until`, each table's ranges contiguous from its last one's upper bound to the
-- next multiple of step_ms since the Unix epoch (so a day ends at UTC midnight).
-- A partition is created as a table of its own and then attached: ATTACH takes a
-- SHARE UPDATE EXCLUSIVE lock on the parent, which reads and writes pass (CREATE
-- TABLE … PARTITION OF would take an exclusive lock). Answers what it created.
CREATE FUNCTION hookline_ensure_partitions(step_ms bigint, until timestamptz)
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
      EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, t);
      EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', t, part, lo, hi);
      partition := part; lower_bound := lo; upper_bound := hi;
      RETURN NEXT;
      lo := hi;
    END LOOP;
  END LOOP;
END $$;

-- Detaches and drops one partition of events, deliveries or attempts (the
-- caller picks those wholly older than RETENTION), unless it holds something a
-- waiting delivery (pending, pending_retry) needs: a deliveries partition is kept
-- while one of its deliveries waits, an events partition while one of its events
-- has a waiting delivery, an attempts partition while one of its attempts belongs
-- to a waiting delivery. Answers kept = false when it dropped it, else why not.
-- One partition per call, so one transaction holds one table's lock: the parent's
-- ACCESS EXCLUSIVE lock (which DETACH takes) first, then the check, so nothing in
-- the partition becomes waiting between the check and the drop, and no lock is
-- upgraded. Waiting for that lock is bounded (lock_timeout 2 s: a long query in
-- the way keeps the partition until the next call); once held, the check reads
-- the small set of waiting deliveries and the drop removes files: milliseconds.
CREATE FUNCTION hookline_drop_partition(parent text, part text)
RETURNS TABLE (kept boolean, reason text)
LANGUAGE plpgsql AS $$
DECLARE
  waiting boolean;
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
  IF NOT EXISTS (SELECT 1 FROM hookline_partitions(parent) p WHERE p.name = part) THEN
    kept := false; reason := 'gone already';
    RETURN NEXT;
    RETURN;
  END IF;
  IF parent = 'deliveries' THEN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I d WHERE d.status IN (''pending'', ''pending_retry''))', part) INTO waiting;
  ELSIF parent = 'events' THEN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM deliveries d JOIN %I e ON e.id = d.event_id WHERE d.status IN (''pending'', ''pending_retry''))', part) INTO waiting;
  ELSE
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM deliveries d JOIN %I a ON a.delivery_id = d.id WHERE d.status IN (''pending'', ''pending_retry''))', part) INTO waiting;
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

-- 3. The old tables as the partitions of everything before the cutover: the
-- next UTC midnight, or the bound of a validated CHECK (created_at < bound) named
-- <table>_legacy_created_at_check that the operator added beforehand, online
-- (docs/operations.md, "Partitions"): ATTACH then reads no row to check the
-- bound. Then the partitions from the cutover on, as the manager makes them.
DO $$
DECLARE
  next_midnight timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day';
  cutover timestamptz;
  latest timestamptz := next_midnight;
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['events', 'deliveries', 'attempts'] LOOP
    cutover := NULL;
    SELECT (regexp_match(pg_get_constraintdef(c.oid), '< ''([^'']+)''::timestamp'))[1]::timestamptz INTO cutover
      FROM pg_constraint c
     WHERE c.conrelid = (t || '_legacy')::regclass AND c.conname = t || '_legacy_created_at_check' AND c.contype = 'c' AND c.convalidated;
    cutover := COALESCE(cutover, next_midnight);
    latest := greatest(latest, cutover);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)', t, t || '_legacy', cutover);
  END LOOP;
  PERFORM hookline_ensure_partitions(86400000, latest);
END $$;
