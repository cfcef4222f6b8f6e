import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';

// Idempotency-Key on POST /v1/webhooks (docs/api.md#pagination-and-idempotency): the first answer
// is replayed for the same body, another body is a 409, concurrent requests act once.

let h: ApiHarness;
let acme: Awaited<ReturnType<ApiHarness['integrator']>>;
let n = 0;
beforeAll(async () => {
  h = await startApiHarness();
  acme = await h.integrator();
});
afterAll(() => h.close());

const body = () => ({ url: `https://example.com/idem/${++n}`, events: ['extraction.job_completed'] });
const send = (auth: { Authorization: string }, key: string, payload: object) =>
  request(h.app).post('/v1/webhooks').set(auth).set('Idempotency-Key', key).send(payload);
const count = (accountId: string, url: string) => h.database.db.prisma.webhook.count({ where: { accountId, url } });

describe('Idempotency-Key on POST /v1/webhooks', () => {
  it('same key and body: the same webhook and the same signing secret, one row', async () => {
    const payload = body();
    const first = await send(acme.auth, 'create-1', payload);
    const second = await send(acme.auth, 'create-1', payload);
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(second.body.webhook.id).toBe(first.body.webhook.id);
    expect(second.body.webhook.signing_secret).toBe(first.body.webhook.signing_secret);
    expect(second.body).toEqual(first.body);
    expect(await count(acme.accountId, payload.url)).toBe(1);
  });

  it('the stored answer is encrypted at rest: the signing secret is not in the database', async () => {
    const first = await send(acme.auth, 'create-sealed', body());
    expect(first.status).toBe(201);
    const rows = await h.database.db.sql.query<{ body: string }>('SELECT response_body::text AS body FROM idempotency_records');
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.body).not.toContain(first.body.webhook.signing_secret);
      expect(row.body).not.toContain('whsec_');
    }
  });

  it('same key, another body: 409 IDEMPOTENCY_CONFLICT and nothing created', async () => {
    const first = body();
    expect((await send(acme.auth, 'create-2', first)).status).toBe(201);
    const other = body();
    const res = await send(acme.auth, 'create-2', other);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(res.body.error.message).toMatch(/new key/);
    expect(await count(acme.accountId, other.url)).toBe(0);
  });

  it('concurrent requests with one key create one webhook', async () => {
    const payload = body();
    const results = await Promise.all(Array.from({ length: 8 }, () => send(acme.auth, 'create-race', payload)));
    const created = results.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const r of results.filter((x) => x.status !== 201)) {
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
    }
    expect(new Set(created.map((r) => r.body.webhook.id)).size).toBe(1);
    expect(await count(acme.accountId, payload.url)).toBe(1);
    // Once the first finished, a retry replays it.
    const retry = await send(acme.auth, 'create-race', payload);
    expect(retry.status).toBe(201);
    expect(retry.body.webhook.id).toBe(created[0].body.webhook.id);
  });

  it('keys are per account: another account using the same key creates its own webhook', async () => {
    const other = await h.integrator();
    const payload = body();
    const mine = await send(acme.auth, 'shared-key', payload);
    const theirs = await send(other.auth, 'shared-key', payload);
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(theirs.body.webhook.id).not.toBe(mine.body.webhook.id);
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
  });

  it('without a key, a repeated request is a duplicate; another key is a new request', async () => {
    const payload = body();
    expect((await request(h.app).post('/v1/webhooks').set(acme.auth).send(payload)).status).toBe(201);
    const again = await request(h.app).post('/v1/webhooks').set(acme.auth).send(payload);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('DUPLICATE_WEBHOOK');
    const withKey = await send(acme.auth, 'fresh-key', payload);
    expect(withKey.status).toBe(409);
    expect(withKey.body.error.code).toBe('DUPLICATE_WEBHOOK');
  });

  it('a refused request is replayed as refused, not retried with the same key', async () => {
    const payload = { url: 'not a url', events: ['extraction.job_completed'] };
    const first = await send(acme.auth, 'bad-1', payload);
    const second = await send(acme.auth, 'bad-1', payload);
    expect(first.status).toBe(400);
    expect(second.status).toBe(400);
    expect(second.body).toEqual(first.body);
  });

  it('an unauthenticated request never reads or claims a key', async () => {
    const payload = body();
    const anonymous = await request(h.app).post('/v1/webhooks').set('Idempotency-Key', 'anon-key').send(payload);
    expect(anonymous.status).toBe(401);
    const real = await send(acme.auth, 'anon-key', payload);
    expect(real.status).toBe(201);
    expect(real.headers['idempotent-replayed']).toBeUndefined();
  });
});
