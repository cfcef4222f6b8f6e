import request from 'supertest';
import { ERROR_STATUS, newId, type ErrorCode } from '@hookline/domain';
import { INTEGRATOR_ROUTES } from '../../apps/api/src/routes';
import { startApiHarness, type ApiHarness } from '../support/api-harness';

// The API of docs/api.md, route by route, on the real app (PostgreSQL + Redis,
// no worker): both auth headers and revoked keys on EVERY /v1 route, the 413
// on every JSON endpoint and the 256 KiB boundary to the byte, Idempotency-Key
// on every /internal/v1 POST, query validation of the delivery log, id
// prefixes and time formats, and malformed input on the endpoints the fuzz
// test of apps/api does not reach.

const ISO_MS_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const MAX_BODY = 256 * 1024;

type Integrator = Awaited<ReturnType<ApiHarness['integrator']>>;
type Route = { method: 'get' | 'post' | 'patch' | 'delete'; path: string; body?: Record<string, unknown> };

let h: ApiHarness;
let owner: Integrator;
let webhookId: string;
let deliveryId: string;
let extractionId: string;

function expectEnvelope(res: request.Response, status: number, code: ErrorCode): void {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(ERROR_STATUS[code]).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(typeof res.body.error.message).toBe('string');
  expect(res.body.error.message.length).toBeGreaterThan(0);
}

const call = (route: Route, headers: Record<string, string> = {}) => {
  const test = request(h.app)[route.method](route.path).set(headers);
  return route.body === undefined ? test : test.send(route.body);
};

beforeAll(async () => {
  // A trusted loopback proxy, so the revoked-key sweep below can come from many
  // addresses: from one, wrong keys past 10 are 429 (api-key-guessing.test.ts).
  h = await startApiHarness({ config: { TRUST_PROXY: 'loopback' } });
  owner = await h.integrator({ mode: 'test' });
  const created = await request(h.app).post('/v1/webhooks').set(owner.auth).send({ url: 'https://hooks.example.com/surface', events: ['quota.warning'] });
  expect(created.status).toBe(201);
  webhookId = created.body.webhook.id;
  const published = await h.platform.post('/internal/v1/events', { account_id: owner.accountId, event: 'quota.warning', data: { usage: 80, limit: 100 } });
  expect(published.body.event.deliveries).toBe(1);
  deliveryId = (await h.deps.db.prisma.delivery.findFirstOrThrow({ where: { webhookId } })).id;
  const ext = await h.platform.post('/internal/v1/extractions', { account_id: owner.accountId, document_count: 1 });
  extractionId = ext.body.extraction.extraction_id;
  expect((await h.platform.post(`/internal/v1/extractions/${extractionId}/documents/doc-1`, { status: 'completed', result: { a: 1 } })).status).toBe(202);
});
afterAll(() => h?.close());

/**
 * How to aim each declared /v1 operation at the owner's real resources (path
 * parameters, a body) and the status it answers. The list of operations comes
 * from the route declarations (INTEGRATOR_ROUTES): a route declared without an
 * entry here fails the first test, so no /v1 route escapes these checks.
 */
type Aim = { path: () => string; body?: () => Record<string, unknown>; status: number };
const AIMS: Record<string, Aim> = {
  'get /v1/event-types': { path: () => '/v1/event-types', status: 200 },
  'get /v1/webhooks': { path: () => '/v1/webhooks', status: 200 },
  'post /v1/webhooks': { path: () => '/v1/webhooks', body: () => ({ url: `https://hooks.example.com/${newId('webhook')}`, events: ['quota.warning'] }), status: 201 },
  'get /v1/webhooks/:id': { path: () => `/v1/webhooks/${webhookId}`, status: 200 },
  'patch /v1/webhooks/:id': { path: () => `/v1/webhooks/${webhookId}`, body: () => ({ description: 'patched' }), status: 200 },
  'get /v1/webhooks/:id/deliveries': { path: () => `/v1/webhooks/${webhookId}/deliveries`, status: 200 },
  'post /v1/webhooks/:id/rotate-secret': { path: () => `/v1/webhooks/${webhookId}/rotate-secret`, status: 200 },
  'post /v1/webhooks/:id/recover': { path: () => `/v1/webhooks/${webhookId}/recover`, body: () => ({ since: '2026-01-01T00:00:00Z' }), status: 202 },
  'get /v1/deliveries/:id': { path: () => `/v1/deliveries/${deliveryId}`, status: 200 },
  'post /v1/deliveries/:id/retry': { path: () => `/v1/deliveries/${deliveryId}/retry`, status: 202 },
  'get /v1/extractions/:extraction_id/documents/:document_id': { path: () => `/v1/extractions/${extractionId}/documents/doc-1`, status: 200 },
  // Acting on an unknown webhook: a 404 proves the key was accepted without needing a worker.
  'post /v1/webhooks/:id/test': { path: () => `/v1/webhooks/${newId('webhook')}/test`, status: 404 },
  'delete /v1/webhooks/:id': { path: () => `/v1/webhooks/${newId('webhook')}`, status: 404 },
  'post /v1/listen/sessions': { path: () => '/v1/listen/sessions', body: () => ({ events: ['quota.warning'] }), status: 201 },
  'get /v1/listen/sessions': { path: () => '/v1/listen/sessions', status: 200 },
  // Without the WebSocket upgrade the key is checked, then the plain GET is refused.
  'get /v1/listen/sessions/:id/connect': { path: () => `/v1/listen/sessions/${newId('webhook')}/connect`, status: 400 },
  'post /v1/listen/sessions/:id/trigger': { path: () => `/v1/listen/sessions/${newId('webhook')}/trigger`, body: () => ({ event: 'quota.warning' }), status: 404 },
  'delete /v1/listen/sessions/:id': { path: () => `/v1/listen/sessions/${newId('webhook')}`, status: 404 },
};

const declaredV1 = () => INTEGRATOR_ROUTES.filter((route) => route.access === 'api_key').map((route) => `${route.method} ${route.path}`);

/** Every declared /v1 route, aimed at the owner's real resources, with the name it is declared by. */
const v1Routes = (): Array<Route & { name: string; status: number }> =>
  declaredV1().map((name) => {
    const aim = AIMS[name];
    if (!aim) throw new Error(`${name} is declared but api-surface.test.ts has no AIMS entry for it`);
    return { name, method: name.split(' ')[0] as Route['method'], path: aim.path(), body: aim.body?.(), status: aim.status };
  });

describe('authentication on every /v1 route', () => {
  it('X-API-Key is accepted everywhere Authorization: Bearer is', async () => {
    expect(declaredV1().sort()).toEqual(Object.keys(AIMS).sort());
    for (const route of v1Routes()) {
      const viaHeader = await call(route, { 'X-API-Key': owner.key });
      expect([route.name, viaHeader.status]).toEqual([route.name, route.status]);
      const again = v1Routes().find((r) => r.name === route.name)!;
      const viaBearer = await call(again, owner.auth);
      expect([route.name, viaBearer.status]).toEqual([route.name, route.status]);
    }
  });

  it('a missing key is 401 on every route, and a revoked key is 401 on every route (delivery endpoints included) and acts on nothing', async () => {
    const doomed = await h.createApiKey(owner.accountId, 'test');
    expect((await call({ method: 'get', path: `/v1/deliveries/${deliveryId}` }, { 'X-API-Key': doomed.key })).status).toBe(200);
    expect((await h.platform.delete(`/internal/v1/api-keys/${doomed.id}`)).status).toBe(204);
    const before = await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhookId } });
    const jobsBefore = (await h.queue.getJobs(['waiting', 'delayed', 'prioritized'])).length;

    let client = 0;
    for (const route of v1Routes()) {
      for (const headers of [{}, { 'X-API-Key': doomed.key }, { Authorization: `Bearer ${doomed.key}` }] as Record<string, string>[]) {
        const res = await call(route, { ...headers, 'X-Forwarded-For': `198.18.0.${++client}` });
        expect([route.name, Object.keys(headers)[0] ?? 'none', res.status]).toEqual([route.name, Object.keys(headers)[0] ?? 'none', 401]);
        expectEnvelope(res, 401, 'UNAUTHORIZED');
        expect(res.body.error.message).not.toContain(doomed.key);
      }
    }
    // Nothing was rotated, patched, retried or recovered for the revoked key.
    const after = await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhookId } });
    expect(after.signingSecretEnc).toBe(before.signingSecretEnc);
    expect(after.updatedAt.getTime()).toBe(before.updatedAt.getTime());
    expect((await h.queue.getJobs(['waiting', 'delayed', 'prioritized'])).length).toBe(jobsBefore);
  });
});

describe('413 PAYLOAD_TOO_LARGE on every JSON endpoint (body over 256 KiB)', () => {
  /** A JSON object of exactly `bytes` bytes: `{"pad":"xxx…"}`. */
  const bodyOf = (bytes: number) => `{"pad":"${'x'.repeat(bytes - '{"pad":""}'.length)}"}`;

  const jsonRoutes = (): Array<Route & { auth: Record<string, string> }> => {
    const platform = { Authorization: `Bearer ${h.platformToken}` };
    return [
      { method: 'post', path: '/v1/webhooks', auth: owner.auth },
      { method: 'patch', path: `/v1/webhooks/${webhookId}`, auth: owner.auth },
      { method: 'post', path: `/v1/webhooks/${webhookId}/test`, auth: owner.auth },
      { method: 'post', path: `/v1/webhooks/${webhookId}/rotate-secret`, auth: owner.auth },
      { method: 'post', path: `/v1/webhooks/${webhookId}/recover`, auth: owner.auth },
      { method: 'post', path: `/v1/deliveries/${deliveryId}/retry`, auth: owner.auth },
      { method: 'post', path: '/internal/v1/accounts', auth: platform },
      { method: 'post', path: `/internal/v1/accounts/${owner.accountId}/api-keys`, auth: platform },
      { method: 'post', path: '/internal/v1/extractions', auth: platform },
      { method: 'post', path: `/internal/v1/extractions/${extractionId}/documents/doc-2`, auth: platform },
      { method: 'post', path: '/internal/v1/events', auth: platform },
    ];
  };

  it('one byte over 256 KiB is refused with the envelope on every POST and PATCH, and nothing is written', async () => {
    const secretBefore = (await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhookId } })).signingSecretEnc;
    const counts = async () => [await h.deps.db.prisma.account.count(), await h.deps.db.prisma.event.count(), await h.deps.db.prisma.extraction.count()];
    const countsBefore = await counts();
    for (const route of jsonRoutes()) {
      const res = await request(h.app)[route.method](route.path).set(route.auth).set('Content-Type', 'application/json').send(bodyOf(MAX_BODY + 1));
      expect([route.method, route.path, res.status]).toEqual([route.method, route.path, 413]);
      expectEnvelope(res, 413, 'PAYLOAD_TOO_LARGE');
    }
    expect(await counts()).toEqual(countsBefore);
    expect((await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhookId } })).signingSecretEnc).toBe(secretBefore);
  });

  it('exactly 256 KiB is read and validated (400 naming the field), 256 KiB + 1 is 413', async () => {
    const exact = JSON.stringify({ url: 'https://hooks.example.com/exact', events: ['quota.warning'], description: '' });
    const pad = MAX_BODY - Buffer.byteLength(exact);
    const atLimit = exact.replace('"description":""', `"description":"${'d'.repeat(pad)}"`);
    expect(Buffer.byteLength(atLimit)).toBe(MAX_BODY);
    const ok = await request(h.app).post('/v1/webhooks').set(owner.auth).set('Content-Type', 'application/json').send(atLimit);
    expectEnvelope(ok, 400, 'INVALID_PAYLOAD');
    expect(ok.body.error.details[0].path).toBe('description');

    const over = atLimit.replace('"description":"', '"description":"d');
    expect(Buffer.byteLength(over)).toBe(MAX_BODY + 1);
    expectEnvelope(await request(h.app).post('/v1/webhooks').set(owner.auth).set('Content-Type', 'application/json').send(over), 413, 'PAYLOAD_TOO_LARGE');

    // Multi-byte characters count as bytes, not characters: 256 KiB of bytes in fewer characters.
    const accountAtLimit = (n: number) => {
      const base = JSON.stringify({ name: 'x', monthly_quota: 1 });
      const chars = Math.floor((n - Buffer.byteLength(base)) / 3);
      const body = base.replace('"name":"x"', `"name":"x${'€'.repeat(chars)}"`);
      return body + ' '.repeat(n - Buffer.byteLength(body));
    };
    const platform = { Authorization: `Bearer ${h.platformToken}` };
    const limit = await request(h.app).post('/internal/v1/accounts').set(platform).set('Content-Type', 'application/json').send(accountAtLimit(MAX_BODY));
    expectEnvelope(limit, 400, 'INVALID_PAYLOAD');
    expect(limit.body.error.details[0].path).toBe('name');
    expectEnvelope(await request(h.app).post('/internal/v1/accounts').set(platform).set('Content-Type', 'application/json').send(accountAtLimit(MAX_BODY + 1)), 413, 'PAYLOAD_TOO_LARGE');
  });
});

describe('Idempotency-Key on every /internal/v1 POST', () => {
  it('replays the first answer for the same key and body, and refuses another body with 409, on each route', async () => {
    const account = await h.createAccount();
    const targets: Array<{ path: string; body: Record<string, unknown>; changed: Record<string, unknown> }> = [
      { path: '/internal/v1/accounts', body: { name: 'Idem', plan: 'pro' }, changed: { name: 'Idem 2', plan: 'pro' } },
      { path: `/internal/v1/accounts/${account.id}/api-keys`, body: { mode: 'test' }, changed: { mode: 'live' } },
      // A generated extraction_id: without the key, a retried request would open a second extraction.
      { path: '/internal/v1/extractions', body: { account_id: account.id, document_count: 2 }, changed: { account_id: account.id, document_count: 3 } },
      { path: '/internal/v1/events', body: { account_id: account.id, event: 'quota.exceeded', data: { usage: 101, limit: 100 } }, changed: { account_id: account.id, event: 'quota.exceeded', data: { usage: 102, limit: 100 } } },
    ];
    for (const target of targets) {
      const key = `idem-${newId('event')}`;
      const first = await h.platform.post(target.path, target.body).set('Idempotency-Key', key);
      expect([target.path, first.status]).toEqual([target.path, expect.any(Number)]);
      expect(first.status === 201 || first.status === 202).toBe(true);
      const again = await h.platform.post(target.path, target.body).set('Idempotency-Key', key);
      expect([target.path, again.status, again.headers['idempotent-replayed']]).toEqual([target.path, first.status, 'true']);
      expect(again.body).toEqual(first.body);
      const other = await h.platform.post(target.path, target.changed).set('Idempotency-Key', key);
      expectEnvelope(other, 409, 'IDEMPOTENCY_CONFLICT');
    }
    // One of each: the replays wrote nothing.
    expect(await h.deps.db.prisma.apiKey.count({ where: { accountId: account.id } })).toBe(1);
    expect(await h.deps.db.prisma.extraction.count({ where: { accountId: account.id } })).toBe(1);
    expect(await h.deps.db.prisma.event.count({ where: { accountId: account.id } })).toBe(1);
    expect(await h.deps.db.prisma.account.count({ where: { name: { in: ['Idem', 'Idem 2'] } } })).toBe(1);

    // The document report of that extraction, under a key: one event, however often it is sent.
    const ext = await h.deps.db.prisma.extraction.findFirstOrThrow({ where: { accountId: account.id } });
    const path = `/internal/v1/extractions/${ext.id}/documents/d1`;
    const report = { status: 'completed', result: { n: 1 } };
    const first = await h.platform.post(path, report).set('Idempotency-Key', 'doc-d1');
    const again = await h.platform.post(path, report).set('Idempotency-Key', 'doc-d1');
    expect([first.status, again.status, again.headers['idempotent-replayed']]).toEqual([202, 202, 'true']);
    expect(again.body).toEqual(first.body);
    expectEnvelope(await h.platform.post(path, { status: 'failed', error: 'x' }).set('Idempotency-Key', 'doc-d1'), 409, 'IDEMPOTENCY_CONFLICT');
    expect(await h.deps.db.prisma.event.count({ where: { accountId: account.id, event: 'extraction.document_completed' } })).toBe(1);
  });
});

describe('Idempotency-Key lifetime (24 h)', () => {
  it('an answer is replayed for 24 h; once the record has expired the same key is a new request', async () => {
    const account = await h.createAccount();
    const body = { account_id: account.id, event: 'quota.warning', data: { usage: 80, limit: 100, n: 1 } };
    const first = await h.platform.post('/internal/v1/events', body).set('Idempotency-Key', 'ttl-1').expect(202);
    const [record] = await h.deps.db.prisma.idempotencyRecord.findMany({ where: { scope: { endsWith: ':ttl-1' } } });
    expect(Math.abs(record.expiresAt.getTime() - record.createdAt.getTime() - 24 * 3_600_000)).toBeLessThan(5_000);

    // 23 h 59 min later: still the stored answer.
    await h.deps.db.prisma.idempotencyRecord.update({ where: { scope: record.scope }, data: { expiresAt: new Date(Date.now() + 60_000) } });
    const replay = await h.platform.post('/internal/v1/events', body).set('Idempotency-Key', 'ttl-1').expect(202);
    expect(replay.body.event.id).toBe(first.body.event.id);

    // Past 24 h: a new event.
    await h.deps.db.prisma.idempotencyRecord.update({ where: { scope: record.scope }, data: { expiresAt: new Date(Date.now() - 1_000) } });
    const fresh = await h.platform.post('/internal/v1/events', body).set('Idempotency-Key', 'ttl-1').expect(202);
    expect(fresh.headers['idempotent-replayed']).toBeUndefined();
    expect(fresh.body.event.id).not.toBe(first.body.event.id);
    expect(await h.deps.db.prisma.event.count({ where: { accountId: account.id } })).toBe(2);
  });
});

describe('GET /v1/webhooks/:id/deliveries query validation (limit 1–100, cursor)', () => {
  const list = (query: string) => request(h.app).get(`/v1/webhooks/${webhookId}/deliveries?${query}`).set(owner.auth);

  it.each(['limit=0', 'limit=101', 'limit=abc', 'limit=-1', 'limit=1.5', 'limit=', 'limit=1e2', 'limit=%205', 'limit=20&limit=30'])('%s → 400 naming limit', async (query) => {
    const res = await list(query);
    expectEnvelope(res, 400, 'INVALID_PAYLOAD');
    expect(res.body.error.details[0].path).toBe('limit');
  });

  it.each([
    ['garbage', 'cursor=x'],
    ['three parts', 'cursor=' + Buffer.from('not|a|cursor').toString('base64url')],
    ['600 characters', 'cursor=' + 'A'.repeat(600)],
    ['an impossible date', 'cursor=' + Buffer.from('2026-13-45T00:00:00.000Z|dlv_x').toString('base64url')],
    ['given twice', 'cursor=a&cursor=b'],
  ])('cursor %s → 400 naming cursor', async (_label, query) => {
    const res = await list(query);
    expectEnvelope(res, 400, 'INVALID_PAYLOAD');
    expect(res.body.error.details[0].path).toBe('cursor');
  });

  it('limit 1 and 100 work; the page shape is data, has_more, next_cursor', async () => {
    for (const limit of [1, 100]) {
      const res = await list(`limit=${limit}`);
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['data', 'has_more', 'next_cursor']);
      expect(res.body.data.length).toBeLessThanOrEqual(limit);
    }
  });
});

describe('ids and times (contract preamble)', () => {
  it('every id carries its type prefix and every time is ISO 8601 UTC with milliseconds', async () => {
    const account = await h.platform.post('/internal/v1/accounts', { name: 'Formats' });
    expect(account.body.account).toEqual({ id: expect.stringMatching(/^acct_[0-9A-Za-z]+$/), name: 'Formats', plan: 'pro', monthly_quota: null, created_at: expect.stringMatching(ISO_MS_Z) });
    const key = await h.platform.post(`/internal/v1/accounts/${account.body.account.id}/api-keys`, { mode: 'test' });
    expect(key.body.api_key).toEqual({ id: expect.stringMatching(/^key_[0-9A-Za-z]+$/), key: expect.stringMatching(/^hk_test_/), mode: 'test', created_at: expect.stringMatching(ISO_MS_Z) });
    const auth = { Authorization: `Bearer ${key.body.api_key.key}` };

    const webhook = await request(h.app).post('/v1/webhooks').set(auth).send({ url: 'https://hooks.example.com/formats', events: ['quota.warning', 'extraction.job_completed'] });
    expect(webhook.body.webhook.id).toMatch(/^wh_[0-9A-Za-z]+$/);
    for (const field of ['created_at', 'updated_at']) expect(webhook.body.webhook[field]).toMatch(ISO_MS_Z);

    const event = await h.platform.post('/internal/v1/events', { account_id: account.body.account.id, event: 'quota.warning', data: { usage: 80, limit: 100 } });
    expect(event.status).toBe(202);
    expect(event.body.event).toEqual(expect.objectContaining({ id: expect.stringMatching(/^evt_[0-9A-Za-z]+$/), deliveries: 1 }));

    const deliveries = await request(h.app).get(`/v1/webhooks/${webhook.body.webhook.id}/deliveries`).set(auth);
    const [delivery] = deliveries.body.data;
    expect(delivery).toEqual(expect.objectContaining({ id: expect.stringMatching(/^dlv_[0-9A-Za-z]+$/), webhook_id: webhook.body.webhook.id, event_id: event.body.event.id, created_at: expect.stringMatching(ISO_MS_Z) }));
    for (const field of ['next_attempt_at', 'last_attempt_at']) expect(delivery[field] === null || ISO_MS_Z.test(delivery[field])).toBe(true);
    expect(Object.keys(delivery).sort()).toEqual(['attempt_count', 'created_at', 'event', 'event_id', 'id', 'last_attempt_at', 'next_attempt_at', 'status', 'webhook_id']);

    const ext = await h.platform.post('/internal/v1/extractions', { account_id: account.body.account.id, document_count: 1 });
    expect(ext.body.extraction.created_at).toMatch(ISO_MS_Z);
    await h.platform.post(`/internal/v1/extractions/${ext.body.extraction.extraction_id}/documents/only`, { status: 'failed', error: 'unreadable' }).expect(202);
    const [job] = await h.deps.db.prisma.event.findMany({ where: { accountId: account.body.account.id, event: 'extraction.job_completed' } });
    expect(job.id).toMatch(/^evt_/);
    const done = await h.deps.db.prisma.extraction.findUniqueOrThrow({ where: { id: ext.body.extraction.extraction_id } });
    expect(done.completedAt).not.toBeNull();

    const rotated = await request(h.app).post(`/v1/webhooks/${webhook.body.webhook.id}/rotate-secret`).set(auth);
    for (const field of ['created_at', 'updated_at']) expect(rotated.body.webhook[field]).toMatch(ISO_MS_Z);
  });
});

describe('the webhook object is the same everywhere it is returned', () => {
  const KEYS = [
    'id', 'url', 'events', 'description', 'parser_id', 'source', 'is_active', 'status', 'retry_enabled', 'max_retries', 'has_static_secret',
    'disabled_reason', 'failing_since', 'filter', 'max_in_flight', 'rate_limit_per_second', 'headers', 'circuit', 'circuit_retry_at', 'created_at', 'updated_at',
  ];

  it('create, list, get, patch and rotate-secret carry the isolation fields and the circuit, in order, and never the cooldown', async () => {
    const account = await h.integrator({ mode: 'test' });
    const created = await request(h.app).post('/v1/webhooks').set(account.auth).send({ url: 'https://hooks.example.com/shape', events: ['quota.warning'], max_in_flight: 12, rate_limit_per_second: 300 });
    expect(created.status).toBe(201);
    const id = created.body.webhook.id as string;
    const retryAt = new Date(Date.now() + 120_000);
    await h.deps.db.prisma.webhook.update({ where: { id }, data: { circuit: 'open', circuitRetryAt: retryAt, circuitCooldownMs: 120_000 } });

    const list = await request(h.app).get('/v1/webhooks').set(account.auth);
    const one = await request(h.app).get(`/v1/webhooks/${id}`).set(account.auth);
    const patched = await request(h.app).patch(`/v1/webhooks/${id}`).set(account.auth).send({ rate_limit_per_second: 301 });
    const rotated = await request(h.app).post(`/v1/webhooks/${id}/rotate-secret`).set(account.auth);
    const shapes: Array<[string, Record<string, unknown>]> = [
      ['create', created.body.webhook], ['list', list.body.data[0]], ['get', one.body.webhook], ['patch', patched.body.webhook], ['rotate', rotated.body.webhook],
    ];
    for (const [label, webhook] of shapes) {
      const keys = Object.keys(webhook).filter((key) => key !== 'signing_secret');
      expect([label, keys]).toEqual([label, KEYS]);
      expect([label, webhook.max_in_flight]).toEqual([label, 12]);
    }
    for (const [label, webhook] of shapes.slice(1)) {
      expect([label, webhook.circuit, webhook.circuit_retry_at]).toEqual([label, 'open', retryAt.toISOString()]);
      expect(webhook.circuit_retry_at).toMatch(ISO_MS_Z);
    }
    expect(created.body.webhook).toMatchObject({ circuit: 'closed', circuit_retry_at: null, rate_limit_per_second: 300 });
    expect(patched.body.webhook.rate_limit_per_second).toBe(301);
    for (const res of [created, list, one, patched, rotated]) expect(res.text).not.toMatch(/cooldown/i);
  });
});

describe('malformed input on the delivery and ingest endpoints: the envelope, never a 5xx', () => {
  const EVERY_TYPE: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, '', 'NaN', '\u0000', 'a\u0000b', '\ud800', 'ünï 😀', 'x'.repeat(5_000), [], [null], {}, { a: { b: [] } },
    '2026-11-23T10:00:00Z', '2026-11-23T10:00:00.000+25:00', '0000-00-00T00:00:00Z', '99999-01-01T00:00:00Z', '1970-01-01T00:00:00Z'];
  const RAW = ['{', '[1,', 'NaN', '"', 'null', '[]', '42', '"text"', '{"since":"\\ud800"}', '{"__proto__":{"x":1}}', '{"a":1}{"b":2}'];

  function check(label: string, res: request.Response): void {
    const context = `${label} → ${res.status} ${res.text.slice(0, 200)}`;
    if (res.status >= 500) throw new Error(`server error: ${context}`);
    expect([label, res.headers['content-type']]).toEqual([label, expect.stringMatching(/^application\/json/)]);
    if (res.status < 400) return;
    const error = res.body?.error;
    if (!error || ERROR_STATUS[error.code as ErrorCode] !== res.status || typeof error.message !== 'string' || Object.keys(res.body).length !== 1) {
      throw new Error(`bad envelope: ${context}`);
    }
  }

  it('every field of every body, one value of each JSON type, plus raw bodies', async () => {
    const platform = { Authorization: `Bearer ${h.platformToken}` };
    const targets: Array<{ label: string; path: () => string; auth: Record<string, string>; valid: Record<string, unknown>; fields: string[] }> = [
      { label: 'recover', path: () => `/v1/webhooks/${webhookId}/recover`, auth: owner.auth, valid: { since: '2026-11-23T10:00:00Z' }, fields: ['since', 'until', 'extra'] },
      { label: 'extractions', path: () => '/internal/v1/extractions', auth: platform, valid: { account_id: owner.accountId, document_count: 1 }, fields: ['account_id', 'extraction_id', 'parser_id', 'document_count', 'extra'] },
      { label: 'documents', path: () => `/internal/v1/extractions/${extractionId}/documents/fuzz-doc`, auth: platform, valid: { status: 'failed', error: 'x' }, fields: ['status', 'file_name', 'result', 'error', 'extra'] },
      { label: 'events', path: () => '/internal/v1/events', auth: platform, valid: { account_id: owner.accountId, event: 'quota.warning', data: { usage: 80, limit: 100 } }, fields: ['account_id', 'event', 'data', 'parser_id', 'extra'] },
      { label: 'retry', path: () => `/v1/deliveries/${deliveryId}/retry`, auth: owner.auth, valid: {}, fields: ['anything'] },
      { label: 'rotate', path: () => `/v1/webhooks/${newId('webhook')}/rotate-secret`, auth: owner.auth, valid: {}, fields: ['anything'] },
      { label: 'test', path: () => `/v1/webhooks/${newId('webhook')}/test`, auth: owner.auth, valid: {}, fields: ['anything'] },
    ];
    for (const target of targets) {
      for (const field of target.fields) {
        for (const value of EVERY_TYPE) {
          const res = await request(h.app).post(target.path()).set(target.auth).set('Content-Type', 'application/json').send(JSON.stringify({ ...target.valid, [field]: value }));
          check(`${target.label} ${field}=${JSON.stringify(value).slice(0, 30)}`, res);
        }
      }
      for (const raw of RAW) {
        check(`${target.label} raw ${raw}`, await request(h.app).post(target.path()).set(target.auth).set('Content-Type', 'application/json').send(raw));
      }
    }
  });

  it('random path ids and query values on the delivery and document reads', async () => {
    const weird = ['%00', '%E0%A4%A', 'dlv_', 'wh_' + 'a'.repeat(300), '..', '%2F', 'ünï', 'dlv_%00x', "'%20OR%201=1", 'a'.repeat(2000)];
    for (const id of weird) {
      for (const path of [`/v1/deliveries/${id}`, `/v1/webhooks/${id}/deliveries`, `/v1/extractions/${id}/documents/${id}`, `/v1/extractions/e/documents/${id}`]) {
        check(`GET ${path.slice(0, 80)}`, await request(h.app).get(path).set(owner.auth));
      }
      for (const path of [`/v1/deliveries/${id}/retry`, `/v1/webhooks/${id}/recover`, `/v1/webhooks/${id}/rotate-secret`, `/internal/v1/extractions/${id}/documents/${id}`]) {
        const auth = path.startsWith('/internal') ? { Authorization: `Bearer ${h.platformToken}` } : owner.auth;
        check(`POST ${path.slice(0, 80)}`, await request(h.app).post(path).set(auth).send({ since: '2026-11-23T10:00:00Z', status: 'failed' }));
      }
    }
    for (const query of ['status=%00', 'event=%F0', 'status[]=failed', 'event=quota.warning&event=quota.exceeded', 'limit=99999999999999999999', 'cursor=%FF%FE', 'status=' + 'x'.repeat(3000)]) {
      check(`GET deliveries?${query.slice(0, 60)}`, await request(h.app).get(`/v1/webhooks/${webhookId}/deliveries?${query}`).set(owner.auth));
    }
  });
});
