import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { redisReady } from '../../../tests/support/redis-ready';

// Wrong platform tokens are counted per client address (docs/security.md): past
// 10 in 15 minutes a wrong token is answered 429 RATE_LIMITED with Retry-After.
// The right token is checked first and always gets in, so no one sharing the
// platform's address can stop event ingest. The address is the socket's unless
// TRUST_PROXY names the proxy (default: none), normalised so that every spelling
// of one client is one budget.

let h: ApiHarness; // TRUST_PROXY unset: X-Forwarded-For is ignored
let proxied: ApiHarness; // TRUST_PROXY=loopback: the tests' loopback connection is a trusted proxy
beforeAll(async () => {
  [h, proxied] = await Promise.all([startApiHarness(), startApiHarness({ config: { TRUST_PROXY: 'loopback' } })]);
  // Until Redis is connected the limit fails open: count from a connected start.
  await Promise.all([redisReady(h), redisReady(proxied)]);
});
afterAll(() => Promise.all([h.close(), proxied.close()]));

const wrong = (i: number | string) => `wrong-token-${i}-${'x'.repeat(32)}`;
const createAccount = (harness: ApiHarness, address: string | null, token?: string) => {
  const req = request(harness.app).post('/internal/v1/accounts').send({ name: 'guess' });
  if (address) req.set('X-Forwarded-For', address);
  return token ? req.set('Authorization', `Bearer ${token}`) : req;
};

it('after 10 wrong tokens from one address, the right token still gets in; a wrong one gets 429 with Retry-After', async () => {
  for (let i = 0; i < 10; i++) expect((await createAccount(proxied, '198.51.100.20', wrong(i))).status).toBe(401);
  const right = await createAccount(proxied, '198.51.100.20', proxied.platformToken);
  expect(right.status).toBe(201);
  const res = await createAccount(proxied, '198.51.100.20', wrong(11));
  expect(res.status).toBe(429);
  expect(res.body).toEqual({ error: { code: 'RATE_LIMITED', message: expect.stringMatching(/^Too many wrong platform tokens from this address; retry in \d+ s\.$/) } });
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(800);
  expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(900);
  // Still over the budget: the right token keeps working.
  expect((await createAccount(proxied, '198.51.100.20', proxied.platformToken)).status).toBe(201);
  // Only the right token's requests created anything; the counter is keyed by address, never by a token.
  expect(await proxied.database.db.prisma.account.count({ where: { name: 'guess' } })).toBe(2);
  expect(await proxied.redis.keys(`${proxied.prefix}:auth-fail:platform:*`)).toEqual([`${proxied.prefix}:auth-fail:platform:198.51.100.20`]);
});

it('another address is unaffected', async () => {
  expect((await createAccount(proxied, '198.51.100.21', wrong('a'))).status).toBe(401);
});

it('every spelling of one client address shares one budget', async () => {
  // Ten failures, each under another spelling of 198.51.100.30, then the 11th is refused.
  const spellings = ['198.51.100.30', '::ffff:198.51.100.30', '198.51.100.30:1234', '[::ffff:198.51.100.30]:80', '::ffff:c633:641e'];
  for (let i = 0; i < 10; i++) expect((await createAccount(proxied, spellings[i % spellings.length], wrong(i))).status).toBe(401);
  expect((await createAccount(proxied, '198.51.100.30:9999', wrong('z'))).status).toBe(429);
  // And one IPv6 /64 is one client.
  for (let i = 0; i < 10; i++) expect((await createAccount(proxied, `2001:db8:5:6::${i + 1}`, wrong(i))).status).toBe(401);
  expect((await createAccount(proxied, '[2001:db8:5:6:ffff::1]:443', wrong('z'))).status).toBe(429);
  expect((await createAccount(proxied, '2001:db8:5:7::1', wrong('z'))).status).toBe(401);
  expect((await proxied.redis.keys(`${proxied.prefix}:auth-fail:platform:*`)).sort()).toEqual(
    [`${proxied.prefix}:auth-fail:platform:198.51.100.20`, `${proxied.prefix}:auth-fail:platform:198.51.100.21`, `${proxied.prefix}:auth-fail:platform:198.51.100.30`,
      `${proxied.prefix}:auth-fail:platform:2001:db8:5:6::/64`, `${proxied.prefix}:auth-fail:platform:2001:db8:5:7::/64`].sort(),
  );
});

it('by default X-Forwarded-For is not believed: rotating it from loopback is throttled after 10', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await createAccount(h, `203.0.113.${i + 1}`, wrong(i))).status);
  expect(statuses).toEqual([...Array(10).fill(401), 429, 429]);
  // The right token still gets in, from that very address.
  expect((await createAccount(h, '203.0.113.99', h.platformToken)).status).toBe(201);
});

it('requests without a bearer token are refused without being counted', async () => {
  for (let i = 0; i < 12; i++) expect((await createAccount(proxied, '198.51.100.22')).status).toBe(401);
  expect(await proxied.redis.keys(`${proxied.prefix}:auth-fail:platform:198.51.100.22`)).toEqual([]);
});

it('the right token is not counted', async () => {
  for (let i = 0; i < 12; i++) expect((await createAccount(proxied, '198.51.100.23', proxied.platformToken)).status).toBe(201);
  expect(await proxied.redis.keys(`${proxied.prefix}:auth-fail:platform:198.51.100.23`)).toEqual([]);
});

it('/openapi.json documents the 429 of the platform operations', async () => {
  const doc = (await request(h.app).get('/openapi.json')).body as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  const platformOps = Object.entries(doc.paths).filter(([path]) => path.startsWith('/internal/v1/')).flatMap(([, ops]) => Object.values(ops));
  expect(platformOps.length).toBeGreaterThan(0);
  for (const op of platformOps) expect(op.responses['429']).toEqual({ $ref: '#/components/responses/RateLimited' });
});
