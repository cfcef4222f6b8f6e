import { Writable } from 'node:stream';
import { createLogger } from '@hookline/config';
import { createDb, type Db } from '@hookline/db';
import { createMetrics } from '@hookline/metrics';
import { RETENTION_LOCK_ID, RETENTION_SQL, SKIPPED_LOCKED, startRetentionSweeper, type RetentionDeps, type SweepResult } from '../src/retention';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';
import { waitUntil } from '../../../tests/support/wait-until';

// The retention sweeper against a real PostgreSQL: exactly the rows older than
// RETENTION whose lifecycle is over go (and expired idempotency records),
// everything else stays; batches loop; a sweep is bounded in time; one sweeper
// at a time across processes; the statements use indexes, not table scans.

const DAY = 86_400_000;
const RETENTION = 30 * DAY;
const OLD = "now() - interval '31 days'";
const NEW = "now() - interval '29 days'";
const SECRET = 'payload-marker-never-logged';

const silent = () => createLogger({ level: 'error', service: 'retention-test', silent: true });
const neverOnItsOwn = { intervalMs: 3_600_000, firstRunMs: 3_600_000 } as const;

function sweeper(db: Db, over: Partial<RetentionDeps> = {}) {
  return startRetentionSweeper({
    db,
    logger: silent(),
    metrics: createMetrics({ app: 'retention-test', defaultMetrics: false }),
    retentionMs: RETENTION,
    pauseMs: 0,
    ...neverOnItsOwn,
    ...over,
  });
}

async function ids(db: Db, table: string, column = 'id'): Promise<string[]> {
  const rows = await db.sql.query<{ id: string }>(`SELECT ${column} AS id FROM ${table} ORDER BY 1`);
  return rows.map((row) => row.id);
}

async function seedAccount(db: Db) {
  await db.sql.exec(`
    INSERT INTO accounts (id, name, updated_at) VALUES ('acct_r', 'Retention', now());
    INSERT INTO webhooks (id, account_id, url, events, signing_secret_enc, updated_at) VALUES
      ('wh_a', 'acct_r', 'https://a.example.com/hook', ARRAY['document.extracted'], 'v1:x:y:z', now()),
      ('wh_b', 'acct_r', 'https://b.example.com/hook', ARRAY['document.extracted'], 'v1:x:y:z', now());`);
}

/** An event created at `at`, one delivery per [webhook, status] (with `attempts` attempts each). */
async function event(db: Db, id: string, at: string, deliveries: [string, string][], attempts = 2) {
  await db.sql.query(`INSERT INTO events (id, account_id, event, data, created_at) VALUES ($1, 'acct_r', 'document.extracted', $2, ${at})`, [id, JSON.stringify({ secret: SECRET })]);
  for (const [webhook, status] of deliveries) {
    const dlv = `dlv_${id}_${webhook}`;
    await db.sql.query(
      `INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, status, attempt_count, created_at, updated_at)
       VALUES ($1, 'acct_r', $2, $3, 'document.extracted', $4, $5, ${at}, ${at})`,
      [dlv, webhook, id, status, attempts],
    );
    for (let n = 1; n <= attempts; n++) {
      await db.sql.query(
        `INSERT INTO attempts (id, delivery_id, webhook_id, event_id, event, attempt_number, status, response_body, duration_ms, created_at)
         VALUES ($1, $2, $3, $4, 'document.extracted', $5, 'failed', $6, 12, ${at})`,
        [`att_${dlv}_${n}`, dlv, webhook, id, n, SECRET],
      );
    }
  }
}

async function extraction(db: Db, id: string, at: string, status: string, documents = 2) {
  await db.sql.query(
    `INSERT INTO extractions (id, account_id, document_count, status, created_at, updated_at) VALUES ($1, 'acct_r', $2, $3, ${at}, ${at})`,
    [id, documents, status],
  );
  for (let n = 1; n <= documents; n++) {
    await db.sql.query(
      `INSERT INTO extraction_documents (extraction_id, document_id, status, result, created_at) VALUES ($1, $2, 'completed', $3, ${at})`,
      [id, `doc_${n}`, JSON.stringify({ secret: SECRET })],
    );
  }
}

async function idempotency(db: Db, scope: string, createdAt: string, expiresAt: string) {
  await db.sql.query(
    `INSERT INTO idempotency_records (scope, request_hash, response_status, response_body, created_at, expires_at) VALUES ($1, 'h', 201, '{}', ${createdAt}, ${expiresAt})`,
    [scope],
  );
}

/** Eight old events whose deliveries are all over (more than two batches of 3), one without any delivery. */
async function seedOldFinishedEvents(db: Db, prefix = 'evt_old') {
  const finished = ['succeeded', 'failed', 'cancelled'];
  for (let i = 0; i < 7; i++) await event(db, `${prefix}_${i}`, OLD, [['wh_a', finished[i % 3]], ['wh_b', finished[(i + 1) % 3]]]);
  await event(db, `${prefix}_bare`, OLD, []);
}

describe('one sweep', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    await seedAccount(t.db);
  });
  afterAll(() => t.drop());

  it('deletes exactly what is older than RETENTION and over, in batches, and nothing else', async () => {
    const { db } = t;
    await seedOldFinishedEvents(db);
    // Old, but a delivery still waits: the event, all its deliveries (even the finished one) and their attempts stay.
    await event(db, 'evt_keep_retry', OLD, [['wh_a', 'succeeded'], ['wh_b', 'pending_retry']]);
    await event(db, 'evt_keep_pending', OLD, [['wh_a', 'pending']], 0);
    // Just inside RETENTION: stays, finished or not.
    await event(db, 'evt_new', NEW, [['wh_a', 'succeeded'], ['wh_b', 'failed']]);
    await event(db, 'evt_edge', "now() - interval '30 days' + interval '1 minute'", [['wh_a', 'succeeded']]);

    for (const [i, status] of ['completed', 'failed', 'partial', 'completed'].entries()) await extraction(db, `ext_old_${i}`, OLD, status);
    await extraction(db, 'ext_old_processing', OLD, 'processing');
    await extraction(db, 'ext_new', NEW, 'completed');

    // Expired goes whatever its age; unexpired stays however old.
    await idempotency(db, 'acct_r:POST /v1/webhooks:expired-old', OLD, "now() - interval '1 day'");
    await idempotency(db, 'acct_r:POST /v1/webhooks:expired-recent', "now() - interval '2 days'", "now() - interval '1 minute'");
    await idempotency(db, 'acct_r:POST /v1/webhooks:expired-3', "now() - interval '3 days'", "now() - interval '2 days'");
    await idempotency(db, 'acct_r:POST /v1/webhooks:expired-4', "now() - interval '3 days'", "now() - interval '2 days'");
    await idempotency(db, 'acct_r:POST /v1/webhooks:live-old', OLD, "now() + interval '1 hour'");
    await idempotency(db, 'acct_r:POST /v1/webhooks:live', 'now()', "now() + interval '1 day'");

    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const metrics = createMetrics({ app: 'retention-test', defaultMetrics: false });
    // A batch of 3: 8 events, 5 extractions and 4 records need several statements each.
    const s = sweeper(db, { batchSize: 3, pauseMs: 5, metrics, logger: createLogger({ level: 'info', service: 'worker', stream: sink }) });
    let result: SweepResult;
    try {
      result = await s.runOnce();
    } finally {
      await s.stop();
    }

    expect(result).toEqual({
      skipped: false,
      complete: true,
      // Every row here is in the legacy partition (the table as it was, up to the next UTC midnight): rows go one by one.
      partitions: { created: expect.any(Array), dropped: [], kept: [] },
      // 7 events × 2 deliveries × 2 attempts, plus the bare event.
      deleted: { events: 8, deliveries: 14, attempts: 28, extractions: 4, extraction_documents: 8, idempotency_records: 4 },
    });

    expect(await ids(db, 'events')).toEqual(['evt_edge', 'evt_keep_pending', 'evt_keep_retry', 'evt_new']);
    expect(await ids(db, 'deliveries')).toEqual([
      'dlv_evt_edge_wh_a', 'dlv_evt_keep_pending_wh_a', 'dlv_evt_keep_retry_wh_a', 'dlv_evt_keep_retry_wh_b', 'dlv_evt_new_wh_a', 'dlv_evt_new_wh_b',
    ]);
    const attempts = await ids(db, 'attempts');
    expect(attempts).toHaveLength(10);
    expect(attempts.every((id) => /^att_dlv_evt_(edge|keep_retry|new)_/.test(id))).toBe(true);
    expect(await ids(db, 'extractions')).toEqual(['ext_new', 'ext_old_processing']);
    expect(await ids(db, 'extraction_documents', "extraction_id || '/' || document_id")).toEqual([
      'ext_new/doc_1', 'ext_new/doc_2', 'ext_old_processing/doc_1', 'ext_old_processing/doc_2',
    ]);
    expect(await ids(db, 'idempotency_records', 'scope')).toEqual(['acct_r:POST /v1/webhooks:live', 'acct_r:POST /v1/webhooks:live-old']);

    // The counter, by table.
    const counter = await metrics.retentionDeleted.get();
    const byTable = Object.fromEntries(counter.values.map((v) => [v.labels.table, v.value]));
    expect(byTable).toEqual({ events: 8, deliveries: 14, attempts: 28, extractions: 4, extraction_documents: 8, idempotency_records: 4 });

    // One log line with the counts, never a payload.
    const swept = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.message === 'retention sweep deleted old rows');
    expect(swept).toHaveLength(1);
    expect(swept[0]).toMatchObject({ events: 8, deliveries: 14, attempts: 28, extractions: 4, extraction_documents: 8, idempotency_records: 4, complete: true });
    expect(lines.join('')).not.toContain(SECRET);
  });

  it('deletes nothing and logs nothing when nothing is due', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const s = sweeper(t.db, { batchSize: 3, logger: createLogger({ level: 'info', service: 'worker', stream: sink }) });
    try {
      expect(await s.runOnce()).toEqual({
        skipped: false,
        complete: true,
        partitions: { created: expect.any(Array), dropped: [], kept: [] },
        deleted: { events: 0, deliveries: 0, attempts: 0, extractions: 0, extraction_documents: 0, idempotency_records: 0 },
      });
    } finally {
      await s.stop();
    }
    expect(lines).toEqual([]);
    expect(await ids(t.db, 'events')).toHaveLength(4);
  });
});

describe('partitions', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    await seedAccount(t.db);
  });
  afterAll(() => t.drop());

  // The sweeper's clock moved 40 days on: every partition of today and before is wholly older than RETENTION.
  it('makes partitions ahead, drops whole old ones, and keeps one a waiting delivery needs until it ends', async () => {
    const { db } = t;
    await event(db, 'evt_old_ended', OLD, [['wh_a', 'succeeded']]);
    await event(db, 'evt_old_waiting', OLD, [['wh_a', 'pending_retry']], 1);
    const later = Date.now() + 40 * DAY;
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const s = sweeper(db, { now: () => new Date(later), logger: createLogger({ level: 'info', service: 'worker', stream: sink }) });
    let first: SweepResult;
    try {
      first = await s.runOnce();
    } finally {
      await s.stop();
    }
    if (first.skipped) throw new Error('skipped');
    // Made ahead of the moved clock.
    const [last] = await db.sql.query<{ upper_bound: Date }>(`SELECT max(upper_bound) AS upper_bound FROM hookline_partitions('deliveries')`);
    expect(new Date(last.upper_bound).getTime()).toBeGreaterThan(later + 2 * DAY);
    // The legacy partitions hold the waiting delivery, its event and its attempt: kept (and said); the ended event went row by row.
    expect(first.partitions.kept.sort()).toEqual(['attempts_legacy', 'deliveries_legacy', 'events_legacy']);
    expect(first.partitions.dropped.length).toBeGreaterThan(0);
    expect(first.partitions.dropped).not.toEqual(expect.arrayContaining(['deliveries_legacy']));
    expect(lines.join('')).toMatch(/old partition kept.*deliveries_legacy/);
    expect(await ids(db, 'events')).toEqual(['evt_old_waiting']);
    expect(await ids(db, 'deliveries')).toEqual(['dlv_evt_old_waiting_wh_a']);

    // Once it ends, the next sweep drops them.
    await db.sql.query(`UPDATE deliveries SET status = 'succeeded' WHERE id = 'dlv_evt_old_waiting_wh_a'`);
    const again = sweeper(db, { now: () => new Date(later) });
    try {
      const second = await again.runOnce();
      if (second.skipped) throw new Error('skipped');
      expect(second.partitions.dropped.sort()).toEqual(['attempts_legacy', 'deliveries_legacy', 'events_legacy']);
      expect(second.partitions.kept).toEqual([]);
    } finally {
      await again.stop();
    }
    expect(await ids(db, 'events')).toEqual([]);
  });
});

describe('bounded sweeps, the timer, shutdown', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    await seedAccount(t.db);
  });
  afterAll(() => t.drop());

  it('stops a sweep after maxSweepMs and the next one continues', async () => {
    await seedOldFinishedEvents(t.db, 'evt_bound');
    const s = sweeper(t.db, { batchSize: 3, pauseMs: 30, maxSweepMs: 1 });
    try {
      const first = await s.runOnce();
      expect(first).toMatchObject({ skipped: false, complete: false, deleted: { events: 3, deliveries: 6, attempts: 12 } });
      expect(await ids(t.db, 'events')).toHaveLength(5);
      const second = await s.runOnce();
      expect(second).toMatchObject({ skipped: false, complete: false, deleted: { events: 3 } });
      const third = await s.runOnce();
      expect(third).toMatchObject({ skipped: false, deleted: { events: 2 } });
      expect(await ids(t.db, 'events')).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it('sweeps on its own timer, and stop() ends a running sweep at its next pause', async () => {
    await seedOldFinishedEvents(t.db, 'evt_timer');
    // First run at once; one event per batch, a minute's pause between batches.
    const s = sweeper(t.db, { batchSize: 1, pauseMs: 60_000, firstRunMs: 0, intervalMs: 3_600_000 });
    await waitUntil(async () => (await ids(t.db, 'events')).length < 8, 'the first batch swept');
    const started = Date.now();
    await s.stop();
    expect(Date.now() - started).toBeLessThan(5_000);
    // The first batch ran, the pause was cut short, no second batch followed.
    expect(await ids(t.db, 'events')).toHaveLength(7);
    // Stopped: the lock is free for the next sweeper.
    const next = sweeper(t.db, { batchSize: 10 });
    try {
      expect(await next.runOnce()).toMatchObject({ skipped: false, deleted: { events: 7 } });
    } finally {
      await next.stop();
    }
  });
});

describe('one sweeper at a time', () => {
  let t: TestDatabase;
  let other: Db;
  beforeAll(async () => {
    t = await createTestDatabase();
    // A second worker process: its own pool on the same database.
    other = await createDb({ databaseUrl: t.url, poolSize: 2 });
    await seedAccount(t.db);
  });
  afterAll(async () => {
    await other.close();
    await t.drop();
  });

  const lockHeld = async () => {
    const [row] = await t.db.sql.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
      [RETENTION_LOCK_ID],
    );
    return (row?.n ?? 0) > 0;
  };

  it('a second sweeper skips while the first holds the lock for its whole sweep, then may run', async () => {
    await seedOldFinishedEvents(t.db);
    // One event per batch and a pause between: the first sweep lasts over a second, between batches too.
    const first = sweeper(t.db, { batchSize: 1, pauseMs: 150 });
    const second = sweeper(other, { batchSize: 1 });
    try {
      const running = first.runOnce();
      await waitUntil(lockHeld, 'the first sweeper holding the lock', { timeoutMs: 5_000, intervalMs: 5 });

      // Tried twice, between the first's batches: skipped each time, nothing deleted by it.
      expect(await second.runOnce()).toEqual({ skipped: true, reason: SKIPPED_LOCKED });
      // Again once the first sweep is under way (two batches done), still between its batches.
      await waitUntil(async () => (await ids(t.db, 'events')).length <= 6, 'the first sweep under way');
      const remaining = (await ids(t.db, 'events')).length;
      expect(remaining).toBeGreaterThan(0);
      expect(remaining).toBeLessThan(8);
      expect(await second.runOnce()).toEqual({ skipped: true, reason: SKIPPED_LOCKED });

      expect(await running).toMatchObject({ skipped: false, complete: true, deleted: { events: 8, deliveries: 14, attempts: 28 } });
      expect(await lockHeld()).toBe(false);
      // The lock is released with the sweep: the other process's sweeper runs now.
      expect(await second.runOnce()).toMatchObject({ skipped: false, complete: true, deleted: { events: 0 } });
    } finally {
      await first.stop();
      await second.stop();
    }
  });

  it('two sweepers started at once: exactly one sweeps', async () => {
    await seedOldFinishedEvents(t.db, 'evt_race');
    const a = sweeper(t.db, { batchSize: 2, pauseMs: 50 });
    const b = sweeper(other, { batchSize: 2, pauseMs: 50 });
    try {
      const results = await Promise.all([a.runOnce(), b.runOnce()]);
      expect(results.filter((r) => r.skipped)).toEqual([{ skipped: true, reason: SKIPPED_LOCKED }]);
      expect(results.find((r) => !r.skipped)).toMatchObject({ complete: true, deleted: { events: 8 } });
      expect(await ids(t.db, 'events')).toEqual([]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('indexes', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    await seedAccount(t.db);
  });
  afterAll(() => t.drop());

  it('every table a batch reads or deletes from is reached through an index, never a table scan', async () => {
    // Seq scans priced out, the plan shows which index serves each access; each must
    // be one whose leading column is the condition (without this migration the
    // planner falls back to a Seq Scan, or to walking a whole unrelated index).
    // On a few thousand rows the planner rightly prefers hashing a whole small table;
    // on 200,000 events with 400,000 deliveries and attempts it picks these same
    // index scans unprompted (about 25 ms for a batch of 500 events).
    await t.db.sql.exec(`
      INSERT INTO events (id, account_id, event, data, created_at)
        SELECT 'evt_' || i, 'acct_r', 'document.extracted', '{}', now() - (i * interval '1 hour') FROM generate_series(1, 2000) i;
      INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, status, created_at, updated_at)
        SELECT 'dlv_' || w || '_' || i, 'acct_r', w, 'evt_' || i, 'document.extracted',
               CASE WHEN i % 50 = 0 THEN 'pending_retry' ELSE 'succeeded' END, now() - (i * interval '1 hour'), now()
          FROM generate_series(1, 2000) i, unnest(ARRAY['wh_a', 'wh_b']) w;
      INSERT INTO attempts (id, delivery_id, webhook_id, event_id, event, attempt_number, status, duration_ms, created_at)
        SELECT 'att_' || id, id, webhook_id, event_id, event, 1, 'succeeded', 5, created_at FROM deliveries;
      INSERT INTO extractions (id, account_id, document_count, status, created_at, updated_at)
        SELECT 'ext_' || i, 'acct_r', 1, 'completed', now() - (i * interval '1 hour'), now() FROM generate_series(1, 2000) i;
      INSERT INTO extraction_documents (extraction_id, document_id, status, created_at)
        SELECT 'ext_' || i, 'doc_1', 'completed', now() FROM generate_series(1, 2000) i;
      INSERT INTO idempotency_records (scope, request_hash, response_status, expires_at)
        SELECT 'k' || i, 'h', 201, now() + ((i - 1000) * interval '1 minute') FROM generate_series(1, 2000) i;
      ANALYZE;`);
    const plans = await t.db.sql.withSession(async (sql) => {
      await sql.exec('SET enable_seqscan = off');
      try {
        const out: Record<string, string> = {};
        for (const [name, text, params] of [
          ['events', RETENTION_SQL.events, [RETENTION, 500]],
          ['extractions', RETENTION_SQL.extractions, [RETENTION, 500]],
          ['idempotency', RETENTION_SQL.idempotency, [500]],
        ] as const) {
          const rows = await sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${text}`, [...params]);
          out[name] = rows.map((row) => row['QUERY PLAN']).join('\n');
        }
        return out;
      } finally {
        await sql.exec('RESET enable_seqscan');
      }
    });
    for (const plan of Object.values(plans)) expect(plan).not.toMatch(/Seq Scan/);
    // events, deliveries and attempts are partitioned: each partition's copy of the index serves (named after the partition).
    expect(plans.events).toMatch(/Index Scan using events_\w*created_at_idx on events_/);
    expect(plans.events).toMatch(/using deliveries_\w*event_id_created_at_idx/);
    expect(plans.events).toMatch(/using attempts_\w*delivery_id_attempt_number_\w*(key|idx)/);
    expect(plans.extractions).toMatch(/Index Scan using extractions_created_at_idx on extractions/);
    expect(plans.extractions).toMatch(/using extraction_documents_pkey/);
    expect(plans.idempotency).toMatch(/Index Scan using idempotency_records_expires_at_idx on idempotency_records/);
  });
});
