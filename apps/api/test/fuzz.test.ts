import request from 'supertest';
import { ERROR_STATUS, type ErrorCode } from '@hookline/domain';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { prng } from '../../../tests/support/prng';

// Random input against every webhook and platform endpoint: whatever arrives,
// the answer is never a 5xx, and every error is the contract's envelope with the
// code that belongs to its status. The PRNG is seeded so a failure reproduces:
// FUZZ_SEED=<n> reruns one sequence.

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);


type Rng = ReturnType<typeof prng>;

const STRINGS = [
  '', ' ', 'NaN', 'Infinity', '-0', 'null', 'true', '0', '5', '1e309', 'abc', 'https://example.com/fuzz', 'http://example.com/fuzz',
  'https://', '//example.com', 'javascript:alert(1)', 'ftp://example.com', 'extraction.document_completed', 'batch.completed',
  'quota.warning', 'live', 'test', 'pro', 'free', 'enterprise', 'ünïcödé ✓ 😀 \u202e', '\u0000', 'a\u0000b', '\ud800', '<script>alert(1)</script>',
  "'; DROP TABLE webhooks; --", '%00', '../../etc/passwd', '\n\r\t', 'wh_', 'acct_', 'key_',
];
const NUMBERS = [0, -1, 1, 1.5, -1.5, 10, 11, 100, 101, 1000, 1001, 2 ** 31, 2 ** 53 + 1, -(2 ** 53), 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER];

function randomString(rng: Rng): string {
  switch (rng.int(5)) {
    case 0:
      return 'x'.repeat(10_000);
    case 1:
      return `https://fuzz.example/${rng.int(1e9)}/${'p'.repeat(rng.int(3000))}`;
    case 2:
      return Array.from({ length: rng.int(40) }, () => String.fromCodePoint(rng.int(0x2ffff))).join('');
    default:
      return rng.pick(STRINGS);
  }
}

function randomValue(rng: Rng, depth = 0): unknown {
  const kind = rng.int(depth > 2 ? 5 : 8);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.next() < 0.5;
    case 2:
      return rng.pick(NUMBERS);
    case 3:
    case 4:
      return randomString(rng);
    case 5:
      return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    case 6:
      return Object.fromEntries(Array.from({ length: rng.int(4) }, () => [rng.pick(['a', 'url', 'events', '__proto__', 'constructor', '']), randomValue(rng, depth + 1)]));
    default:
      return rng.pick([['extraction.document_completed'], ['quota.warning', 'quota.exceeded'], [], ['batch.failed'], [null]]);
  }
}

/** Raw bodies JSON.stringify cannot produce. */
const RAW_BODIES = ['{', '{"url":', 'NaN', '{"max_retries": NaN}', '{"max_retries": 1e400}', "{'url': 'x'}", '[1,2,', '\u0000', '{"a":1}{"b":2}', 'undefined', '"', '{"url":"\\ud800"}', '{"__proto__":{"polluted":true}}'];

const WEBHOOK_FIELDS = ['url', 'events', 'secret', 'description', 'parser_id', 'is_active', 'retry_enabled', 'max_retries', 'max_in_flight', 'rate_limit_per_second', 'headers'];

/** Header names a custom-headers fuzz draws from: valid, reserved in every spelling, hop-by-hop, and not tokens at all. */
const HEADER_NAMES = [
  'Authorization', 'X-Tenant', 'x-api-key', 'A', 'a'.repeat(64), 'a'.repeat(65), 'Content-Type', 'CONTENT-LENGTH', 'User-Agent', 'Host', 'X-Webhook-Secret',
  'X-PerfectParser-Signature', 'x-perfectparser-anything', 'webhook-id', 'Webhook-Signature', 'Connection', 'Keep-Alive', 'Transfer-Encoding', 'TE', 'Trailer',
  'Upgrade', 'Proxy-Authorization', 'proxy-anything', 'Expect', 'X Space', 'X:Colon', 'X\r\nInjected: 1', 'ünï', '', '(x)', 'x@y', '__proto__', 'constructor',
];
const HEADER_VALUES = ['Bearer abc', '', ' ', 'a'.repeat(1024), 'a'.repeat(1025), 'line\r\nInjected: 1', 'tab\there', 'nul\u0000', 'ünï', '😀', 'x\u007f', 'ok'];
/** What a custom header the API accepted may look like (docs/api.md, "Custom headers"). */
const SENDABLE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
const RESERVED_NAME = /^(content-type|content-length|content-encoding|user-agent|host|x-webhook-secret|expect|connection|keep-alive|transfer-encoding|te|trailer|upgrade|proxy-.*|webhook-.*|x-perfectparser-.*)$/i;

/** What a stored webhook's isolation fields may hold, whatever was sent. */
function expectIsolationFields(webhook: Record<string, unknown>): void {
  const inRange = (value: unknown, max: number) => value === null || (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= max);
  expect([webhook.max_in_flight, inRange(webhook.max_in_flight, 100)]).toEqual([webhook.max_in_flight, true]);
  expect([webhook.rate_limit_per_second, inRange(webhook.rate_limit_per_second, 1000)]).toEqual([webhook.rate_limit_per_second, true]);
  expect(webhook.circuit).toBe('closed');
}

let h: ApiHarness;
let auth: { Authorization: string };
let live: { Authorization: string };
let webhookId: string;
let accountId: string;
const platformAuth = () => ({ Authorization: `Bearer ${h.platformToken}` });

beforeAll(async () => {
  h = await startApiHarness();
  const acme = await h.integrator({ mode: 'test' });
  auth = acme.auth;
  accountId = acme.accountId;
  live = (await h.integrator({ mode: 'live' })).auth;
  const created = await request(h.app).post('/v1/webhooks').set(auth).send({ url: 'https://fuzz.example/base', events: ['quota.warning'] });
  webhookId = created.body.webhook.id;
});
afterAll(() => h.close());

type Sent = { label: string; res: request.Response };

function check({ label, res }: Sent): void {
  const context = `${label} → ${res.status} ${res.text.slice(0, 300)}`;
  if (res.status >= 500) throw new Error(`server error for ${context}`);
  if (res.status === 204) return;
  if (!/^application\/json/.test(String(res.headers['content-type']))) throw new Error(`not JSON: ${context}`);
  if (res.status < 400) return;
  const error = res.body?.error;
  const ok =
    error && typeof error.code === 'string' && typeof error.message === 'string' && error.message.length > 0 &&
    ERROR_STATUS[error.code as ErrorCode] === res.status &&
    Object.keys(res.body).length === 1 &&
    (error.details === undefined || (Array.isArray(error.details) && error.details.every((d: { path?: unknown; message?: unknown }) => typeof d.path === 'string' && typeof d.message === 'string')));
  if (!ok) throw new Error(`bad envelope: ${context}`);
}

/** encodeURIComponent, after a UTF-8 round trip has replaced lone surrogates (which it refuses). */
const encode = (text: string) => encodeURIComponent(Buffer.from(text, 'utf8').toString('utf8'));

const sendJson = (test: request.Test, body: string) => test.set('Content-Type', 'application/json').send(body);

/** One random body for an endpoint whose valid body is `valid`: one field replaced, an extra field, or a random whole body. */
function mutate(rng: Rng, valid: Record<string, unknown>, fields: string[]): string {
  const roll = rng.next();
  if (roll < 0.6) return JSON.stringify({ ...valid, [rng.pick(fields)]: randomValue(rng) });
  if (roll < 0.7) {
    const copy: Record<string, unknown> = { ...valid };
    delete copy[rng.pick(fields)];
    return JSON.stringify(copy);
  }
  if (roll < 0.8) return JSON.stringify({ ...valid, [randomString(rng).slice(0, 50) || 'x']: randomValue(rng) });
  if (roll < 0.9) return rng.pick(RAW_BODIES);
  return JSON.stringify(rng.pick([[], [valid], 'text', 42, -1, null, true, false, 1e308, randomValue(rng)]));
}

function randomPathSegment(rng: Rng): string {
  return encode(rng.next() < 0.3 ? webhookId + randomString(rng).slice(0, 5) : randomString(rng).slice(0, 200)) || 'x';
}

describe(`fuzz (seed ${SEED})`, () => {
  jest.setTimeout(60_000);

  // A fixed sweep first: each field of each body gets one value of every JSON type.
  const EVERY_TYPE: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, -1e308, '', 'NaN', '\u0000', 'a\u0000b', '\ud800', 'ünï 😀', 'x'.repeat(10_000), [], [null], [1, 'a'], {}, { a: { b: { c: [] } } }];

  it('every field of every body, one value of each JSON type', async () => {
    const bodies: { label: string; path: () => string; method: 'post' | 'patch'; auth: () => Record<string, string>; valid: Record<string, unknown>; fields: string[] }[] = [
      { label: 'POST /v1/webhooks', method: 'post', path: () => '/v1/webhooks', auth: () => auth, valid: { url: 'https://fuzz.example/sweep', events: ['quota.warning'] }, fields: WEBHOOK_FIELDS },
      { label: 'PATCH /v1/webhooks/:id', method: 'patch', path: () => `/v1/webhooks/${webhookId}`, auth: () => auth, valid: {}, fields: WEBHOOK_FIELDS },
      { label: 'POST /internal/v1/accounts', method: 'post', path: () => '/internal/v1/accounts', auth: platformAuth, valid: { name: 'sweep' }, fields: ['name', 'plan', 'monthly_quota'] },
      { label: 'POST api-keys', method: 'post', path: () => `/internal/v1/accounts/${accountId}/api-keys`, auth: platformAuth, valid: {}, fields: ['mode'] },
    ];
    for (const target of bodies) {
      for (const field of target.fields) {
        for (const value of EVERY_TYPE) {
          const body = JSON.stringify({ ...target.valid, [field]: value });
          const res = await sendJson(request(h.app)[target.method](target.path()).set(target.auth()), body);
          check({ label: `${target.label} ${field}=${JSON.stringify(value).slice(0, 40)}`, res });
        }
      }
      for (const raw of [...RAW_BODIES, '[]', '"text"', '42', 'null', 'true']) {
        check({ label: `${target.label} raw ${raw}`, res: await sendJson(request(h.app)[target.method](target.path()).set(target.auth()), raw) });
      }
    }
  });

  it('POST /v1/webhooks: every field with values of every type, and random whole bodies', async () => {
    const rng = prng(SEED);
    for (let i = 0; i < 160; i++) {
      const valid = { url: `https://fuzz.example/create/${i}`, events: ['extraction.document_completed'], secret: 'fuzz-secret-1', max_retries: 3, max_in_flight: 5, rate_limit_per_second: 50 };
      const body = mutate(rng, valid, WEBHOOK_FIELDS);
      const key = rng.next() < 0.5 ? auth : live;
      const test = request(h.app).post('/v1/webhooks').set(key);
      if (rng.next() < 0.15) test.set('Idempotency-Key', `fuzz-${rng.int(5)}`);
      const res = await sendJson(test, body);
      check({ label: `POST /v1/webhooks ${body.slice(0, 200)}`, res });
      if (res.status === 201) {
        expect(res.body.webhook.id).toMatch(/^wh_/);
        expect(res.body.webhook.signing_secret).toMatch(/^whsec_/);
        expectIsolationFields(res.body.webhook);
      }
    }
  });

  it('PATCH /v1/webhooks/:id: every field with values of every type', async () => {
    const rng = prng(SEED + 1);
    for (let i = 0; i < 120; i++) {
      const valid = { description: `d${i}`, is_active: true };
      const body = mutate(rng, valid, WEBHOOK_FIELDS);
      const id = rng.next() < 0.85 ? webhookId : randomPathSegment(rng);
      const res = await sendJson(request(h.app).patch(`/v1/webhooks/${id}`).set(rng.next() < 0.8 ? auth : live), body);
      check({ label: `PATCH /v1/webhooks/${id.slice(0, 40)} ${body.slice(0, 200)}`, res });
      if (res.status === 200) {
        expect(res.body.webhook.id).toBe(webhookId);
        expectIsolationFields(res.body.webhook);
      }
    }
    // Whatever was patched, the webhook is still readable.
    const after = await request(h.app).get(`/v1/webhooks/${webhookId}`).set(auth);
    expect(after.status).toBe(200);
  });

  it('custom headers: random maps of names and values; whatever is accepted is sendable and not reserved', async () => {
    const rng = prng(SEED + 6);
    const randomHeaders = () => {
      const count = rng.next() < 0.1 ? 11 + rng.int(3) : rng.int(5);
      const entries = Array.from({ length: count }, (_, i) => [rng.next() < 0.2 ? `X-Fuzz-${i}-${randomString(rng).slice(0, 8)}` : rng.pick(HEADER_NAMES), rng.next() < 0.2 ? randomValue(rng) : rng.pick(HEADER_VALUES)]);
      return Object.fromEntries(entries);
    };
    for (let i = 0; i < 80; i++) {
      const headers = randomHeaders();
      const create = rng.next() < 0.5;
      const body = JSON.stringify(create ? { url: `https://fuzz.example/headers/${i}`, events: ['quota.warning'], headers } : { headers });
      const res = await sendJson(create ? request(h.app).post('/v1/webhooks').set(auth) : request(h.app).patch(`/v1/webhooks/${webhookId}`).set(auth), body);
      check({ label: `${create ? 'POST' : 'PATCH'} headers ${body.slice(0, 200)}`, res });
      if (res.status === 400) {
        expect(res.body.error.details.some((d: { path: string }) => d.path === 'headers' || d.path.startsWith('headers.'))).toBe(true);
        continue;
      }
      expect([200, 201]).toContain(res.status);
      const shown = res.body.webhook.headers as Record<string, string>;
      expect(Object.keys(shown).length).toBeLessThanOrEqual(10);
      for (const [name, value] of Object.entries(shown)) {
        expect([name, SENDABLE_NAME.test(name) && !RESERVED_NAME.test(name)]).toEqual([name, true]);
        expect([value, /^[\x20-\x7e]{0,1024}$/.test(value)]).toEqual([value, true]);
      }
    }
  });

  it('GET /v1/webhooks with random limit and cursor', async () => {
    const rng = prng(SEED + 2);
    for (let i = 0; i < 50; i++) {
      const parts = [];
      if (rng.next() < 0.7) parts.push(`limit=${encode(String(randomValue(rng)).slice(0, 100))}`);
      if (rng.next() < 0.7) parts.push(`cursor=${encode(randomString(rng).slice(0, 700))}`);
      if (rng.next() < 0.2) parts.push('limit=1&limit=2');
      if (rng.next() < 0.2) parts.push('cursor[a]=1');
      const path = `/v1/webhooks?${parts.join('&')}`;
      check({ label: `GET ${path.slice(0, 200)}`, res: await request(h.app).get(path).set(auth) });
    }
  });

  it('GET, DELETE /v1/webhooks/:id and GET /v1/event-types with random ids and bodies', async () => {
    const rng = prng(SEED + 3);
    for (let i = 0; i < 40; i++) {
      const id = randomPathSegment(rng);
      check({ label: `GET /v1/webhooks/${id.slice(0, 60)}`, res: await request(h.app).get(`/v1/webhooks/${id}`).set(auth) });
      const del = await sendJson(request(h.app).delete(`/v1/webhooks/${id}`).set(auth), JSON.stringify(randomValue(rng)));
      check({ label: `DELETE /v1/webhooks/${id.slice(0, 60)}`, res: del });
      check({ label: 'GET /v1/event-types', res: await request(h.app).get(`/v1/event-types?x=${id}`).set(auth) });
    }
  });

  it('the platform API: accounts, api-keys and revocation with random bodies and ids', async () => {
    const rng = prng(SEED + 4);
    for (let i = 0; i < 70; i++) {
      const accountBody = mutate(rng, { name: `fuzz ${i}`, plan: 'pro', monthly_quota: 100 }, ['name', 'plan', 'monthly_quota']);
      const res = await sendJson(request(h.app).post('/internal/v1/accounts').set(platformAuth()), accountBody);
      check({ label: `POST /internal/v1/accounts ${accountBody.slice(0, 200)}`, res });
      if (res.status === 201) expect(res.body.account.id).toMatch(/^acct_/);

      const target = rng.next() < 0.6 ? accountId : randomPathSegment(rng);
      const keyBody = mutate(rng, { mode: 'test' }, ['mode']);
      const keyRes = await sendJson(request(h.app).post(`/internal/v1/accounts/${target}/api-keys`).set(platformAuth()), keyBody);
      check({ label: `POST api-keys ${target.slice(0, 40)} ${keyBody.slice(0, 200)}`, res: keyRes });

      if (rng.next() < 0.3) {
        const id = randomPathSegment(rng);
        check({ label: `DELETE /internal/v1/api-keys/${id.slice(0, 60)}`, res: await request(h.app).delete(`/internal/v1/api-keys/${id}`).set(platformAuth()) });
      }
    }
  });

  it('random auth headers never produce a 5xx', async () => {
    const rng = prng(SEED + 5);
    for (let i = 0; i < 30; i++) {
      // Header values must be printable ASCII to be sent at all.
      const value = Array.from({ length: rng.int(300) }, () => String.fromCharCode(0x20 + rng.int(0x5f))).join('');
      const header = rng.pick(['Authorization', 'X-API-Key']);
      const target = rng.pick(['/v1/webhooks', '/internal/v1/accounts']);
      const res = await request(h.app).get(target).set(header, rng.next() < 0.5 ? `Bearer ${value}` : value);
      check({ label: `GET ${target} ${header}: ${value.slice(0, 60)}`, res });
    }
  });
});
