import request from 'supertest';
import { DASHBOARD_EVENT_NAMES } from '@hookline/domain';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { createWebhook, updateWebhook } from '../src/services/webhooks';

// Payload filters on the webhook API (docs/api.md, "Filters"): validated at
// create and patch with a 400 that names `filter` or `filter.<path>`, stored,
// shown on every read of the webhook object, changed and removed by PATCH; the
// dashboard's service calls check the same rules. Matching itself is tested in
// packages/db/test/outbox-filter.test.ts and end to end in tests/delivery/filters.test.ts.

const DOC = 'extraction.document_completed';
let h: ApiHarness;
let account: Awaited<ReturnType<ApiHarness['integrator']>>;
let urlCounter = 0;
const freshUrl = () => `https://hooks.example.com/filters/${++urlCounter}`;

beforeAll(async () => {
  h = await startApiHarness();
  account = await h.integrator({ mode: 'test' });
});
afterAll(() => h.close());

const post = (body: Record<string, unknown>) => request(h.app).post('/v1/webhooks').set(account.auth).send({ url: freshUrl(), events: [DOC], ...body });
const patch = (id: string, body: unknown) => request(h.app).patch(`/v1/webhooks/${id}`).set(account.auth).send(body as object);
const get = (id: string) => request(h.app).get(`/v1/webhooks/${id}`).set(account.auth);
const stored = async (id: string) => (await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id } })).filter;

async function create(body: Record<string, unknown> = {}) {
  const res = await post(body);
  expect(res.status).toBe(201);
  return res.body.webhook as { id: string; filter: unknown } & Record<string, unknown>;
}

type Detail = { path: string; message: string };
function expectRefused(res: request.Response, path: string, message?: RegExp) {
  expect({ status: res.status, code: res.body.error?.code }).toEqual({ status: 400, code: 'INVALID_PAYLOAD' });
  const details: Detail[] = res.body.error.details;
  expect(details.length).toBeGreaterThan(0);
  // Every detail is about the filter, and one names the exact place.
  for (const detail of details) expect(detail.path === 'filter' || detail.path.startsWith('filter.')).toBe(true);
  expect(details).toContainEqual({ path, message: message ? expect.stringMatching(message) : expect.any(String) });
  expect(res.body.error.message).toMatch(/^filter(\.|:)/);
}

describe('the filter on the webhook object', () => {
  it('is null by default, between failing_since and max_in_flight', async () => {
    const wh = await create();
    expect(wh.filter).toBeNull();
    const keys = Object.keys(wh);
    expect(keys.slice(keys.indexOf('failing_since'), keys.indexOf('failing_since') + 3)).toEqual(['failing_since', 'filter', 'max_in_flight']);
    expect(await stored(wh.id)).toBeNull();
  });

  it('round-trips through create, get, list and patch; a patch without it keeps it; null and {} remove it', async () => {
    const filter = { status: ['failed', 'partial'], 'result.kind': 'invoice', 'result.total': 12.5, 'result.paid': true, 'result.note': null };
    const wh = await create({ filter });
    expect(wh.filter).toEqual(filter);
    expect(await stored(wh.id)).toEqual(filter);
    expect((await get(wh.id)).body.webhook.filter).toEqual(filter);
    const list = await request(h.app).get('/v1/webhooks?limit=100').set(account.auth);
    expect(list.body.data.find((w: { id: string }) => w.id === wh.id).filter).toEqual(filter);

    const kept = await patch(wh.id, { description: 'unrelated' });
    expect(kept.status).toBe(200);
    expect(kept.body.webhook.filter).toEqual(filter);

    const changed = await patch(wh.id, { filter: { parser_id: 'invoices' } });
    expect(changed.status).toBe(200);
    expect(changed.body.webhook.filter).toEqual({ parser_id: 'invoices' });
    expect(await stored(wh.id)).toEqual({ parser_id: 'invoices' });

    const removed = await patch(wh.id, { filter: null });
    expect(removed.status).toBe(200);
    expect(removed.body.webhook.filter).toBeNull();
    // SQL NULL, not JSON null: "no filter" has one form in the column.
    const [row] = await h.deps.db.sql.query<{ is_null: boolean }>('SELECT filter IS NULL AS is_null FROM webhooks WHERE id = $1', [wh.id]);
    expect(row.is_null).toBe(true);

    await patch(wh.id, { filter: { status: 'failed' } });
    const emptied = await patch(wh.id, { filter: {} });
    expect(emptied.body.webhook.filter).toBeNull();
    expect(await stored(wh.id)).toBeNull();
    expect((await create({ filter: {} })).filter).toBeNull();
    expect((await create({ filter: null })).filter).toBeNull();
  });

  it('accepts the limits: 20 entries, 100 values, 1024-character strings, 200-character paths of 10 segments', async () => {
    const twenty = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`field_${i}`, i]));
    expect((await create({ filter: twenty })).filter).toEqual(twenty);
    const hundred = { status: Array.from({ length: 100 }, (_, i) => `s${i}`) };
    expect((await create({ filter: hundred })).filter).toEqual(hundred);
    const long = { note: 'é'.repeat(1024) };
    expect((await create({ filter: long })).filter).toEqual(long);
    const deep = { 'a.b.c.d.e.f.g.h.i.j': 1, [`${'p'.repeat(99)}.${'q'.repeat(100)}`]: 'x' };
    expect((await create({ filter: deep })).filter).toEqual(deep);
    const mixed = { 'items.0.sku': ['A-1', 2, false, null], 'doc-id': -1.5e3, snake_CASE_09: '' };
    expect((await create({ filter: mixed })).filter).toEqual(mixed);
  });
});

// [what, filter, the detail path, its message]
const BAD: Array<[string, unknown, string, RegExp]> = [
  ['a string', 'status=failed', 'filter', /JSON object/],
  ['an array', [{ status: 'failed' }], 'filter', /JSON object/],
  ['a number', 42, 'filter', /JSON object/],
  ['true', true, 'filter', /JSON object/],
  ['21 entries', Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`f${i}`, i])), 'filter', /at most 20 entries/],
  ['an empty segment', { 'result..kind': 'x' }, 'filter.result..kind', /not a valid path/],
  ['a leading dot', { '.kind': 'x' }, 'filter..kind', /not a valid path/],
  ['a trailing dot', { 'kind.': 'x' }, 'filter.kind.', /not a valid path/],
  ['an empty path', { '': 'x' }, 'filter.', /not a valid path/],
  ['a space', { 'result kind': 'x' }, 'filter.result kind', /not a valid path/],
  ['a slash', { 'result/kind': 'x' }, 'filter.result/kind', /not a valid path/],
  ['a bracket', { 'lines[0]': 'x' }, 'filter.lines[0]', /not a valid path/],
  ['a $', { $where: 'x' }, 'filter.$where', /not a valid path/],
  ['a non-ASCII letter', { ünï: 'x' }, 'filter.ünï', /not a valid path/],
  ['11 segments', { 'a.b.c.d.e.f.g.h.i.j.k': 1 }, 'filter.a.b.c.d.e.f.g.h.i.j.k', /at most 10 segments/],
  ['a 201-character path', { ['p'.repeat(201)]: 1 }, 'filter', /longer than 200 characters/],
  ['an object value', { status: { in: ['failed'] } }, 'filter.status', /string, number, boolean or null/],
  ['an empty array', { status: [] }, 'filter.status', /at least one value/],
  ['101 values', { status: Array.from({ length: 101 }, (_, i) => i) }, 'filter.status', /at most 100 values/],
  ['an array of objects', { status: [{ a: 1 }] }, 'filter.status', /string, number, boolean or null/],
  ['an array of arrays', { status: [['failed']] }, 'filter.status', /string, number, boolean or null/],
  ['a 1025-character string', { note: 'x'.repeat(1025) }, 'filter.note', /at most 1024 characters/],
  ['a NUL character', { note: 'a\u0000b' }, 'filter.note', /NUL/],
  ['an unpaired surrogate', { note: 'a\ud800b' }, 'filter.note', /surrogate/],
  ['a NUL in an array', { note: ['ok', '\u0000'] }, 'filter.note.1', /NUL/],
];

describe('a bad filter', () => {
  it.each(BAD)('create refuses %s with 400 naming it, and writes nothing', async (_what, filter, path, message) => {
    const url = freshUrl();
    const res = await request(h.app).post('/v1/webhooks').set(account.auth).send({ url, events: [DOC], filter });
    expectRefused(res, path, message);
    expect(await h.deps.db.prisma.webhook.count({ where: { url } })).toBe(0);
  });

  it('patch refuses each of them and leaves the filter as it was', async () => {
    const wh = await create({ filter: { status: 'failed' } });
    for (const [what, filter, path, message] of BAD) {
      const res = await patch(wh.id, { filter, description: 'not saved either' });
      expect([what, res.status]).toEqual([what, 400]);
      expectRefused(res, path, message);
    }
    const after = (await get(wh.id)).body.webhook;
    expect({ filter: after.filter, description: after.description }).toEqual({ filter: { status: 'failed' }, description: null });
  });

  it('refuses a __proto__ path, which JSON can carry as an ordinary key', async () => {
    const url = freshUrl();
    const res = await request(h.app).post('/v1/webhooks').set(account.auth).set('Content-Type', 'application/json')
      .send(`{"url": "${url}", "events": ["${DOC}"], "filter": {"__proto__": ["a"], "status": "failed"}}`);
    expectRefused(res, 'filter.__proto__', /reserved/);
    expect(await h.deps.db.prisma.webhook.count({ where: { url } })).toBe(0);
  });

  it('random filters: valid ones are stored as sent, invalid ones are a 400 about the filter, never a 5xx', async () => {
    // A small seeded generator (mulberry32), so a failure replays.
    let seed = 0x5eed;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
    const goodPaths = ['status', 'result.kind', 'a-b.c_d', 'items.0.sku', 'X9', 'error.code'];
    const badPaths = ['a..b', '.a', 'a.', 'a b', 'a*', 'ä', 'a.b.c.d.e.f.g.h.i.j.k', 'x'.repeat(201), ''];
    const goodScalars = ['failed', '', 0, -1.5, 1e21, true, false, null, 'ü😀'];
    const badValues = [{}, { a: 1 }, [], [{}], [[1]], 'x'.repeat(1025), 'nul\u0000'];

    let valid = 0;
    let invalid = 0;
    for (let round = 0; round < 60; round++) {
      const size = Math.floor(random() * 5);
      const filter: Record<string, unknown> = {};
      let bad = false;
      for (let i = 0; i < size; i++) {
        const badPath = random() < 0.15;
        const badValue = random() < 0.15;
        bad ||= badPath || badValue;
        const path = badPath ? pick(badPaths) : `${pick(goodPaths)}${i}`;
        const value = badValue ? pick(badValues) : random() < 0.4 ? Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(goodScalars)) : pick(goodScalars);
        filter[path] = value;
      }
      const res = await request(h.app).post('/v1/webhooks').set(account.auth).send({ url: freshUrl(), events: [DOC], filter });
      if (bad) {
        expect([filter, res.status]).toEqual([filter, 400]);
        for (const detail of res.body.error.details as Detail[]) expect(detail.path === 'filter' || detail.path.startsWith('filter.')).toBe(true);
        invalid += 1;
      } else {
        expect([filter, res.status]).toEqual([filter, 201]);
        expect(res.body.webhook.filter).toEqual(size === 0 ? null : filter);
        expect((await get(res.body.webhook.id)).body.webhook.filter).toEqual(size === 0 ? null : filter);
        valid += 1;
      }
    }
    expect(valid).toBeGreaterThan(10);
    expect(invalid).toBeGreaterThan(10);
  });

  it('the service functions the dashboard calls check the same rules, naming the entry', async () => {
    const auth = { accountId: account.accountId, mode: 'test' as const };
    await expect(createWebhook(h.deps, auth, { url: freshUrl(), events: DASHBOARD_EVENT_NAMES, filter: { status: [{}] } as never }, 'dashboard')).rejects.toMatchObject({
      code: 'INVALID_PAYLOAD', details: [{ path: 'filter.status', message: expect.stringMatching(/string, number, boolean or null/) }],
    });
    const { webhook } = await createWebhook(h.deps, auth, { url: freshUrl(), events: DASHBOARD_EVENT_NAMES, filter: { status: ['failed', 'partial'] } }, 'dashboard');
    expect(webhook.filter).toEqual({ status: ['failed', 'partial'] });
    await expect(updateWebhook(h.deps, auth, webhook.id, { filter: { 'a..b': 1 } })).rejects.toMatchObject({ details: [{ path: 'filter.a..b', message: expect.stringMatching(/not a valid path/) }] });
    expect((await updateWebhook(h.deps, auth, webhook.id, { filter: {} })).filter).toBeNull();
  });
});

describe('the OpenAPI document', () => {
  it('describes filter on the webhook object and in the create and patch bodies', async () => {
    const doc = (await request(h.app).get('/openapi.json')).body;
    const text = JSON.stringify(doc.components.schemas.Webhook.properties.filter);
    expect(text).toMatch(/"null"/);
    expect(text).toMatch(/"boolean"/);
    for (const [path, method] of [['/v1/webhooks', 'post'], ['/v1/webhooks/{id}', 'patch']]) {
      const body = doc.paths[path][method].requestBody.content['application/json'].schema;
      const filter = JSON.stringify(body.properties?.filter ?? doc.components.schemas[body.$ref?.split('/').pop()]?.properties?.filter);
      expect([path, filter]).toEqual([path, expect.stringContaining('"maxProperties":20')]);
    }
  });
});
