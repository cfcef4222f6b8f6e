import type { Logger } from '@hookline/config';
import { dropPartitions, ensurePartitions, WAITING_STATUSES_SQL, type Db, type SqlRunner } from '@hookline/db';
import type { Metrics } from '@hookline/metrics';

// Data lifecycle (docs/operations.md, "Data retention"). Every worker process runs this
// sweeper; at most one sweeps at a time across all of them. What it deletes:
//
// - events created more than RETENTION ago, with all their deliveries and those
//   deliveries' attempts — but only an event none of whose deliveries is still
//   waiting (pending, pending_retry): a delivery that may yet be sent is never
//   deleted, however old, and neither is its event;
// - extractions created more than RETENTION ago whose status is terminal (not
//   `processing`), with their documents (the document results); an extraction
//   still processing is kept, however old;
// - idempotency records whose expires_at has passed (expired, whatever
//   RETENTION says): the API no longer deletes them on each request.
//
// How, so the hot tables never notice:
// - one statement per batch, so each batch is its own short transaction (also on
//   PGlite, whose one connection Prisma shares: no BEGIN … COMMIT around it);
//   parent and children go together in that statement (data-modifying CTEs), so a
//   crash leaves no orphan and no half-deleted event;
// - a batch picks at most `batchSize` parent rows oldest first by an index range
//   scan (events_created_at_idx, extractions_created_at_idx,
//   idempotency_records_expires_at_idx) with FOR UPDATE SKIP LOCKED, and finds the
//   children by index (deliveries' unique (event_id, webhook_id), attempts' unique (delivery_id,
//   attempt_number), extraction_documents' primary key): never a table scan;
// - a short pause between batches, and a sweep stops after `maxSweepMs`: the
//   next tick continues where the data is (oldest first), nothing is remembered;
// - the delivery DELETE also re-checks the status: if a delivery of a chosen event
//   became waiting after the event was chosen (a race with no known writer today),
//   it is not deleted, and the event's DELETE keeps every event one of whose
//   deliveries was left (the history tables have no foreign keys between them
//   since they are partitioned: this is what the key between deliveries and
//   events used to catch).
//
// Before the rows, the partitions (packages/db/src/partitions.ts), under the same
// lock: the ones missing up to PARTITIONS_AHEAD intervals from now are created,
// and those wholly older than RETENTION are detached and dropped (each a moment,
// whatever its size) unless a waiting delivery still needs one; such a partition
// is kept and reported, the row deletes below take its ended rows, and it goes
// once nothing in it waits. Row deletes remain for what partitions do not cover:
// the partitions kept, the legacy partition (the table as it was before
// partitioning, until it is wholly older than RETENTION), extractions, idempotency
// records (keyed by scope, unique across time: not partitioned).
//
// One sweeper at a time: a session-level advisory lock (pg_try_advisory_lock),
// taken on one dedicated connection and held for the whole sweep, the batches run
// on that same connection. A transaction-level lock per batch would not do: two
// workers would each hold it for their own batches in turn, so two sweeps would
// interleave, doubling the load the batching is there to bound. A Redis lock would
// need an expiry longer than any sweep and renewal; the session lock is released by
// PostgreSQL itself when the connection (or the process) dies. It needs a direct
// connection, or a pooler in session mode (a transaction-mode pooler would hand
// the lock's connection to someone else) — the same as the relay's lock.

/** The PostgreSQL advisory lock id of the one sweeper; next to the migrator's (…369) and the relay's (…370). */
export const RETENTION_LOCK_ID = 72_707_371;

export const RETENTION_TABLES = ['events', 'deliveries', 'attempts', 'extractions', 'extraction_documents', 'idempotency_records'] as const;
export type RetentionTable = (typeof RETENTION_TABLES)[number];
export type RetentionCounts = Record<RetentionTable, number>;

/** Partitions created ahead, dropped (wholly older than RETENTION), and kept although old (a waiting delivery needs them, or their lock was busy). */
export type PartitionWork = { created: string[]; dropped: string[]; kept: string[] };

export type SweepResult =
  | { skipped: true; reason: string }
  /** complete: false when the sweep stopped early (its time ran out, or the sweeper is stopping); the next one continues. */
  | { skipped: false; partitions: PartitionWork; deleted: RetentionCounts; complete: boolean };

export const SKIPPED_LOCKED = 'another sweeper holds the lock';

/** Events and extractions: $1 = RETENTION in ms, $2 = batch size; idempotency: $1 = batch size. Exported for the index test (EXPLAIN). */
export const RETENTION_SQL = {
  events: `
WITH doomed AS (
  SELECT e.id FROM events e
   WHERE e.created_at < now() - ($1::double precision * interval '1 millisecond')
     AND NOT EXISTS (SELECT 1 FROM deliveries w WHERE w.event_id = e.id AND w.status IN ${WAITING_STATUSES_SQL})
   ORDER BY e.created_at
   LIMIT $2
   FOR UPDATE SKIP LOCKED
), del AS (
  DELETE FROM deliveries d
   WHERE d.event_id IN (SELECT id FROM doomed) AND d.status NOT IN ${WAITING_STATUSES_SQL}
  RETURNING d.id
), att AS (
  DELETE FROM attempts a WHERE a.delivery_id IN (SELECT id FROM del) RETURNING 1
), ev AS (
  DELETE FROM events e WHERE e.id IN (SELECT id FROM doomed)
     AND NOT EXISTS (SELECT 1 FROM deliveries k WHERE k.event_id = e.id AND k.id NOT IN (SELECT id FROM del))
  RETURNING 1
)
SELECT (SELECT count(*) FROM ev)::int AS events, (SELECT count(*) FROM del)::int AS deliveries, (SELECT count(*) FROM att)::int AS attempts`,
  extractions: `
WITH doomed AS (
  SELECT x.id FROM extractions x
   WHERE x.created_at < now() - ($1::double precision * interval '1 millisecond')
     AND x.status <> 'processing'
   ORDER BY x.created_at
   LIMIT $2
   FOR UPDATE SKIP LOCKED
), docs AS (
  DELETE FROM extraction_documents d WHERE d.extraction_id IN (SELECT id FROM doomed) RETURNING 1
), ex AS (
  DELETE FROM extractions x WHERE x.id IN (SELECT id FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM ex)::int AS extractions, (SELECT count(*) FROM docs)::int AS extraction_documents`,
  // Expired is expired: RETENTION does not apply here.
  idempotency: `
WITH doomed AS (
  SELECT r.scope FROM idempotency_records r
   WHERE r.expires_at < now()
   ORDER BY r.expires_at
   LIMIT $1
   FOR UPDATE SKIP LOCKED
), gone AS (
  DELETE FROM idempotency_records r WHERE r.scope IN (SELECT scope FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM gone)::int AS idempotency_records`,
} as const;

/** `parent`: the count that tells whether a batch was full, i.e. whether another may follow. */
const PHASES: readonly { sql: string; parent: RetentionTable; params: (retentionMs: number, batchSize: number) => unknown[] }[] = [
  { sql: RETENTION_SQL.events, parent: 'events', params: (ms, n) => [ms, n] },
  { sql: RETENTION_SQL.extractions, parent: 'extractions', params: (ms, n) => [ms, n] },
  { sql: RETENTION_SQL.idempotency, parent: 'idempotency_records', params: (_ms, n) => [n] },
];

export type RetentionDeps = {
  db: Db;
  logger: Logger;
  metrics: Metrics;
  /** RETENTION in ms. */
  retentionMs: number;
  /** Parent rows (events, extractions, idempotency records) per statement; default 500. */
  batchSize?: number;
  /** Pause between two batches; default 100 ms. */
  pauseMs?: number;
  /** A sweep stops after this long and the next tick continues; default 2 min. */
  maxSweepMs?: number;
  /** Between two sweeps of this process; default 10 min, ± jitter. */
  intervalMs?: number;
  /** Before the first sweep; default 1 min, ± jitter (not at the same moment as start-up's work). */
  firstRunMs?: number;
  /** Fraction of a delay added or taken at random (default 0.2), so many workers do not all try at once. */
  jitter?: number;
  /** The time partitions are made ahead of and dropped behind; tests move it. Rows are judged by PostgreSQL's now(). */
  now?: () => Date;
};

export type RetentionSweeper = {
  /** One sweep now (unless another sweeper, here or in another process, holds the lock). */
  runOnce(): Promise<SweepResult>;
  /** No new sweep; a running one stops after its current batch. Resolves when it has. */
  stop(): Promise<void>;
};

const zeroCounts = (): RetentionCounts => ({ events: 0, deliveries: 0, attempts: 0, extractions: 0, extraction_documents: 0, idempotency_records: 0 });

export function startRetentionSweeper(deps: RetentionDeps): RetentionSweeper {
  const { db, logger, metrics, retentionMs } = deps;
  const batchSize = deps.batchSize ?? 500;
  const pauseMs = deps.pauseMs ?? 100;
  const maxSweepMs = deps.maxSweepMs ?? 120_000;
  const intervalMs = deps.intervalMs ?? 600_000;
  const firstRunMs = deps.firstRunMs ?? 60_000;
  const jitter = deps.jitter ?? 0.2;
  const now = deps.now ?? (() => new Date());

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wakePause: (() => void) | undefined;
  let running: Promise<unknown> = Promise.resolve();

  const pause = (ms: number) => new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      wakePause = undefined;
      resolve();
    }, ms);
    wakePause = () => {
      clearTimeout(t);
      wakePause = undefined;
      resolve();
    };
  });

  async function partitionWork(sql: SqlRunner): Promise<PartitionWork> {
    const at = now();
    const created = await ensurePartitions({ sql, partitionIntervalMs: db.partitionIntervalMs }, at);
    const dropped = await dropPartitions(sql, new Date(at.getTime() - retentionMs));
    const work = {
      created: created.map((p) => p.partition),
      dropped: dropped.filter((p) => !p.kept).map((p) => p.partition),
      kept: dropped.filter((p) => p.kept).map((p) => p.partition),
    };
    if (work.created.length > 0) logger.info('partitions created ahead', { partitions: work.created });
    if (work.dropped.length > 0) logger.info('retention dropped old partitions', { partitions: work.dropped, retention_ms: retentionMs });
    // A partition that outlives RETENTION because a delivery in it still waits: said on every sweep until it goes.
    for (const p of dropped.filter((d) => d.kept)) logger.warn('old partition kept', { partition: p.partition, reason: p.reason });
    return work;
  }

  async function sweep(sql: SqlRunner): Promise<SweepResult> {
    const partitions = await partitionWork(sql);
    const deleted = zeroCounts();
    const deadline = Date.now() + maxSweepMs;
    let complete = true;
    let first = true;
    phases: for (const phase of PHASES) {
      for (;;) {
        // The first batch always runs, so even a very short maxSweepMs makes progress.
        // stop() wakes the pause; checked before it too, as stop() may come during a batch.
        if (!first) {
          const over = () => stopped || Date.now() >= deadline;
          if (!over() && pauseMs > 0) await pause(pauseMs);
          if (over()) {
            complete = false;
            break phases;
          }
        }
        first = false;
        const [row] = await sql.query<Partial<RetentionCounts>>(phase.sql, phase.params(retentionMs, batchSize));
        for (const table of RETENTION_TABLES) {
          const n = row?.[table] ?? 0;
          if (n === 0) continue;
          deleted[table] += n;
          metrics.retentionDeleted.inc({ table }, n);
        }
        if ((row?.[phase.parent] ?? 0) < batchSize) break;
      }
    }
    return { skipped: false, partitions, deleted, complete };
  }

  async function runOnce(): Promise<SweepResult> {
    const result = await db.sql.withSession(async (sql): Promise<SweepResult> => {
      const [lock] = await sql.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RETENTION_LOCK_ID]);
      if (!lock?.ok) return { skipped: true, reason: SKIPPED_LOCKED };
      try {
        return await sweep(sql);
      } finally {
        await sql.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK_ID]);
      }
    });
    if (!result.skipped && Object.values(result.deleted).some((n) => n > 0)) {
      // Counts only: never an id or a payload.
      logger.info('retention sweep deleted old rows', { ...result.deleted, complete: result.complete, retention_ms: retentionMs });
    }
    return result;
  }

  const jittered = (ms: number) => Math.max(0, Math.round(ms * (1 + (Math.random() * 2 - 1) * jitter)));

  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce()
        .catch((err: Error) => {
          // PostgreSQL down, or a batch that lost a race (see above): the rows wait for the next tick.
          logger.warn('retention sweep failed; retrying next tick', { err: err.message });
        })
        .finally(() => schedule(jittered(intervalMs)));
    }, delayMs);
    // The sweeper alone must not keep a process alive.
    timer.unref();
  };
  schedule(jittered(firstRunMs));

  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wakePause?.();
      await running;
    },
  };
}
