import { newId } from '@hookline/domain';
import {
  createDb, dropPartitions, ensurePartitions, listPartitions, PARTITIONED_TABLES, PARTITIONS_AHEAD, runMigrations, withPartitionNet, writeEventBatch,
  type Db,
} from '../src';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// The partitioned history (docs/operations.md, "Partitions"), on PostgreSQL and
// on PGlite: partitions are made ahead and rows land in them; a publish on each
// side of a boundary lands on its side; a missing partition is made by the safety
// net and the write goes through; retention detaches and drops whole old
// partitions and keeps every one a waiting delivery needs.

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** Only Date is faked: the database drivers' timers keep running. */
function freezeDate(at: Date) {
  jest.useFakeTimers({ doNotFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'hrtime', 'performance'] });
  jest.setSystemTime(at);
}

const nextUtcMidnight = (ms: number) => Math.floor(ms / DAY) * DAY + DAY;

async function seed(db: Db): Promise<{ accountId: string; webhookId: string }> {
  const accountId = newId('account');
  const webhookId = newId('webhook');
  await db.sql.query(`INSERT INTO accounts (id, name, updated_at) VALUES ($1, 'P', now())`, [accountId]);
  await db.sql.query(
    `INSERT INTO webhooks (id, account_id, url, events, signing_secret_enc, updated_at) VALUES ($1, $2, 'https://example.com/h', ARRAY['quota.warning'], 'x', now())`,
    [webhookId, accountId],
  );
  return { accountId, webhookId };
}

/** Which partition holds the row. */
async function partitionOf(db: Db, table: string, id: string): Promise<string | undefined> {
  const [row] = await db.sql.query<{ p: string }>(`SELECT tableoid::regclass::text AS p FROM ${table} WHERE id = $1`, [id]);
  return row?.p;
}

async function publish(db: Db, accountId: string) {
  const [written] = await writeEventBatch(db.sql, [{ accountId, event: 'quota.warning', parserId: null, data: { n: 1 } }]);
  return written!;
}

const stores: [string, () => Promise<{ db: Db; done: () => Promise<void> }>][] = [
  ['PostgreSQL', async () => {
    const t: TestDatabase = await createTestDatabase({ poolSize: 3 });
    return { db: t.db, done: () => t.drop() };
  }],
  ['PGlite', async () => {
    const db = await createDb({ pgliteDir: 'memory://' });
    await runMigrations(db.sql, { contract: true });
    return { db, done: () => db.close() };
  }],
];

describe.each(stores)('on %s', (_name, open) => {
  let db: Db;
  let done: () => Promise<void>;
  beforeAll(async () => {
    ({ db, done } = await open());
  }, 60_000);
  afterAll(async () => {
    jest.useRealTimers();
    await done?.();
  });
  afterEach(() => jest.useRealTimers());

  it('the migration leaves the old table as one bounded partition and the next day made; ensure makes the rest ahead, contiguous', async () => {
    for (const table of PARTITIONED_TABLES) {
      const [legacy] = await listPartitions(db.sql, table);
      expect(legacy).toEqual({ partition: `${table}_legacy`, lowerBound: null, upperBound: expect.any(Date) });
    }
    const at = new Date();
    const made = await ensurePartitions(db, at);
    expect(made.length).toBeGreaterThan(0);
    // Again: nothing is missing, nothing is made.
    expect(await ensurePartitions(db, at)).toEqual([]);
    for (const table of PARTITIONED_TABLES) {
      const ranges = await listPartitions(db.sql, table);
      for (let i = 1; i < ranges.length; i++) expect(ranges[i].lowerBound).toEqual(ranges[i - 1].upperBound);
      expect(ranges[ranges.length - 1].upperBound.getTime()).toBeGreaterThan(at.getTime() + PARTITIONS_AHEAD * DAY);
      // Days end at UTC midnight.
      for (const r of ranges) expect(r.upperBound.getTime() % DAY).toBe(0);
    }
  });

  it('a publish just before a boundary and one at it land on each side, in partitions made ahead', async () => {
    const { accountId } = await seed(db);
    const boundary = nextUtcMidnight(Date.now()) + DAY; // a partition the migration did not make: ensure did
    freezeDate(new Date(boundary - 1));
    const before = await publish(db, accountId);
    jest.setSystemTime(new Date(boundary));
    const at = await publish(db, accountId);
    jest.useRealTimers();
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
    expect(await partitionOf(db, 'events', before.eventId)).toBe(`events_p${day(boundary - 1)}`);
    expect(await partitionOf(db, 'deliveries', before.deliveryIds[0])).toBe(`deliveries_p${day(boundary - 1)}`);
    expect(await partitionOf(db, 'events', at.eventId)).toBe(`events_p${day(boundary)}`);
    expect(await partitionOf(db, 'deliveries', at.deliveryIds[0])).toBe(`deliveries_p${day(boundary)}`);
  });

  it('a publish whose partition is missing makes it (the safety net) and is written', async () => {
    const { accountId } = await seed(db);
    const ranges = await listPartitions(db.sql, 'events');
    const beyond = ranges[ranges.length - 1].upperBound.getTime() + 2 * DAY + HOUR;
    freezeDate(new Date(beyond));
    await expect(publish(db, accountId)).rejects.toThrow(/no partition of relation "events" found for row/);
    const written = await withPartitionNet(db, () => publish(db, accountId));
    jest.useRealTimers();
    const [row] = await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM deliveries WHERE event_id = $1', [written.eventId]);
    expect(row.n).toBe(1);
    const last = (await listPartitions(db.sql, 'events')).pop()!;
    expect(last.upperBound.getTime()).toBeGreaterThan(beyond + PARTITIONS_AHEAD * DAY - DAY);
  });

  it('retention detaches and drops whole old partitions, and keeps every one a waiting delivery needs', async () => {
    const { accountId, webhookId } = await seed(db);
    // The deliveries the tests above published (pending) would rightly keep their partitions: end them.
    await db.sql.query(`UPDATE deliveries SET status = 'succeeded' WHERE status IN ('pending', 'pending_retry')`);
    const ranges = await listPartitions(db.sql, 'events');
    // Three days of traffic in partitions made ahead: day 1 all ended; day 2 with one delivery still retrying
    // and an attempt logged on day 3; day 3 ended.
    const day1 = ranges[2].lowerBound!.getTime() + HOUR;
    const written: Record<string, Awaited<ReturnType<typeof publish>>> = {};
    for (const [name, at] of [['ended', day1], ['waiting', day1 + DAY], ['later', day1 + 2 * DAY]] as const) {
      freezeDate(new Date(at));
      written[name] = await publish(db, accountId);
      jest.useRealTimers();
    }
    const status = (id: string, s: string) => db.sql.query('UPDATE deliveries SET status = $2 WHERE id = $1', [id, s]);
    await status(written.ended.deliveryIds[0], 'succeeded');
    await status(written.waiting.deliveryIds[0], 'pending_retry');
    await status(written.later.deliveryIds[0], 'failed');
    const attempt = (deliveryId: string, at: number) => db.sql.query(
      `INSERT INTO attempts (id, delivery_id, webhook_id, attempt_number, status, duration_ms, created_at) VALUES ($1, $2, $3, 1, 'failed', 5, $4)`,
      [newId('attempt', at), deliveryId, webhookId, new Date(at)],
    );
    await attempt(written.ended.deliveryIds[0], day1 + 60_000);
    await attempt(written.waiting.deliveryIds[0], day1 + 2 * DAY); // the waiting delivery's attempt, in day 3's partition

    // Bulk in day 1 (50,000 ended deliveries): a drop reads none of them.
    await db.sql.query(
      `INSERT INTO deliveries (id, webhook_id, event_id, status, created_at)
       SELECT 'dlv_bulk_' || i, $1, 'evt_bulk_' || i, 'succeeded', $2::timestamptz FROM generate_series(1, 50000) i`,
      [webhookId, new Date(day1)],
    );
    const partition = (table: string, at: number) => `${table}_p${new Date(at).toISOString().slice(0, 10).replace(/-/g, '')}`;
    // Everything up to the end of day 3 is older than RETENTION.
    const before = new Date(ranges[5].lowerBound!.getTime());
    const started = Date.now();
    const result = await dropPartitions(db.sql, before);
    // About fifteen partitions, one transaction each, the largest 50,000 rows: well under a second each.
    expect(Date.now() - started).toBeLessThan(3_000);
    const kept = result.filter((r) => r.kept).map((r) => r.partition).sort();
    const dropped = result.filter((r) => !r.kept).map((r) => r.partition);
    expect(kept).toEqual([partition('attempts', day1 + 2 * DAY), partition('deliveries', day1 + DAY), partition('events', day1 + DAY)].sort());
    expect(dropped).toEqual(expect.arrayContaining([
      'events_legacy', 'deliveries_legacy', 'attempts_legacy',
      partition('events', day1), partition('deliveries', day1), partition('attempts', day1),
      partition('events', day1 + 2 * DAY), partition('deliveries', day1 + 2 * DAY),
    ]));
    for (const r of result.filter((x) => x.kept)) expect(r.reason).toBe('a waiting delivery');

    // The waiting delivery, its event and its attempt are all still there; the ended ones are gone.
    const count = async (table: string, column: string, id: string) =>
      (await db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${column} = $1`, [id]))[0].n;
    expect(await count('deliveries', 'id', written.waiting.deliveryIds[0])).toBe(1);
    expect(await count('events', 'id', written.waiting.eventId)).toBe(1);
    expect(await count('attempts', 'delivery_id', written.waiting.deliveryIds[0])).toBe(1);
    expect(await count('deliveries', 'id', written.ended.deliveryIds[0])).toBe(0);
    expect(await count('events', 'id', written.ended.eventId)).toBe(0);
    expect(await count('attempts', 'delivery_id', written.ended.deliveryIds[0])).toBe(0);
    expect(await count('events', 'id', written.later.eventId)).toBe(0);

    // Once the delivery ends, its partitions go at the next drop.
    await status(written.waiting.deliveryIds[0], 'succeeded');
    const next = await dropPartitions(db.sql, before);
    expect(next.filter((r) => r.kept)).toEqual([]);
    expect(next.map((r) => r.partition).sort()).toEqual(kept);
    expect(await count('deliveries', 'id', written.waiting.deliveryIds[0])).toBe(0);
  });
});
