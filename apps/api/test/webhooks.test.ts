import request from 'supertest';
import { API_EVENT_NAMES, DASHBOARD_EVENT_NAMES, EVENT_TYPES, newId } from '@hookline/domain';
import { writeEvent } from '@hookline/db';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { createWebhook, getWebhookRow, revealSigningSecret, updateWebhook } from '../src/services/webhooks';

// The integrator webhook API (docs/api.md#the-integrator-api) on a real database.

const DOC = 'extraction.document_completed';
const JOB = 'extraction.job_completed';

let h: ApiHarness;
let acme: Awaited<ReturnType<ApiHarness['integrator']>>;
let live: Awaited<ReturnType<ApiHarness['integrator']>>;
let other: Awaited<ReturnType<ApiHarness['integrator']>>;
let urlCounter = 0;
const freshUrl = (scheme = 'https') => `${scheme}://hooks.example.com/h/${++urlCounter}`;

beforeAll(async () => {
  h = await startApiHarness();
  acme = await h.integrator({ mode: 'test' });
  live = await h.integrator({ mode: 'live' });
  other = await h.integrator({ mode: 'test' });
});
afterAll(() => h.close());

const post = (auth: { Authorization: string }, body: unknown) => request(h.app).post('/v1/webhooks').set(auth).send(body as object);
const create = async (auth: { Authorization: string }, body: Record<string, unknown> = {}) => {
  const res = await post(auth, { url: freshUrl(), events: [DOC], ...body });
  expect(res.status).toBe(201);
  return res.body.webhook as Record<string, unknown> & { id: string; signing_secret: string };
};

describe('GET /v1/event-types', () => {
  it('lists the catalog with name, description and source', async () => {
    const res = await request(h.app).get('/v1/event-types').set(acme.auth);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual(EVENT_TYPES.map(({ name, description, source }) => ({ name, description, source, schema: expect.objectContaining({ $schema: expect.any(String) }) })));
  });

  it('needs a key but no paid plan', async () => {
    const free = await h.integrator({ plan: 'free' });
    expect((await request(h.app).get('/v1/event-types').set(free.auth)).status).toBe(200);
    const anonymous = await request(h.app).get('/v1/event-types');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHORIZED');
  });
});

describe('authentication', () => {
  it('accepts Authorization: Bearer and X-API-Key', async () => {
    expect((await request(h.app).get('/v1/webhooks').set('Authorization', `Bearer ${acme.key}`)).status).toBe(200);
    expect((await request(h.app).get('/v1/webhooks').set('X-API-Key', acme.key)).status).toBe(200);
  });

  it('refuses a missing, unknown or malformed key with 401', async () => {
    for (const headers of [{}, { Authorization: 'Bearer hk_test_unknownunknownunknownunknown00' }, { 'X-API-Key': 'nope' }, { Authorization: 'Basic abc' }] as Record<string, string>[]) {
      const res = await request(h.app).get('/v1/webhooks').set(headers);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
      expect(res.body.error.message).toMatch(/key/i);
    }
  });

  it('a revoked key gets 401 at once', async () => {
    const account = await h.integrator();
    expect((await request(h.app).get('/v1/webhooks').set(account.auth)).status).toBe(200);
    expect((await h.platform.delete(`/internal/v1/api-keys/${account.keyId}`)).status).toBe(204);
    const res = await request(h.app).get('/v1/webhooks').set(account.auth);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHORIZED');
  });

  it('a free plan gets 403 PLAN_REQUIRED on every webhook call', async () => {
    const free = await h.integrator({ plan: 'free' });
    const id = newId('webhook');
    const calls = [
      request(h.app).get('/v1/webhooks').set(free.auth),
      request(h.app).post('/v1/webhooks').set(free.auth).send({ url: freshUrl(), events: [DOC] }),
      request(h.app).get(`/v1/webhooks/${id}`).set(free.auth),
      request(h.app).patch(`/v1/webhooks/${id}`).set(free.auth).send({ is_active: false }),
      request(h.app).delete(`/v1/webhooks/${id}`).set(free.auth),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('PLAN_REQUIRED');
      expect(res.body.error.message).toMatch(/pro or enterprise/);
    }
    const rows = await h.database.db.prisma.webhook.count({ where: { accountId: free.accountId } });
    expect(rows).toBe(0);
  });
});

describe('POST /v1/webhooks', () => {
  it('creates a webhook with the contract defaults and a one-time signing secret', async () => {
    const url = freshUrl();
    const res = await post(acme.auth, { url, events: [DOC], secret: 'static-token-1' });
    expect(res.status).toBe(201);
    const wh = res.body.webhook;
    expect(wh).toEqual({
      id: expect.stringMatching(/^wh_[0-9A-Za-z]+$/),
      url,
      events: [DOC],
      description: null,
      parser_id: null,
      source: 'api',
      is_active: true,
      status: 'active',
      retry_enabled: true,
      max_retries: 5,
      has_static_secret: true,
      disabled_reason: null,
      failing_since: null,
      filter: null,
      max_in_flight: null,
      rate_limit_per_second: null,
      headers: {},
      circuit: 'closed',
      circuit_retry_at: null,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      updated_at: expect.any(String),
      signing_secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    expect(Buffer.from(wh.signing_secret.slice(6), 'base64')).toHaveLength(32);
    // The contract's field order: filter, then the isolation fields, between failing_since and created_at.
    expect(Object.keys(wh)).toEqual([
      'id', 'url', 'events', 'description', 'parser_id', 'source', 'is_active', 'status', 'retry_enabled', 'max_retries', 'has_static_secret',
      'disabled_reason', 'failing_since', 'filter', 'max_in_flight', 'rate_limit_per_second', 'headers', 'circuit', 'circuit_retry_at', 'created_at', 'updated_at', 'signing_secret',
    ]);
  });

  it('stores both secrets encrypted, and never shows them on reads', async () => {
    const secret = 'my-static-secret-value';
    const wh = await create(acme.auth, { secret });
    const row = await h.database.db.prisma.webhook.findUniqueOrThrow({ where: { id: wh.id } });
    expect(row.signingSecretEnc).not.toContain(wh.signing_secret);
    expect(row.signingSecretEnc).not.toContain(wh.signing_secret.slice(6));
    expect(row.staticSecretEnc).not.toContain(secret);
    expect(row.signingSecretEnc).toMatch(/^v1:/);
    expect(row.staticSecretEnc).toMatch(/^v1:/);
    expect(h.deps.secretBox.decrypt(row.signingSecretEnc)).toBe(wh.signing_secret);
    expect(h.deps.secretBox.decrypt(row.staticSecretEnc!)).toBe(secret);
    // The raw columns, as SQL sees them, hold no plaintext either.
    const [raw] = await h.database.db.sql.query<Record<string, string>>('SELECT signing_secret_enc, static_secret_enc FROM webhooks WHERE id = $1', [wh.id]);
    expect(JSON.stringify(raw)).not.toContain(secret);
    expect(JSON.stringify(raw)).not.toContain(wh.signing_secret);

    const list = await request(h.app).get('/v1/webhooks?limit=100').set(acme.auth);
    const one = await request(h.app).get(`/v1/webhooks/${wh.id}`).set(acme.auth);
    const patched = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({ description: 'x' });
    for (const res of [list, one, patched]) {
      expect(res.status).toBe(200);
      expect(res.text).not.toContain(secret);
      expect(res.text).not.toContain(wh.signing_secret);
      expect(res.text).not.toContain('signing_secret');
    }
  });

  it('takes every optional field', async () => {
    const url = freshUrl();
    const res = await post(acme.auth, {
      url, events: [DOC, JOB, DOC], description: 'Orders', parser_id: 'parser_1', is_active: false, retry_enabled: false, max_retries: 0,
    });
    expect(res.status).toBe(201);
    expect(res.body.webhook).toMatchObject({
      url, events: [DOC, JOB], description: 'Orders', parser_id: 'parser_1', is_active: false, status: 'paused', retry_enabled: false, max_retries: 0, has_static_secret: false,
    });
  });

  it('accepts every API event and refuses dashboard-only and unknown events', async () => {
    expect((await post(acme.auth, { url: freshUrl(), events: [...API_EVENT_NAMES] })).status).toBe(201);
    for (const events of [['batch.completed'], ['nope.event'], [DOC, 'x'], [], 'extraction.document_completed', [1], null]) {
      const res = await post(acme.auth, { url: freshUrl(), events });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_PAYLOAD');
      expect(res.body.error.details[0].path).toMatch(/^events(\.\d+)?$/);
    }
  });

  it('refuses unknown fields, missing fields and non-objects', async () => {
    const unknown = await post(acme.auth, { url: freshUrl(), events: [DOC], colour: 'red' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details).toEqual([{ path: 'colour', message: 'is not a known field' }]);
    const missing = await post(acme.auth, { events: [DOC] });
    expect(missing.status).toBe(400);
    expect(missing.body.error.details[0].path).toBe('url');
    for (const body of [[], 'text', 42, null]) {
      const res = await request(h.app).post('/v1/webhooks').set(acme.auth).set('Content-Type', 'application/json').send(JSON.stringify(body));
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    }
    const empty = await request(h.app).post('/v1/webhooks').set(acme.auth);
    expect(empty.status).toBe(400);
  });

  it('url: 2048 characters ok, 2049 refused, must be an absolute http(s) URL', async () => {
    const base = 'https://hooks.example.com/';
    const at = (n: number) => base + 'a'.repeat(n - base.length);
    expect((await post(acme.auth, { url: at(2048), events: [DOC] })).status).toBe(201);
    const long = await post(acme.auth, { url: at(2049), events: [DOC] });
    expect(long.status).toBe(400);
    expect(long.body.error.details[0]).toEqual({ path: 'url', message: 'must be at most 2048 characters' });
    for (const url of ['', 'hooks.example.com', 'ftp://example.com/x', 'javascript:alert(1)', 'https://', 42, null, 'https://a.example/\u0000x']) {
      const res = await post(acme.auth, { url, events: [DOC] });
      expect(res.status).toBe(400);
      expect(res.body.error.details[0].path).toBe('url');
    }
  });

  it('a live key may register only https URLs; a test key also http', async () => {
    const refused = await post(live.auth, { url: freshUrl('http'), events: [DOC] });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('INVALID_PAYLOAD');
    expect(refused.body.error.details).toEqual([{ path: 'url', message: expect.stringMatching(/must be an https URL/) }]);
    expect((await post(live.auth, { url: freshUrl('https'), events: [DOC] })).status).toBe(201);
    expect((await post(acme.auth, { url: freshUrl('http'), events: [DOC] })).status).toBe(201);
  });

  it('secret: 7 characters refused, 8 and 256 ok, 257 refused', async () => {
    for (const [secret, status] of [['a'.repeat(7), 400], ['a'.repeat(8), 201], ['a'.repeat(256), 201], ['a'.repeat(257), 400], [12345678, 400], [null, 400]] as const) {
      const res = await post(acme.auth, { url: freshUrl(), events: [DOC], secret });
      expect(res.status).toBe(status);
      if (status === 400) expect(res.body.error.details[0].path).toBe('secret');
      else expect(res.body.webhook.has_static_secret).toBe(true);
    }
  });

  it('max_retries: -1, 11, 1.5 and "3" refused; 0 and 10 ok', async () => {
    for (const [max, status] of [[-1, 400], [11, 400], [1.5, 400], ['3', 400], [0, 201], [10, 201]] as const) {
      const res = await post(acme.auth, { url: freshUrl(), events: [DOC], max_retries: max });
      expect(res.status).toBe(status);
      if (status === 400) expect(res.body.error.details[0].path).toBe('max_retries');
      else expect(res.body.webhook.max_retries).toBe(max);
    }
  });

  it('boolean, description and parser_id fields are type-checked', async () => {
    for (const body of [{ is_active: 'yes' }, { retry_enabled: 1 }, { description: 'd'.repeat(501) }, { parser_id: '' }, { parser_id: 'p'.repeat(129) }, { description: 7 }]) {
      const res = await post(acme.auth, { url: freshUrl(), events: [DOC], ...body });
      expect(res.status).toBe(400);
      expect(res.body.error.details[0].path).toBe(Object.keys(body)[0]);
    }
  });

  it('409 DUPLICATE_WEBHOOK for the same URL and scope; another scope is fine; after delete the URL is free again', async () => {
    const url = freshUrl();
    const first = await create(acme.auth, { url });
    const dup = await post(acme.auth, { url, events: [JOB] });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('DUPLICATE_WEBHOOK');
    expect(dup.body.error.message).toContain(first.id);

    const scoped = await create(acme.auth, { url, parser_id: 'p1' });
    const dupScoped = await post(acme.auth, { url, events: [DOC], parser_id: 'p1' });
    expect(dupScoped.status).toBe(409);
    await create(acme.auth, { url, parser_id: 'p2' });
    // Another account may use the same URL.
    await create(other.auth, { url });

    expect((await request(h.app).delete(`/v1/webhooks/${first.id}`).set(acme.auth)).status).toBe(204);
    const again = await create(acme.auth, { url });
    expect(again.id).not.toBe(first.id);
    expect(scoped.id).not.toBe(again.id);
  });

  it('concurrent creates of one URL leave exactly one webhook (the unique index settles the race)', async () => {
    const url = freshUrl();
    const results = await Promise.all(Array.from({ length: 6 }, () => post(acme.auth, { url, events: [DOC] })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) expect(r.body.error.code).toBe('DUPLICATE_WEBHOOK');
    expect(await h.database.db.prisma.webhook.count({ where: { accountId: acme.accountId, url, deletedAt: null } })).toBe(1);
  });
});

describe('GET /v1/webhooks/:id', () => {
  it('returns the webhook and its last 10 attempts, newest first', async () => {
    const wh = await create(acme.auth);
    const prisma = h.database.db.prisma;
    const written = await prisma.$transaction((tx) => writeEvent(tx, { accountId: acme.accountId, event: DOC, parserId: null, data: { n: 1 } }));
    expect(written.deliveryIds.length).toBeGreaterThanOrEqual(1);
    const deliveryId = (await prisma.delivery.findFirstOrThrow({ where: { webhookId: wh.id } })).id;
    const base = Date.now() - 60_000;
    for (let n = 1; n <= 12; n++) {
      await prisma.attempt.create({
        data: {
          id: newId('attempt'), deliveryId, webhookId: wh.id, eventId: written.eventId, event: DOC, attemptNumber: n,
          status: n === 12 ? 'succeeded' : 'failed', responseStatus: n === 12 ? 200 : 500, responseBody: `r${n}`, error: null,
          durationMs: 10 + n, createdAt: new Date(base + n * 1000), nextRetryAt: null,
        },
      });
    }
    const res = await request(h.app).get(`/v1/webhooks/${wh.id}`).set(acme.auth);
    expect(res.status).toBe(200);
    const { signing_secret: _omit, ...expected } = wh;
    expect(res.body.webhook).toEqual(expected);
    expect(res.body.recent_attempts).toHaveLength(10);
    expect(res.body.recent_attempts.map((a: { attempt_number: number }) => a.attempt_number)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    expect(res.body.recent_attempts[0]).toEqual({
      id: expect.stringMatching(/^att_/), delivery_id: deliveryId, event_id: written.eventId, event: DOC, attempt_number: 12, status: 'succeeded',
      response_status: 200, response_body: 'r12', error: null, duration_ms: 22, created_at: new Date(base + 12_000).toISOString(), next_retry_at: null,
    });
  });

  it('a webhook with no attempts has an empty list', async () => {
    const wh = await create(acme.auth);
    const res = await request(h.app).get(`/v1/webhooks/${wh.id}`).set(acme.auth);
    expect(res.body.recent_attempts).toEqual([]);
  });

  it('404 for an unknown id, a malformed id, and another account\'s webhook', async () => {
    const mine = await create(acme.auth);
    for (const id of [newId('webhook'), 'nope', 'wh_', `${mine.id}x`, 'wh_%00', encodeURIComponent('wh_a\u0000b'), 'x'.repeat(3000)]) {
      const res = await request(h.app).get(`/v1/webhooks/${id}`).set(acme.auth);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('RESOURCE_NOT_FOUND');
    }
    const theirs = await request(h.app).get(`/v1/webhooks/${mine.id}`).set(other.auth);
    expect(theirs.status).toBe(404);
    expect(theirs.body.error.code).toBe('RESOURCE_NOT_FOUND');
  });
});

describe('PATCH /v1/webhooks/:id', () => {
  it('changes each field and leaves the others alone', async () => {
    const wh = await create(acme.auth, { secret: 'first-secret' });
    const url = freshUrl();
    const res = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({
      url, events: [JOB], description: 'new', parser_id: 'p9', retry_enabled: false, max_retries: 10,
    });
    expect(res.status).toBe(200);
    expect(res.body.webhook).toMatchObject({ id: wh.id, url, events: [JOB], description: 'new', parser_id: 'p9', retry_enabled: false, max_retries: 10, has_static_secret: true, status: 'active', created_at: wh.created_at });
    expect(res.body.webhook.signing_secret).toBeUndefined();
    expect(Date.parse(res.body.webhook.updated_at)).toBeGreaterThanOrEqual(Date.parse(wh.updated_at as string));

    const cleared = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({ description: null, parser_id: null });
    expect(cleared.body.webhook).toMatchObject({ description: null, parser_id: null, url, events: [JOB] });
    const empty = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({});
    expect(empty.status).toBe(200);
    expect(empty.body.webhook.url).toBe(url);
  });

  it('replaces or removes the static secret (secret: null)', async () => {
    const wh = await create(acme.auth, { secret: 'first-secret' });
    const replaced = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({ secret: 'second-secret' });
    expect(replaced.status).toBe(200);
    expect(replaced.text).not.toContain('second-secret');
    const row = await h.database.db.prisma.webhook.findUniqueOrThrow({ where: { id: wh.id } });
    expect(h.deps.secretBox.decrypt(row.staticSecretEnc!)).toBe('second-secret');
    const removed = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({ secret: null });
    expect(removed.body.webhook.has_static_secret).toBe(false);
    expect((await h.database.db.prisma.webhook.findUniqueOrThrow({ where: { id: wh.id } })).staticSecretEnc).toBeNull();
    const short = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({ secret: 'short' });
    expect(short.status).toBe(400);
    expect(short.body.error.details[0].path).toBe('secret');
  });

  it('pauses, resumes, and re-enables a disabled webhook', async () => {
    const wh = await create(acme.auth);
    const paused = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({ is_active: false });
    expect(paused.body.webhook).toMatchObject({ is_active: false, status: 'paused' });
    const resumed = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({ is_active: true });
    expect(resumed.body.webhook).toMatchObject({ is_active: true, status: 'active' });

    const since = new Date(Date.now() - 4 * 86_400_000);
    await h.database.db.prisma.webhook.update({ where: { id: wh.id }, data: { disabledReason: 'failing_too_long', disabledAt: new Date(), failingSince: since } });
    const disabled = await request(h.app).get(`/v1/webhooks/${wh.id}`).set(acme.auth);
    expect(disabled.body.webhook).toMatchObject({ status: 'disabled', is_active: false, disabled_reason: 'failing_too_long', failing_since: since.toISOString() });

    const reenabled = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({ is_active: true });
    expect(reenabled.status).toBe(200);
    expect(reenabled.body.webhook).toMatchObject({ status: 'active', is_active: true, disabled_reason: null, failing_since: null });
    const row = await h.database.db.prisma.webhook.findUniqueOrThrow({ where: { id: wh.id } });
    expect(row.disabledAt).toBeNull();
  });

  it('re-checks https for live keys and duplicates when the url or scope changes', async () => {
    const wh = await create(live.auth);
    const http = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(live.auth).send({ url: freshUrl('http') });
    expect(http.status).toBe(400);
    expect(http.body.error.details[0].path).toBe('url');

    const taken = await create(live.auth, { parser_id: 'px' });
    const toTakenUrl = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(live.auth).send({ url: taken.url, parser_id: 'px' });
    expect(toTakenUrl.status).toBe(409);
    expect(toTakenUrl.body.error.code).toBe('DUPLICATE_WEBHOOK');
    // Same URL, another scope: allowed.
    const otherScope = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(live.auth).send({ url: taken.url });
    expect(otherScope.status).toBe(200);
    // Patching a webhook to its own URL is not a duplicate of itself.
    const self = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(live.auth).send({ url: taken.url, description: 'same' });
    expect(self.status).toBe(200);
  });

  it('validates the patch like a create', async () => {
    const wh = await create(acme.auth);
    for (const body of [{ events: [] }, { events: ['batch.failed'] }, { max_retries: 11 }, { url: 'not a url' }, { unknown: 1 }, { is_active: null }, { url: null }]) {
      const res = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send(body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_PAYLOAD');
      expect(res.body.error.details[0].path.split('.')[0]).toBe(Object.keys(body)[0]);
    }
  });

  it('404 for another account, unknown or deleted webhooks', async () => {
    const wh = await create(acme.auth);
    const theirs = await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(other.auth).send({ is_active: false });
    expect(theirs.status).toBe(404);
    expect((await request(h.app).patch(`/v1/webhooks/${newId('webhook')}`).set(acme.auth).send({ is_active: false })).status).toBe(404);
    expect((await request(h.app).get(`/v1/webhooks/${wh.id}`).set(acme.auth)).body.webhook.is_active).toBe(true);
  });
});

describe('endpoint isolation fields: max_in_flight, rate_limit_per_second, circuit', () => {
  const prisma = () => h.database.db.prisma;
  const get = (id: string) => request(h.app).get(`/v1/webhooks/${id}`).set(acme.auth);
  const patch = (id: string, body: Record<string, unknown>) => request(h.app).patch(`/v1/webhooks/${id}`).set(acme.auth).send(body);
  const listed = async (id: string) => {
    const res = await request(h.app).get('/v1/webhooks?limit=100').set(acme.auth);
    expect(res.status).toBe(200);
    return res.body.data.find((w: { id: string }) => w.id === id);
  };

  it('round-trips through create, get, list and patch; a patch that leaves them out keeps them; null clears them', async () => {
    const wh = await create(acme.auth, { max_in_flight: 7, rate_limit_per_second: 50 });
    expect(wh).toMatchObject({ max_in_flight: 7, rate_limit_per_second: 50, circuit: 'closed', circuit_retry_at: null });
    expect(await prisma().webhook.findUniqueOrThrow({ where: { id: wh.id } })).toMatchObject({ maxInFlight: 7, rateLimitPerSecond: 50, circuit: 'closed' });
    expect((await get(wh.id)).body.webhook).toMatchObject({ max_in_flight: 7, rate_limit_per_second: 50 });
    expect(await listed(wh.id)).toMatchObject({ max_in_flight: 7, rate_limit_per_second: 50, circuit: 'closed', circuit_retry_at: null });

    const one = await patch(wh.id, { max_in_flight: 3 });
    expect(one.status).toBe(200);
    expect(one.body.webhook).toMatchObject({ max_in_flight: 3, rate_limit_per_second: 50 });
    const other = await patch(wh.id, { description: 'unrelated' });
    expect(other.body.webhook).toMatchObject({ max_in_flight: 3, rate_limit_per_second: 50 });
    const cleared = await patch(wh.id, { max_in_flight: null, rate_limit_per_second: null });
    expect(cleared.body.webhook).toMatchObject({ max_in_flight: null, rate_limit_per_second: null });
    expect(await prisma().webhook.findUniqueOrThrow({ where: { id: wh.id } })).toMatchObject({ maxInFlight: null, rateLimitPerSecond: null });
    expect(await listed(wh.id)).toMatchObject({ max_in_flight: null, rate_limit_per_second: null });

    // Explicit nulls on create are the defaults too.
    expect(await create(acme.auth, { max_in_flight: null, rate_limit_per_second: null })).toMatchObject({ max_in_flight: null, rate_limit_per_second: null });
  });

  it('accepts the bounds: max_in_flight 1 and 100, rate_limit_per_second 1 and 1000', async () => {
    for (const [max, rate] of [[1, 1], [100, 1000]]) {
      const wh = await create(acme.auth, { max_in_flight: max, rate_limit_per_second: rate });
      expect(wh).toMatchObject({ max_in_flight: max, rate_limit_per_second: rate });
      const patched = await patch(wh.id, { max_in_flight: max === 1 ? 100 : 1, rate_limit_per_second: rate === 1 ? 1000 : 1 });
      expect(patched.status).toBe(200);
    }
  });

  const BAD: Array<[string, unknown, RegExp]> = [
    ['max_in_flight', 0, /1 or more/],
    ['max_in_flight', -1, /1 or more/],
    ['max_in_flight', 101, /100 or less/],
    ['max_in_flight', 1.5, /integer from 1 to 100/],
    ['max_in_flight', '10', /integer from 1 to 100/],
    ['max_in_flight', true, /integer from 1 to 100/],
    ['max_in_flight', 1e308, /100 or less/],
    ['rate_limit_per_second', 0, /1 or more/],
    ['rate_limit_per_second', 1001, /1000 or less/],
    ['rate_limit_per_second', 1.5, /integer from 1 to 1000/],
    ['rate_limit_per_second', '10', /integer from 1 to 1000/],
    ['rate_limit_per_second', [5], /integer from 1 to 1000/],
  ];

  it.each(BAD)('create refuses %s = %p with 400 INVALID_PAYLOAD naming the field, and writes nothing', async (field, value, message) => {
    const url = freshUrl();
    const res = await post(acme.auth, { url, events: [DOC], [field]: value });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    expect(res.body.error.details).toContainEqual({ path: field, message: expect.stringMatching(message) });
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(res.body.error.details.map(() => field));
    expect(res.body.error.message).toMatch(new RegExp(`^${field}: `));
    expect(await prisma().webhook.count({ where: { url } })).toBe(0);
  });

  it('patch refuses the same values and leaves the webhook as it was', async () => {
    const wh = await create(acme.auth, { max_in_flight: 4, rate_limit_per_second: 9 });
    for (const [field, value] of BAD) {
      const res = await patch(wh.id, { [field]: value });
      expect([field, value, res.status]).toEqual([field, value, 400]);
      expect(res.body.error.details[0].path).toBe(field);
    }
    expect((await get(wh.id)).body.webhook).toMatchObject({ max_in_flight: 4, rate_limit_per_second: 9 });
  });

  it('the service functions the dashboard calls check the same rules', async () => {
    const auth = { accountId: acme.accountId, mode: 'test' as const };
    await expect(createWebhook(h.deps, auth, { url: freshUrl(), events: DASHBOARD_EVENT_NAMES, max_in_flight: 0 }, 'dashboard')).rejects.toMatchObject({
      code: 'INVALID_PAYLOAD', details: [{ path: 'max_in_flight', message: expect.any(String) }],
    });
    const { webhook } = await createWebhook(h.deps, auth, { url: freshUrl(), events: DASHBOARD_EVENT_NAMES, rate_limit_per_second: 20 }, 'dashboard');
    expect(webhook.rate_limit_per_second).toBe(20);
    await expect(updateWebhook(h.deps, auth, webhook.id, { rate_limit_per_second: 1001 })).rejects.toMatchObject({ details: [{ path: 'rate_limit_per_second', message: expect.any(String) }] });
  });

  it('shows the circuit the worker wrote (open with its retry time, half_open), never circuit_cooldown_ms', async () => {
    const wh = await create(acme.auth);
    const retryAt = new Date(Date.now() + 45_000);
    await prisma().webhook.update({ where: { id: wh.id }, data: { circuit: 'open', circuitRetryAt: retryAt, circuitCooldownMs: 987_654 } });

    const one = await get(wh.id);
    expect(one.body.webhook).toMatchObject({ circuit: 'open', circuit_retry_at: retryAt.toISOString(), status: 'active' });
    expect(await listed(wh.id)).toMatchObject({ circuit: 'open', circuit_retry_at: retryAt.toISOString() });
    // Changing a limit does not touch the worker's circuit state.
    const patched = await patch(wh.id, { max_in_flight: 2 });
    expect(patched.body.webhook).toMatchObject({ max_in_flight: 2, circuit: 'open', circuit_retry_at: retryAt.toISOString() });
    const rotated = await request(h.app).post(`/v1/webhooks/${wh.id}/rotate-secret`).set(acme.auth);
    expect(rotated.status).toBe(200);
    expect(rotated.body.webhook).toMatchObject({ circuit: 'open', circuit_retry_at: retryAt.toISOString() });
    for (const res of [one, patched, rotated, await request(h.app).get('/v1/webhooks?limit=100').set(acme.auth)]) {
      expect(res.text).not.toMatch(/cooldown/i);
      expect(res.text).not.toContain('987654');
    }

    await prisma().webhook.update({ where: { id: wh.id }, data: { circuit: 'half_open' } });
    expect((await get(wh.id)).body.webhook).toMatchObject({ circuit: 'half_open' });
    // A closed circuit shows no retry time, even if one was left behind in the row.
    await prisma().webhook.update({ where: { id: wh.id }, data: { circuit: 'closed' } });
    expect((await get(wh.id)).body.webhook).toMatchObject({ circuit: 'closed', circuit_retry_at: null });
    // The column is free text: a value the API does not know is never passed on.
    await prisma().webhook.update({ where: { id: wh.id }, data: { circuit: 'jammed' } });
    expect((await get(wh.id)).body.webhook).toMatchObject({ circuit: 'closed', circuit_retry_at: null });
  });

  it('is_active: true on a disabled webhook re-enables it and closes its circuit; resuming a paused one leaves the circuit to the worker', async () => {
    const wh = await create(acme.auth);
    const since = new Date(Date.now() - 4 * 86_400_000);
    const retryAt = new Date(Date.now() + 600_000);
    await prisma().webhook.update({
      where: { id: wh.id },
      data: { disabledReason: 'failing_too_long', disabledAt: new Date(), failingSince: since, circuit: 'open', circuitRetryAt: retryAt, circuitCooldownMs: 1_800_000 },
    });
    expect((await get(wh.id)).body.webhook).toMatchObject({ status: 'disabled', is_active: false, circuit: 'open', circuit_retry_at: retryAt.toISOString() });

    const reenabled = await patch(wh.id, { is_active: true });
    expect(reenabled.status).toBe(200);
    expect(reenabled.body.webhook).toMatchObject({ status: 'active', is_active: true, disabled_reason: null, failing_since: null, circuit: 'closed', circuit_retry_at: null });
    expect(await prisma().webhook.findUniqueOrThrow({ where: { id: wh.id } })).toMatchObject({
      disabledReason: null, disabledAt: null, failingSince: null, circuit: 'closed', circuitRetryAt: null, circuitCooldownMs: null,
    });

    // Pause and resume of a webhook the service never disabled: the breaker keeps its state.
    await prisma().webhook.update({ where: { id: wh.id }, data: { circuit: 'open', circuitRetryAt: retryAt, circuitCooldownMs: 60_000 } });
    expect((await patch(wh.id, { is_active: false })).body.webhook).toMatchObject({ status: 'paused', circuit: 'open' });
    expect((await patch(wh.id, { is_active: true })).body.webhook).toMatchObject({ status: 'active', circuit: 'open', circuit_retry_at: retryAt.toISOString() });
    expect((await prisma().webhook.findUniqueOrThrow({ where: { id: wh.id } })).circuitCooldownMs).toBe(60_000);
  });
});

describe('DELETE /v1/webhooks/:id', () => {
  it('soft-deletes: 204, then 404 on every read, patch and delete, gone from the list', async () => {
    const wh = await create(acme.auth);
    const res = await request(h.app).delete(`/v1/webhooks/${wh.id}`).set(acme.auth);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    for (const r of [
      await request(h.app).get(`/v1/webhooks/${wh.id}`).set(acme.auth),
      await request(h.app).patch(`/v1/webhooks/${wh.id}`).set(acme.auth).send({ is_active: true }),
      await request(h.app).delete(`/v1/webhooks/${wh.id}`).set(acme.auth),
    ]) {
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('RESOURCE_NOT_FOUND');
    }
    const list = await request(h.app).get('/v1/webhooks?limit=100').set(acme.auth);
    expect(list.body.data.map((w: { id: string }) => w.id)).not.toContain(wh.id);
    const row = await h.database.db.prisma.webhook.findUniqueOrThrow({ where: { id: wh.id } });
    expect(row.deletedAt).toBeInstanceOf(Date);
  });

  it('cancels its waiting deliveries and leaves finished ones alone', async () => {
    const account = await h.integrator();
    const wh = await create(account.auth);
    const keep = await create(account.auth);
    const prisma = h.database.db.prisma;
    await prisma.$transaction((tx) => writeEvent(tx, { accountId: account.accountId, event: DOC, parserId: null, data: {} }));
    await prisma.$transaction((tx) => writeEvent(tx, { accountId: account.accountId, event: DOC, parserId: null, data: {} }));
    await prisma.$transaction((tx) => writeEvent(tx, { accountId: account.accountId, event: DOC, parserId: null, data: {} }));
    const mine = await prisma.delivery.findMany({ where: { webhookId: wh.id }, orderBy: { id: 'asc' } });
    expect(mine).toHaveLength(3);
    await prisma.delivery.update({ where: { id: mine[0].id }, data: { status: 'succeeded' } });
    await prisma.delivery.update({ where: { id: mine[1].id }, data: { status: 'pending_retry' } });

    expect((await request(h.app).delete(`/v1/webhooks/${wh.id}`).set(account.auth)).status).toBe(204);
    const after = await prisma.delivery.findMany({ where: { webhookId: wh.id }, orderBy: { id: 'asc' } });
    expect(after.map((d) => d.status)).toEqual(['succeeded', 'cancelled', 'cancelled']);
    const untouched = await prisma.delivery.findMany({ where: { webhookId: keep.id } });
    expect(untouched.map((d) => d.status)).toEqual(['pending', 'pending', 'pending']);
  });

  it('another account cannot delete it (404) and it survives', async () => {
    const wh = await create(acme.auth);
    const res = await request(h.app).delete(`/v1/webhooks/${wh.id}`).set(other.auth);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('RESOURCE_NOT_FOUND');
    expect((await request(h.app).get(`/v1/webhooks/${wh.id}`).set(acme.auth)).status).toBe(200);
  });
});

describe('GET /v1/webhooks isolation', () => {
  it('lists only the account\'s own webhooks', async () => {
    const account = await h.integrator();
    const a = await create(account.auth);
    const res = await request(h.app).get('/v1/webhooks').set(account.auth);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: [expect.objectContaining({ id: a.id })], has_more: false, next_cursor: null });
  });
});

describe('the service functions the dashboard reuses', () => {
  it('creates dashboard webhooks whose secret can be revealed; API ones cannot', async () => {
    const account = await h.integrator({ mode: 'live' });
    const auth = { accountId: account.accountId, mode: 'live' as const };
    const { webhook, signingSecret } = await createWebhook(h.deps, auth, { url: freshUrl(), events: DASHBOARD_EVENT_NAMES, secret: 'header-value' }, 'dashboard');
    expect(webhook).toMatchObject({ source: 'dashboard', events: DASHBOARD_EVENT_NAMES, has_static_secret: true });
    expect(await revealSigningSecret(h.deps, account.accountId, webhook.id)).toBe(signingSecret);
    // Another account cannot reveal it.
    await expect(revealSigningSecret(h.deps, other.accountId, webhook.id)).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });

    const api = await createWebhook(h.deps, auth, { url: freshUrl(), events: [DOC] });
    expect(api.webhook.source).toBe('api');
    await expect(revealSigningSecret(h.deps, account.accountId, api.webhook.id)).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND', message: expect.stringMatching(/shown once/) });

    // The API listing shows dashboard webhooks too, without secrets.
    const list = await request(h.app).get('/v1/webhooks').set(account.auth);
    expect(list.body.data.map((w: { id: string }) => w.id)).toEqual([api.webhook.id, webhook.id]);
    expect(list.text).not.toContain(signingSecret);
  });

  it('applies the same rules as the API: https for live keys, field limits, duplicates, NUL bytes', async () => {
    const auth = { accountId: live.accountId, mode: 'live' as const };
    await expect(createWebhook(h.deps, auth, { url: freshUrl('http'), events: DASHBOARD_EVENT_NAMES }, 'dashboard')).rejects.toMatchObject({ code: 'INVALID_PAYLOAD', details: [{ path: 'url', message: expect.any(String) }] });
    await expect(createWebhook(h.deps, auth, { url: freshUrl(), events: DASHBOARD_EVENT_NAMES, secret: 'short' }, 'dashboard')).rejects.toMatchObject({ details: [{ path: 'secret', message: expect.any(String) }] });
    await expect(createWebhook(h.deps, auth, { url: freshUrl(), events: [], secret: null }, 'dashboard')).rejects.toMatchObject({ details: [{ path: 'events', message: expect.any(String) }] });
    await expect(createWebhook(h.deps, auth, { url: freshUrl(), events: DASHBOARD_EVENT_NAMES }, 'api')).rejects.toMatchObject({ details: [{ path: 'events', message: expect.any(String) }] });
    await expect(createWebhook(h.deps, auth, { url: freshUrl(), events: DASHBOARD_EVENT_NAMES, description: 'a\u0000b' }, 'dashboard')).rejects.toMatchObject({ details: [{ path: 'description', message: expect.any(String) }] });
    const url = freshUrl();
    await createWebhook(h.deps, auth, { url, events: DASHBOARD_EVENT_NAMES, parser_id: 'inv' }, 'dashboard');
    await expect(createWebhook(h.deps, auth, { url, events: DASHBOARD_EVENT_NAMES, parser_id: 'inv' }, 'dashboard')).rejects.toMatchObject({ code: 'DUPLICATE_WEBHOOK' });
  });

  it('keeps the events of a dashboard webhook fixed, but pauses and resumes it', async () => {
    const auth = { accountId: acme.accountId, mode: 'test' as const };
    const { webhook } = await createWebhook(h.deps, auth, { url: freshUrl(), events: DASHBOARD_EVENT_NAMES }, 'dashboard');
    await expect(updateWebhook(h.deps, auth, webhook.id, { events: [DOC] })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
    const paused = await updateWebhook(h.deps, auth, webhook.id, { is_active: false });
    expect(paused.status).toBe('paused');
    const row = await getWebhookRow(h.deps, acme.accountId, webhook.id);
    expect(row.isActive).toBe(false);
    await expect(getWebhookRow(h.deps, other.accountId, webhook.id)).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  });
});
