import request from 'supertest';
import { hashApiKey, newId } from '@hookline/domain';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';

// The platform API (docs/api.md#the-platform-api): accounts and API keys.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h.close());

describe('platform token', () => {
  it('every route refuses a missing or wrong token with 401 and writes nothing', async () => {
    const account = await h.createAccount();
    const key = await h.createApiKey(account.id);
    const tokens = [undefined, 'Bearer wrong-token-wrong-token', `Bearer ${h.platformToken}x`, h.platformToken, `Basic ${h.platformToken}`];
    for (const token of tokens) {
      const calls = [
        request(h.app).post('/internal/v1/accounts').send({ name: 'x' }),
        request(h.app).post(`/internal/v1/accounts/${account.id}/api-keys`).send({ mode: 'live' }),
        request(h.app).delete(`/internal/v1/api-keys/${key.id}`),
      ];
      for (const call of calls) {
        const res = await (token ? call.set('Authorization', token) : call);
        expect(res.status).toBe(401);
        expect(res.body.error.code).toBe('UNAUTHORIZED');
        expect(res.body.error.message).not.toContain(h.platformToken);
      }
    }
    expect(await h.database.db.prisma.account.count({ where: { name: 'x' } })).toBe(0);
    expect(await h.database.db.prisma.apiKey.count({ where: { accountId: account.id } })).toBe(1);
    expect((await h.database.db.prisma.apiKey.findUniqueOrThrow({ where: { id: key.id } })).revokedAt).toBeNull();
  });

  it('an API key is not a platform token', async () => {
    const { key } = await h.integrator();
    const res = await request(h.app).post('/internal/v1/accounts').set('Authorization', `Bearer ${key}`).send({ name: 'y' });
    expect(res.status).toBe(401);
  });
});

describe('POST /internal/v1/accounts', () => {
  it('creates an account, plan pro by default', async () => {
    const res = await h.platform.post('/internal/v1/accounts', { name: 'Acme' });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      account: { id: expect.stringMatching(/^acct_[0-9A-Za-z]{22}$/), name: 'Acme', plan: 'pro', monthly_quota: null, created_at: expect.any(String) },
    });
    expect(new Date(res.body.account.created_at).toISOString()).toBe(res.body.account.created_at);
  });

  it('takes plan and monthly_quota', async () => {
    for (const plan of ['free', 'pro', 'enterprise']) {
      const res = await h.platform.post('/internal/v1/accounts', { name: `P ${plan}`, plan, monthly_quota: 1000 });
      expect(res.status).toBe(201);
      expect(res.body.account).toMatchObject({ plan, monthly_quota: 1000 });
    }
  });

  it('validates the body', async () => {
    const bad: unknown[] = [
      {}, { name: '' }, { name: 'n'.repeat(201) }, { name: 5 }, { name: 'A', plan: 'gold' }, { name: 'A', monthly_quota: -1 },
      { name: 'A', monthly_quota: 1.5 }, { name: 'A', extra: true }, [], 'x', null,
    ];
    for (const body of bad) {
      const res = await request(h.app).post('/internal/v1/accounts').set('Authorization', `Bearer ${h.platformToken}`).set('Content-Type', 'application/json').send(JSON.stringify(body));
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_PAYLOAD');
      expect(res.body.error.message.length).toBeGreaterThan(0);
    }
    const withoutBody = await request(h.app).post('/internal/v1/accounts').set('Authorization', `Bearer ${h.platformToken}`);
    expect(withoutBody.status).toBe(400);
  });
});

describe('POST /internal/v1/accounts/:id/api-keys', () => {
  it('creates live and test keys; only a hash and a prefix are stored', async () => {
    const account = await h.createAccount();
    for (const mode of ['live', 'test'] as const) {
      const res = await h.platform.post(`/internal/v1/accounts/${account.id}/api-keys`, { mode });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({ api_key: { id: expect.stringMatching(/^key_/), key: expect.stringMatching(new RegExp(`^hk_${mode}_[0-9A-Za-z]{32}$`)), mode, created_at: expect.any(String) } });
      const { key, id } = res.body.api_key;
      const row = await h.database.db.prisma.apiKey.findUniqueOrThrow({ where: { id } });
      expect(row.keyHash).toBe(hashApiKey(key));
      expect(row.prefix).toBe(key.slice(0, 12));
      expect(row.accountId).toBe(account.id);
      // No column of the table holds the key.
      const rows = await h.database.db.sql.query('SELECT * FROM api_keys');
      expect(JSON.stringify(rows)).not.toContain(key);
      expect(JSON.stringify(rows)).not.toContain(key.slice(12));
    }
  });

  it('defaults to live and refuses an unknown mode', async () => {
    const account = await h.createAccount();
    const res = await h.platform.post(`/internal/v1/accounts/${account.id}/api-keys`, {});
    expect(res.status).toBe(201);
    expect(res.body.api_key.mode).toBe('live');
    const noBody = await request(h.app).post(`/internal/v1/accounts/${account.id}/api-keys`).set('Authorization', `Bearer ${h.platformToken}`);
    expect(noBody.status).toBe(201);
    const bad = await h.platform.post(`/internal/v1/accounts/${account.id}/api-keys`, { mode: 'prod' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('mode');
  });

  it('404 for an unknown or malformed account id', async () => {
    for (const id of [newId('account'), 'acct_', 'nope', '%00', 'a'.repeat(500)]) {
      const res = await h.platform.post(`/internal/v1/accounts/${id}/api-keys`, { mode: 'test' });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('RESOURCE_NOT_FOUND');
    }
  });

  it('the new key works at once on /v1', async () => {
    const account = await h.createAccount();
    const key = await h.createApiKey(account.id, 'live');
    const res = await request(h.app).get('/v1/webhooks').set('X-API-Key', key.key);
    expect(res.status).toBe(200);
  });
});

describe('DELETE /internal/v1/api-keys/:id', () => {
  it('revokes: the key stops working at once, other keys of the account keep working', async () => {
    const account = await h.createAccount();
    const a = await h.createApiKey(account.id);
    const b = await h.createApiKey(account.id);
    expect((await request(h.app).get('/v1/webhooks').set('Authorization', `Bearer ${a.key}`)).status).toBe(200);
    const res = await h.platform.delete(`/internal/v1/api-keys/${a.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    for (const headers of [{ Authorization: `Bearer ${a.key}` }, { 'X-API-Key': a.key }]) {
      const after = await request(h.app).get('/v1/webhooks').set(headers);
      expect(after.status).toBe(401);
      expect(after.body.error.code).toBe('UNAUTHORIZED');
    }
    expect((await request(h.app).get('/v1/webhooks').set('Authorization', `Bearer ${b.key}`)).status).toBe(200);
    const row = await h.database.db.prisma.apiKey.findUniqueOrThrow({ where: { id: a.id } });
    expect(row.revokedAt).toBeInstanceOf(Date);

    // Revoking again is harmless and keeps the first time.
    expect((await h.platform.delete(`/internal/v1/api-keys/${a.id}`)).status).toBe(204);
    expect((await h.database.db.prisma.apiKey.findUniqueOrThrow({ where: { id: a.id } })).revokedAt).toEqual(row.revokedAt);
  });

  it('404 for an unknown key', async () => {
    for (const id of [newId('apiKey'), 'nope', 'key_']) {
      const res = await h.platform.delete(`/internal/v1/api-keys/${id}`);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('RESOURCE_NOT_FOUND');
    }
  });
});

describe('Idempotency-Key on the platform API', () => {
  it('replays an account creation and refuses a changed body', async () => {
    const key = `acct-${Date.now()}`;
    const send = (body: object) => request(h.app).post('/internal/v1/accounts').set('Authorization', `Bearer ${h.platformToken}`).set('Idempotency-Key', key).send(body);
    const first = await send({ name: 'Once Inc' });
    const second = await send({ name: 'Once Inc' });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(await h.database.db.prisma.account.count({ where: { name: 'Once Inc' } })).toBe(1);
    const changed = await send({ name: 'Twice Inc' });
    expect(changed.status).toBe(409);
    expect(changed.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('replays an API key creation with the same key', async () => {
    const account = await h.createAccount();
    const send = () => request(h.app).post(`/internal/v1/accounts/${account.id}/api-keys`).set('Authorization', `Bearer ${h.platformToken}`).set('Idempotency-Key', 'key-1').send({ mode: 'test' });
    const [a, b] = [await send(), await send()];
    expect(a.status).toBe(201);
    expect(b.body.api_key).toEqual(a.body.api_key);
    expect(await h.database.db.prisma.apiKey.count({ where: { accountId: account.id } })).toBe(1);
  });
});
