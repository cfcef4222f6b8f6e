import { newId } from '@hookline/domain';
import { createDb, runMigrations, writeEvent, writeEventBatch, type Db, type OutboxSql, type UnkeyedEvent } from '../src';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// Payload filters in the outbox's one matching statement (MATCH_SQL), on a real
// PostgreSQL database and on PGlite (what `npm start` runs): every filter of a
// matrix against every event's data, compared with the rule stated here
// independently of the SQL; then the edges one by one, and that matching stays
// one statement however many webhooks carry filters.

type Json = string | number | boolean | null | Json[] | JsonObject;
type JsonObject = { [key: string]: Json };
type Filter = Record<string, Json>;

const DOC = 'extraction.document_completed';
const JOB = 'extraction.job_completed';

// ---- the rule, independently of the SQL ----

const MISSING = Symbol('missing');

function valueAt(data: Json, path: string): Json | typeof MISSING {
  let current: Json = data;
  for (const segment of path.split('.')) {
    if (Array.isArray(current)) {
      if (!/^(0|[1-9]\d*)$/.test(segment) || Number(segment) >= current.length) return MISSING;
      current = current[Number(segment)];
    } else if (current !== null && typeof current === 'object') {
      if (!Object.hasOwn(current, segment)) return MISSING;
      current = current[segment];
    } else {
      return MISSING;
    }
  }
  return current;
}

/** Every entry holds: the value at its path is present, a scalar, and equal (same JSON type) to the entry's value or one of its array's values. */
function filterHolds(filter: Filter | null, data: Json): boolean {
  if (!filter) return true;
  return Object.entries(filter).every(([path, expected]) => {
    const actual = valueAt(data, path);
    if (actual === MISSING || (actual !== null && typeof actual === 'object')) return false;
    return (Array.isArray(expected) ? expected : [expected]).some((option) => option === actual);
  });
}

// ---- the events and filters of the matrix ----

const DATA: JsonObject[] = [
  { status: 'completed', parser_id: 'p1', result: { kind: 'invoice', total: 12.5, paid: true, pages: 3, lines: [{ sku: 'A-1' }, { sku: 'B-2' }], tags: ['x', 'y'], note: null } },
  { status: 'failed', parser_id: 'p1', file_name: null, error: { code: 'timeout', message: 'took too long' } },
  { status: 'completed', parser_id: null, result: { kind: 'receipt', total: 7, paid: false, pages: 1, note: 'hand-written' } },
  { status: 'partial', parser_id: 'p2', document_count: 3, completed_count: 2, failed_count: 1 },
  { status: 'completed', parser_id: 'p2', document_count: 3, completed_count: 3, failed_count: 0, 'dotted.key': 'unreachable' },
  { usage: 80, limit: 100 },
  { status: 'True', flag: 'true', count: '1', ünï: 'x' },
];

const FILTERS: Array<Filter | null> = [
  null,
  { status: 'failed' },
  { status: ['failed', 'partial'] },
  { 'result.kind': 'invoice' },
  { 'result.kind': ['invoice', 'receipt'], status: 'completed' },
  { 'result.total': 12.5 },
  { 'result.total': [7, 12.5] },
  { 'result.paid': true },
  { 'result.paid': false },
  { 'result.paid': 'true' },
  { 'result.note': null },
  { 'result.note': [null, 'hand-written'] },
  { 'result.missing': null },
  { file_name: null },
  { parser_id: null },
  { parser_id: ['p1', 'p2'] },
  { 'result.lines.0.sku': 'A-1' },
  { 'result.lines.1.sku': 'A-1' },
  { 'result.lines.5.sku': 'A-1' },
  { 'result.tags': 'x' },
  { 'result.tags.1': 'y' },
  { result: 'invoice' },
  { 'status.kind': 'failed' },
  { 'error.code': ['timeout', 'ocr_failed'] },
  { failed_count: 0 },
  { failed_count: [1, 2], status: 'partial' },
  { status: 'completed', parser_id: 'p1', 'result.kind': 'invoice', 'result.pages': 3 },
  { status: 'completed', parser_id: 'p1', 'result.kind': 'receipt' },
  { usage: 80 },
  { usage: '80' },
  { status: 'true' },
  { flag: true },
  { count: 1 },
  { 'dotted.key': 'unreachable' },
  { status: 'COMPLETED' },
];

// ---- the two databases ----

type Backend = { db: Db; close(): Promise<void> };

async function postgres(): Promise<Backend> {
  const t: TestDatabase = await createTestDatabase();
  return { db: t.db, close: () => t.drop() };
}

async function pglite(): Promise<Backend> {
  const db = await createDb({ pgliteDir: 'memory://' });
  await runMigrations(db.sql);
  return { db, close: () => db.close() };
}

describe.each([
  ['PostgreSQL', postgres],
  ['PGlite', pglite],
])('payload filters on %s', (_name, open) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await open();
  });
  afterAll(async () => {
    await backend?.close();
  });

  const db = () => backend.db;

  async function account(): Promise<string> {
    const id = newId('account');
    await db().prisma.account.create({ data: { id, name: 'Filters', plan: 'pro' } });
    return id;
  }

  async function webhook(accountId: string, events: string[], filter: Filter | null): Promise<string> {
    const id = newId('webhook');
    await db().prisma.webhook.create({
      data: { id, accountId, url: `https://hooks.example.com/${id}`, events, signingSecretEnc: 'v1:not-used-here' },
    });
    // Written as JSON text, the way the API's Prisma write ends up in the column.
    if (filter) await db().sql.query('UPDATE webhooks SET filter = $1::jsonb WHERE id = $2', [JSON.stringify(filter), id]);
    return id;
  }

  async function receivers(eventId: string): Promise<string[]> {
    const rows = await db().prisma.delivery.findMany({ where: { eventId }, select: { webhookId: true } });
    return rows.map((row) => row.webhookId).sort();
  }

  it('delivers an event exactly to the webhooks whose every filter entry holds for its data (a matrix, in one batch)', async () => {
    const a = await account();
    const hooks = new Map<string, Filter | null>();
    for (const filter of FILTERS) hooks.set(await webhook(a, [DOC, JOB, 'quota.warning'], filter), filter);

    const items: UnkeyedEvent[] = DATA.map((data, i) => ({ accountId: a, event: [DOC, JOB, 'quota.warning'][i % 3], parserId: null, data }));
    const results = await writeEventBatch(db().sql, items);

    let delivered = 0;
    for (const [i, data] of DATA.entries()) {
      const expected = [...hooks].filter(([, filter]) => filterHolds(filter, data)).map(([id]) => id).sort();
      const got = await receivers(results[i]!.eventId);
      expect({ data, got: got.map((id) => hooks.get(id)) }).toEqual({ data, got: expected.map((id) => hooks.get(id)) });
      expect(got).toEqual(expected);
      delivered += got.length;
    }
    // The matrix is not trivially all or nothing: every filter but the impossible ones matches something.
    expect(delivered).toBeGreaterThan(DATA.length);
    const matchedSomething = FILTERS.filter((filter) => DATA.some((data) => filterHolds(filter, data)));
    expect(matchedSomething.length).toBeGreaterThan(FILTERS.length / 2);
  });

  it('compares numbers by value (3 equals 3.0, as stored in the filter) and never across types', async () => {
    const a = await account();
    const three = await webhook(a, [DOC], null);
    await db().sql.query(`UPDATE webhooks SET filter = '{"pages": 3.0}'::jsonb WHERE id = $1`, [three]);
    const text = await webhook(a, [DOC], { pages: '3' });
    await webhook(a, [DOC], { ok: true });
    const [n, s, b] = await writeEventBatch(db().sql, [
      { accountId: a, event: DOC, parserId: null, data: { pages: 3 } },
      { accountId: a, event: DOC, parserId: null, data: { pages: '3' } },
      { accountId: a, event: DOC, parserId: null, data: { ok: 1 } },
    ]);
    expect(await receivers(n!.eventId)).toEqual([three]);
    expect(await receivers(s!.eventId)).toEqual([text]);
    expect(await receivers(b!.eventId)).toEqual([]);
  });

  it('filters batch.* and job events by status, leaves other webhooks alone, and ignores filters for a test event', async () => {
    const a = await account();
    const batchEvents = ['batch.completed', 'batch.failed', 'batch.partial'];
    const failing = await webhook(a, [...batchEvents, JOB], { status: ['failed', 'partial'] });
    const everything = await webhook(a, [...batchEvents, JOB], null);
    const summary = (status: string) => ({ extraction_id: 'ext_1', parser_id: null, status, document_count: 2, completed_count: 1, failed_count: 1 });
    const items: UnkeyedEvent[] = [
      ...batchEvents.map((event) => ({ accountId: a, event, parserId: null, data: summary(event.slice('batch.'.length)) })),
      ...['completed', 'failed', 'partial'].map((status) => ({ accountId: a, event: JOB, parserId: null, data: summary(status) })),
    ];
    const results = await writeEventBatch(db().sql, items);
    const got = await Promise.all(results.map((r) => receivers(r!.eventId)));
    expect(got).toEqual([
      [everything],
      [failing, everything].sort(),
      [failing, everything].sort(),
      [everything],
      [failing, everything].sort(),
      [failing, everything].sort(),
    ]);

    // A test send reaches its webhook whatever the filter (the data here matches nothing).
    const test = await db().prisma.$transaction((tx) => writeEvent(tx, { accountId: a, event: JOB, parserId: null, data: summary('completed'), test: true, onlyWebhookId: failing }));
    expect(await receivers(test.eventId)).toEqual([failing]);
  });

  it('applies to events written in a caller\'s transaction (document reports): a dotted path into the result', async () => {
    const a = await account();
    const invoices = await webhook(a, [DOC], { 'result.kind': 'invoice' });
    const failed = await webhook(a, [DOC], { status: 'failed' });
    const write = (data: JsonObject) => db().prisma.$transaction((tx) => writeEvent(tx, { accountId: a, event: DOC, parserId: 'p1', data }));
    const invoice = await write({ status: 'completed', result: { kind: 'invoice', total: 3 } });
    const receipt = await write({ status: 'completed', result: { kind: 'receipt' } });
    const failure = await write({ status: 'failed', error: 'unreadable' });
    expect(await receivers(invoice.eventId)).toEqual([invoices]);
    expect(await receivers(receipt.eventId)).toEqual([]);
    expect(await receivers(failure.eventId)).toEqual([failed]);
    expect(receipt.deliveryIds).toEqual([]);
  });

  it('a stored filter that is not an object (written around the API) filters nothing and fails nothing', async () => {
    const a = await account();
    const nullJson = await webhook(a, [DOC], null);
    await db().sql.query(`UPDATE webhooks SET filter = 'null'::jsonb WHERE id = $1`, [nullJson]);
    const array = await webhook(a, [DOC], null);
    await db().sql.query(`UPDATE webhooks SET filter = '["status"]'::jsonb WHERE id = $1`, [array]);
    const empty = await webhook(a, [DOC], null);
    await db().sql.query(`UPDATE webhooks SET filter = '{}'::jsonb WHERE id = $1`, [empty]);
    const [written] = await writeEventBatch(db().sql, [{ accountId: a, event: DOC, parserId: null, data: { status: 'completed' } }]);
    expect(await receivers(written!.eventId)).toEqual([nullJson, array, empty].sort());
  });

  it('matches in one statement, whatever the number of filtered webhooks and events (no webhook is loaded to match it)', async () => {
    const a = await account();
    const statuses = ['completed', 'failed', 'partial'];
    const ids: Array<[string, string]> = [];
    for (let i = 0; i < 30; i++) {
      const status = statuses[i % 3];
      ids.push([await webhook(a, [DOC], { status, 'n.mod': i % 2 }), status]);
    }
    const statements: string[] = [];
    const counting: OutboxSql = {
      query: (text, params) => {
        statements.push(text);
        return db().sql.query(text, params);
      },
    };
    const items: UnkeyedEvent[] = Array.from({ length: 12 }, (_, i) => ({ accountId: a, event: DOC, parserId: null, data: { status: statuses[i % 3], n: { mod: i % 2 } } }));
    const results = await writeEventBatch(counting, items);
    // The match, then the write: two statements for the whole batch.
    expect(statements).toHaveLength(2);
    expect(statements[0]).toMatch(/jsonb_each\(w\.filter\)/);
    for (const [i, item] of items.entries()) {
      const data = item.data as { status: string; n: { mod: number } };
      const expected = ids.filter(([, status], j) => status === data.status && j % 2 === data.n.mod).map(([id]) => id).sort();
      expect(expected).toHaveLength(5);
      expect(await receivers(results[i]!.eventId)).toEqual(expected);
    }
  });
});
