import { newId } from '@hookline/domain';
import { createDb, createdAtWhereAll, createdRange, ensurePartitions, runMigrations, writeEventBatch, type Db } from '@hookline/db';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';
import { LOAD_SQL, RECORD_SQL } from '../src/delivery-store';

// Lookups by id stay on one partition (docs/operations.md, "Partitions"): with
// deliveries on several days' partitions, the worker's load (delivery and its
// event), its record (the delivery's update) and the API's lookup of a delivery
// by id (the shape Prisma sends: id and a created_at range) each read one
// partition of each table, through its index; a page of the API's list reads its
// event names on the partitions the page spans. An id issued before ids carried
// time is still found (in every partition). On PostgreSQL and on PGlite.

const DAY = 86_400_000;

const stores: [string, () => Promise<{ db: Db; done: () => Promise<void> }>][] = [
  ['PostgreSQL', async () => {
    const t: TestDatabase = await createTestDatabase({ poolSize: 2 });
    return { db: t.db, done: () => t.drop() };
  }],
  ['PGlite', async () => {
    const db = await createDb({ pgliteDir: 'memory://' });
    await runMigrations(db.sql, { contract: true });
    return { db, done: () => db.close() };
  }],
];

/** The plan as run (EXPLAIN ANALYZE), one line per node: pruned partitions are absent or "never executed". */
async function plan(db: Db, text: string, params: unknown[]): Promise<string> {
  return db.sql.withSession(async (sql) => {
    await sql.exec('SET enable_seqscan = off');
    try {
      const rows = await sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ${text}`, params);
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      await sql.exec('RESET enable_seqscan');
    }
  });
}

/** The partitions of `table` the plan read (a scan node that ran). */
function scanned(text: string, table: string): string[] {
  const lines = text.split('\n').filter((line) => new RegExp(`Scan.* on ${table}_\\w+`).test(line) && !/never executed/.test(line));
  return [...new Set(lines.map((line) => new RegExp(`on (${table}_\\w+)`).exec(line)![1]))];
}

describe.each(stores)('on %s', (_name, open) => {
  let db: Db;
  let done: () => Promise<void>;
  const ids: { eventId: string; deliveryId: string; day: string }[] = [];
  let oldId: string;
  let accountId: string;
  let webhookId: string;

  beforeAll(async () => {
    ({ db, done } = await open());
    accountId = newId('account');
    webhookId = newId('webhook');
    await db.sql.query(`INSERT INTO accounts (id, name, updated_at) VALUES ($1, 'L', now())`, [accountId]);
    await db.sql.query(
      `INSERT INTO webhooks (id, account_id, url, events, signing_secret_enc, updated_at) VALUES ($1, $2, 'https://example.com/l', ARRAY['quota.warning'], 'x', now())`,
      [webhookId, accountId],
    );
    await ensurePartitions(db, new Date(Date.now() + 3 * DAY));
    // Four days of deliveries, each day in its own partition (made ahead).
    const first = Math.floor(Date.now() / DAY) * DAY + DAY + 3_600_000;
    for (let d = 0; d < 4; d++) {
      jest.useFakeTimers({ doNotFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'hrtime', 'performance'] });
      for (let n = 0; n < 20; n++) {
        jest.setSystemTime(new Date(first + d * DAY + n * 1000));
        const [w] = await writeEventBatch(db.sql, [{ accountId, event: 'quota.warning', parserId: null, data: { n } }]);
        ids.push({ eventId: w!.eventId, deliveryId: w!.deliveryIds[0], day: new Date(first + d * DAY).toISOString().slice(0, 10).replace(/-/g, '') });
      }
      jest.useRealTimers();
    }
    // A delivery whose id carries no time (issued before ids did), in the legacy partition.
    oldId = 'dlv_' + 'x'.repeat(24);
    const oldEvent = 'evt_' + 'y'.repeat(24);
    // (An event and its deliveries are written at one created_at, as every version's outbox wrote them.)
    await db.sql.query(`INSERT INTO events (id, account_id, event, data, created_at) VALUES ($1, $2, 'quota.warning', '{}', now() - interval '2 days')`, [oldEvent, accountId]);
    await db.sql.query(`INSERT INTO deliveries (id, webhook_id, event_id, created_at) VALUES ($1, $2, $3, now() - interval '2 days')`, [oldId, webhookId, oldEvent]);
    await db.sql.exec('ANALYZE');
  }, 120_000);
  afterAll(async () => {
    jest.useRealTimers();
    await done?.();
  });

  it('the worker\'s load reads one partition of deliveries and one of events, by index', async () => {
    const target = ids[45];
    const { from, to } = createdRange(target.deliveryId);
    const text = await plan(db, LOAD_SQL, [[target.deliveryId], [from], [to]]);
    expect(scanned(text, 'deliveries')).toEqual([`deliveries_p${target.day}`]);
    expect(scanned(text, 'events')).toEqual([`events_p${target.day}`]);
    expect(text).not.toMatch(/Seq Scan on (deliveries|events)_/);
    const [row] = await db.sql.query<{ id: string; event_id: string }>(LOAD_SQL, [[target.deliveryId], [from], [to]]);
    expect(row).toMatchObject({ id: target.deliveryId, event_id: target.eventId });
  });

  it('the worker\'s record updates the delivery on its one partition', async () => {
    const target = ids[70];
    const { from, to } = createdRange(target.deliveryId);
    const at = new Date();
    const params = [[target.deliveryId], ['succeeded'], [at], [null], [0], [newId('attempt')], ['succeeded'], [200], [''], [null], [5], [null], false, [from], [to]];
    const text = await db.sql.withSession(async (sql) => {
      await sql.exec('BEGIN');
      try {
        const rows = await sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ${RECORD_SQL}`, params);
        return rows.map((row) => row['QUERY PLAN']).join('\n');
      } finally {
        await sql.exec('ROLLBACK');
      }
    });
    expect(scanned(text, 'deliveries')).toEqual([`deliveries_p${target.day}`]);
  });

  it('a lookup by id and created_at range (the API\'s, through Prisma) is pruned to one partition when planned', async () => {
    const target = ids[5];
    const { from, to } = createdRange(target.deliveryId);
    const text = await plan(db, 'SELECT * FROM deliveries WHERE id = $1 AND created_at >= $2 AND created_at <= $3', [target.deliveryId, from, to]);
    expect(scanned(text, 'deliveries')).toEqual([`deliveries_p${target.day}`]);
    expect(text).toMatch(new RegExp(`Index Scan using deliveries_p${target.day}_pkey`));
  });

  it('a page\'s event names (the API\'s list: ids and the span of their times, through Prisma) read only the partitions the page spans', async () => {
    // Ten deliveries across the third and fourth days.
    const page = ids.slice(55, 65);
    const eventIds = page.map((p) => p.eventId);
    const { createdAt } = createdAtWhereAll(eventIds);
    const list = eventIds.map((_, i) => `$${i + 1}`).join(', ');
    const text = await plan(db, `SELECT id, event FROM events WHERE id IN (${list}) AND created_at >= $${eventIds.length + 1} AND created_at <= $${eventIds.length + 2}`, [...eventIds, createdAt!.gte, createdAt!.lte]);
    expect(scanned(text, 'events').sort()).toEqual([...new Set(page.map((p) => `events_p${p.day}`))].sort());
    expect(scanned(text, 'events')).toHaveLength(2);
    expect(text).not.toMatch(/Seq Scan on events_/);
    // An id that carries no time leaves the read unbounded (every partition), as before.
    expect(createdAtWhereAll([...eventIds, 'evt_' + 'y'.repeat(24)])).toEqual({});
  });

  it('a page of a webhook\'s deliveries (the list\'s query, as Prisma sends it) walks the list index newest first: ties of created_at in id order, no sort of the whole', async () => {
    // Three deliveries written by one batch, so at one created_at (the tie the id orders).
    await writeEventBatch(db.sql, [0, 1, 2].map((n) => ({ accountId, event: 'quota.warning', parserId: null, data: { n } })));
    const all = await db.sql.query<{ id: string; created_at: Date }>('SELECT id, created_at FROM deliveries WHERE webhook_id = $1', [webhookId]);
    const newestFirst = all.sort((a, b) => b.created_at.getTime() - a.created_at.getTime() || (a.id < b.id ? 1 : -1)).map((r) => r.id);
    const first = 'SELECT id FROM deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3';
    const text = await plan(db, first, [webhookId, 6, 0]);
    expect(text).toMatch(/Index Scan using deliveries_\w+_webhook_id_created_at_idx/);
    // An incremental sort of equal created_at's rows at most: never a Sort node over the webhook's deliveries.
    expect(text).not.toMatch(/(^|->)\s*Sort \(/m);
    expect((await db.sql.query<{ id: string }>(first, [webhookId, 6, 0])).map((r) => r.id)).toEqual(newestFirst.slice(0, 6));
    // The next page, from the cursor (created_at, id) of the page's last row, as listDeliveries asks for it.
    const cursor = all.find((r) => r.id === newestFirst[1])!;
    const next = `SELECT id FROM deliveries WHERE webhook_id = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3))
      ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5`;
    expect(await plan(db, next, [webhookId, cursor.created_at, cursor.id, 6, 0])).not.toMatch(/(^|->)\s*Sort \(/m);
    expect((await db.sql.query<{ id: string }>(next, [webhookId, cursor.created_at, cursor.id, 6, 0])).map((r) => r.id)).toEqual(newestFirst.slice(2, 8));
  });

  it('an id that carries no time is still found, in whichever partition it is', async () => {
    const { from, to } = createdRange(oldId);
    expect(from).toBeNull();
    const rows = await db.sql.query<{ id: string }>(LOAD_SQL, [[oldId], [from], [to]]);
    expect(rows.map((r) => r.id)).toEqual([oldId]);
  });
});
