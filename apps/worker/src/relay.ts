import type { Logger } from '@hookline/config';
import type { Db, SqlRunner } from '@hookline/db';
import type { Metrics } from '@hookline/metrics';
import { within } from '@hookline/domain';
import { enqueueToShards, FIRST_ATTEMPT_PRIORITY, RETRY_PRIORITY, type DeliveryQueue, type DeliveryQueues, type DeliveryRef } from '@hookline/queue';
import { createDeliveryStore, RELAY_LOCK_ID, type WaitingRow } from './delivery-store';

// The outbox relay: step 2 of a delivery's route (ARCHITECTURE.md). The API enqueues a
// job right after its transaction commits; when that fails (Redis down, the
// process died in between) or Redis later loses the job, the delivery row is
// still `pending`/`pending_retry` and its turn passes unnoticed. Every tick the
// relay re-enqueues such rows. This is what makes "an event accepted with 202
// is never lost" true. Enqueuing is idempotent (jobId = delivery id), so a
// false alarm costs one no-op.
//
// With shards, a delivery is looked for in its webhook's shard first; only one
// not found there is looked for in the others (a job queued before the shard
// count changed stays where it was, and is served there), so nothing runs twice.

const BATCH_SIZE = 1_000;

/** Deliveries re-enqueued per step of a refill (each step: one scan, one state check per row, one addBulk per shard). */
const REFILL_BATCH_SIZE = 500;
/** RelayDeps.refillSettleMs's default: longer than the Redis reconnect back-off's longest step (2 s). */
const REFILL_SETTLE_MS = 2_500;
/** Between tries of a refill that failed (PostgreSQL or Redis down): doubles up to `max`. */
const REFILL_RETRY_MS = { first: 250, max: 5_000 };

/**
 * A tick's Redis work must end: a command can hang (seen on a Redis Cluster
 * right after a failover), and a tick that never ends would hold the relay's
 * advisory lock, and so stop every worker's relay, for good.
 */
const REDIS_WORK_TIMEOUT_MS = 15_000;

/**
 * Every delivery inserts a row into waiting_deliveries and deletes it when it
 * ends, so the table is mostly dead rows between vacuums; autovacuum visits a
 * database once a minute at most, and the embedded PGlite has none. The relay
 * (one across every worker, under its lock) vacuums it this often: a small
 * table, milliseconds. SKIP_LOCKED: never waits behind another vacuum. Its
 * trailing empty pages are given back (vacuum's truncation gives way at once to
 * a writer waiting for the table).
 */
const TIDY_EVERY_MS = 10_000;
export const TIDY_SQL = 'VACUUM (SKIP_LOCKED) waiting_deliveries';

export type RelayDeps = {
  db: Db;
  queues: DeliveryQueues;
  logger: Logger;
  metrics: Metrics;
  /** How long past its due time a waiting delivery may sit before it counts as lost. */
  graceMs: number;
  /** Bound on one tick's Redis work (default 15 s). */
  redisTimeoutMs?: number;
  intervalMs?: number;
  batchSize?: number;
  refillBatchSize?: number;
  /** How often the relay holding the lock vacuums the waiting set (default 10 s; 0: every tick). */
  tidyEveryMs?: number;
  /** Whether a job's BullMQ lock is held (by a worker running it); none: a job gone from Redis is always lost. */
  lockHeld?: (queue: DeliveryQueue, jobId: string) => Promise<boolean>;
  /** How long a refill waits before its scan, for the other workers to take their running jobs' locks again. */
  refillSettleMs?: number;
  /**
   * After a failed tick: whether PostgreSQL or Redis is unreachable (the
   * worker's outage watch, which logs the outage's start and end once). Then
   * the failure is the outage's, and no line is logged per tick.
   */
  isOutage?: () => Promise<boolean>;
};

export type Relay = {
  /** One scan; resolves to the number of deliveries (re-)enqueued, or null when another relay held the lock. */
  runOnce(): Promise<number | null>;
  /**
   * Redis lost its data (restarted empty): re-enqueues every waiting
   * delivery whose job is gone, due or not, at once and in bounded batches,
   * rather than RELAY_GRACE after each one's turn. Resolves to the count.
   */
  refill(): Promise<number>;
  /**
   * refill(), tried again until it completes (or the relay stops): Redis
   * can come back empty while PostgreSQL is still down, and then the
   * waiting deliveries are queued the moment it answers, not RELAY_GRACE
   * after their turn. A try that failed half-way is harmless to repeat:
   * deliveries queued by then have a job, and only those without one are
   * queued again. Resolves to the count, or null when stopped first.
   */
  refillUntilDone(): Promise<number | null>;
  stop(): Promise<void>;
};

export function startRelay(deps: RelayDeps): Relay {
  const { db, queues, logger, metrics } = deps;
  const intervalMs = deps.intervalMs ?? 5_000;
  const batchSize = deps.batchSize ?? BATCH_SIZE;

  const store = createDeliveryStore(db);
  const redisWithin = <T>(work: Promise<T>) => {
    const ms = deps.redisTimeoutMs ?? REDIS_WORK_TIMEOUT_MS;
    return within(work, ms, `Redis did not answer within ${ms} ms`);
  };
  const tidyEveryMs = deps.tidyEveryMs ?? TIDY_EVERY_MS;
  let tidiedAt = Date.now();
  let tidyWarned = false;

  async function tidy(sql: SqlRunner): Promise<void> {
    if (Date.now() - tidiedAt < tidyEveryMs) return;
    tidiedAt = Date.now();
    try {
      await sql.exec(TIDY_SQL);
      tidyWarned = false;
    } catch (err) {
      // Not the relay's job: the scan ran; autovacuum does it later. One line until it works again.
      if (!tidyWarned) logger.warn('relay: could not vacuum the waiting set; autovacuum will', { err: (err as Error).message });
      tidyWarned = true;
    }
  }
  // Keyset scan: each tick continues after the last row of the previous one (and
  // starts over once it reaches the end), so under a backlog larger than a batch
  // a lost job behind a thousand healthy ones is still found within a few ticks.
  let after: { nextAttemptAt: Date; id: string } | null = null;

  async function relayDue(sql: SqlRunner): Promise<number> {
    const rows = await store.overdue(sql, deps.graceMs, batchSize, after);
    const last = rows[rows.length - 1];
    after = rows.length < batchSize || !last ? null : { nextAttemptAt: new Date(last.next_attempt_at), id: last.id };
    if (rows.length === 0) return 0;
    return redisWithin(relayRows(rows));
  }

  async function relayRows(rows: WaitingRow[]): Promise<number> {
    const ids = rows.map((row) => row.id);
    const home = rows.map((row) => queues.forWebhook(row.webhook_id));
    const states = await Promise.all(rows.map((row, i) => jobStateAnywhere(row.id, home[i])));
    const lost: DeliveryRef[] = [];
    // Held deliveries sit in `delayed` (endpoint isolation): found, not lost.
    // A job gone from Redis whose lock is there is still running in a live worker, which took
    // its lock again after Redis lost its data (running-jobs.ts): it is in hand, not lost.
    const inHand = await Promise.all(states.map(({ state, queue }, i) => (state === 'unknown' && deps.lockHeld ? deps.lockHeld(queue, ids[i]) : Promise.resolve(false))));
    for (let i = 0; i < ids.length; i += 1) {
      const { state, queue } = states[i];
      if (state === 'unknown') {
        if (!inHand[i]) lost.push({ id: ids[i], webhookId: rows[i].webhook_id });
      }
      // Finished in Redis but still waiting in PostgreSQL: a job that ran out
      // of BullMQ attempts, or whose outcome never reached the row. Adding a
      // job whose id exists is a no-op, so the finished one must go first.
      else if (state === 'completed' || state === 'failed') {
        const removed = await queue.remove(ids[i]).catch((err: Error) => {
          logger.warn('relay: could not remove a finished job to enqueue it again; next tick', { delivery_id: ids[i], err: err.message });
          return 0;
        });
        if (removed === 1) lost.push({ id: ids[i], webhookId: rows[i].webhook_id });
      }
    }
    if (lost.length === 0) return 0;
    // A lost retry keeps its place behind first attempts.
    const retries = new Set(rows.filter((row) => row.status === 'pending_retry').map((row) => row.id));
    await enqueueToShards(queues, lost.filter((d) => !retries.has(d.id)), { priority: FIRST_ATTEMPT_PRIORITY });
    await enqueueToShards(queues, lost.filter((d) => retries.has(d.id)), { priority: RETRY_PRIORITY });
    metrics.relayed.inc(lost.length);
    logger.info('relay enqueued lost deliveries', { count: lost.length, scanned: ids.length });
    return lost.length;
  }

  /** The job's state in its home shard, else in the first other shard that knows it. */
  async function jobStateAnywhere(id: string, home: DeliveryQueue): Promise<{ state: string; queue: DeliveryQueue }> {
    const state = await home.getJobState(id);
    if (state !== 'unknown' || queues.shards.length === 1) return { state, queue: home };
    for (const queue of queues.shards) {
      if (queue === home) continue;
      const elsewhere = await queue.getJobState(id);
      if (elsewhere !== 'unknown') return { state: elsewhere, queue };
    }
    return { state, queue: home };
  }

  async function runOnce(): Promise<number | null> {
    return db.sql.withSession(async (sql) => {
      // A session lock, not a transaction: no transaction stays open while Redis is called.
      const [lock] = await sql.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RELAY_LOCK_ID]);
      if (!lock?.ok) return null;
      try {
        const relayed = await relayDue(sql);
        await tidy(sql);
        return relayed;
      } finally {
        await sql.query('SELECT pg_advisory_unlock($1)', [RELAY_LOCK_ID]);
      }
    });
  }

  // A retry not yet due goes back to the queue at once: its job, when it runs
  // early, is held until its time (deliver/admission.ts, admit) without an attempt.
  async function refill(): Promise<number> {
    const size = deps.refillBatchSize ?? REFILL_BATCH_SIZE;
    let from: { nextAttemptAt: Date; id: string } | null = null;
    let enqueued = 0;
    let scanned = 0;
    for (;;) {
      const rows = await store.waiting(size, from);
      scanned += rows.length;
      if (rows.length > 0) enqueued += await redisWithin(relayRows(rows));
      const last = rows[rows.length - 1];
      if (rows.length < size || !last || stopped) break;
      from = { nextAttemptAt: new Date(last.next_attempt_at), id: last.id };
    }
    logger.info('Redis lost its data: waiting deliveries queued again', { enqueued, scanned });
    return enqueued;
  }

  async function refillUntilDone(): Promise<number | null> {
    // Every worker that reconnected takes its running jobs' locks again first (within the
    // reconnect's back-off, 2 s at most), so the refill finds them in hand.
    await new Promise((resolve) => setTimeout(resolve, deps.refillSettleMs ?? REFILL_SETTLE_MS).unref());
    let logged = false;
    for (let wait = REFILL_RETRY_MS.first; !stopped; wait = Math.min(wait * 2, REFILL_RETRY_MS.max)) {
      try {
        return await refill();
      } catch (err) {
        // During an outage the outage watch says it once (worker.ts); anything else, once per refill.
        if (!logged && !(await (deps.isOutage?.() ?? Promise.resolve(false)).catch(() => false))) {
          logger.warn('could not queue the waiting deliveries again after Redis lost its data; retrying', { err: (err as Error).message });
          logged = true;
        }
        await new Promise((resolve) => setTimeout(resolve, wait).unref());
      }
    }
    return null;
  }

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce()
        .then(() => undefined)
        .catch(async (err: Error) => {
          // Redis or PostgreSQL down: the rows wait; try again next tick.
          if (await (deps.isOutage?.() ?? Promise.resolve(false)).catch(() => false)) return;
          logger.warn('relay tick failed; retrying next tick', { err: err.message });
        })
        .finally(schedule);
    }, intervalMs);
    // The relay alone must not keep a process alive.
    timer.unref();
  };
  schedule();

  return {
    runOnce,
    refill,
    refillUntilDone,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
