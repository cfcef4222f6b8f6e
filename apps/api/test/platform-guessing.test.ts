import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { redisReady } from '../../../tests/support/redis-ready';

// The platform token is a guessable secret: wrong bearer tokens are counted per
// client address (docs/api.md#authentication), and after 10 in 15 minutes that
// address is answered 429 RATE_LIMITED with Retry-After, even with the right token.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
  // Until Redis is connected the limit fails open: count from a connected start.
  await redisReady(h);
});
afterAll(() => h.close());

// Each test its own client address (behind the loopback proxy the harness trusts).
const createAccount = (address: string, token?: string) => {
  const req = request(h.app).post('/internal/v1/accounts').set('X-Forwarded-For', address).send({ name: 'guess' });
  return token ? req.set('Authorization', `Bearer ${token}`) : req;
};

it('answers 429 with Retry-After after 10 wrong tokens from one address, even to the right token', async () => {
  for (let i = 0; i < 10; i++) {
    const res = await createAccount('198.51.100.20', `wrong-token-${i}-${'x'.repeat(32)}`);
    expect(res.status).toBe(401);
  }
  for (const token of ['wrong-token-11', h.platformToken]) {
    const res = await createAccount('198.51.100.20', token);
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('RATE_LIMITED');
    expect(res.body.error.message).toMatch(/^Too many wrong platform tokens from this address; retry in \d+ s\.$/);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(800);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(900);
  }
  // Nothing was created, and the counter is keyed by address, never by a token.
  expect(await h.database.db.prisma.account.count({ where: { name: 'guess' } })).toBe(0);
  expect(await h.redis.keys(`${h.prefix}:auth-fail:platform:*`)).toEqual([`${h.prefix}:auth-fail:platform:198.51.100.20`]);
});

it('another address is unaffected', async () => {
  expect((await createAccount('198.51.100.21', h.platformToken)).status).toBe(201);
  expect((await createAccount('198.51.100.21', 'wrong')).status).toBe(401);
});

it('requests without a bearer token are refused without being counted', async () => {
  for (let i = 0; i < 12; i++) expect((await createAccount('198.51.100.22')).status).toBe(401);
  expect((await createAccount('198.51.100.22', h.platformToken)).status).toBe(201);
});

it('the right token is not counted', async () => {
  for (let i = 0; i < 12; i++) expect((await createAccount('198.51.100.23', h.platformToken)).status).toBe(201);
  expect(await h.redis.keys(`${h.prefix}:auth-fail:platform:198.51.100.23`)).toEqual([]);
});

it('/openapi.json documents the 429 of the platform operations', async () => {
  const doc = (await request(h.app).get('/openapi.json')).body as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  const platformOps = Object.entries(doc.paths).filter(([path]) => path.startsWith('/internal/v1/')).flatMap(([, ops]) => Object.values(ops));
  expect(platformOps.length).toBeGreaterThan(0);
  for (const op of platformOps) expect(op.responses['429']).toEqual({ $ref: '#/components/responses/RateLimited' });
});
