import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { redisReady } from '../../../tests/support/redis-ready';

// Wrong API keys on /v1 are counted per client address like wrong platform
// tokens (docs/security.md): past 10 in 15 minutes a wrong key gets 429 with
// Retry-After; a valid key from the same address always works.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
  await redisReady(h);
});
afterAll(() => h.close());

const guess = (i: number) => `hk_test_${'g'.repeat(31)}${i}`;

it('throttles wrong keys after 10 from one address, while a valid key keeps working', async () => {
  const { auth, key } = await h.integrator();
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await request(h.app).get('/v1/webhooks').set('Authorization', `Bearer ${guess(i)}`)).status);
  expect(statuses).toEqual([...Array(10).fill(401), 429, 429]);

  const refused = await request(h.app).get('/v1/event-types').set('X-API-Key', guess(99));
  expect(refused.status).toBe(429);
  expect(refused.body).toEqual({ error: { code: 'RATE_LIMITED', message: expect.stringMatching(/^Too many wrong API keys from this address; retry in \d+ s\.$/) } });
  expect(Number(refused.headers['retry-after'])).toBeGreaterThan(800);

  // The same address (loopback), over its budget: a valid key, either header, is served.
  expect((await request(h.app).get('/v1/webhooks').set(auth)).status).toBe(200);
  expect((await request(h.app).get('/v1/event-types').set('X-API-Key', key)).status).toBe(200);
  // A revoked key is a wrong key.
  const { accountId } = await h.integrator();
  const second = await h.createApiKey(accountId);
  expect((await h.platform.delete(`/internal/v1/api-keys/${second.id}`)).status).toBeLessThan(300);
  expect((await request(h.app).get('/v1/webhooks').set('X-API-Key', second.key)).status).toBe(429);
  // One counter, keyed by address only.
  expect(await h.redis.keys(`${h.prefix}:auth-fail:api-key:*`)).toHaveLength(1);
});

it('a request without any key is 401 and not counted', async () => {
  const fresh = await startApiHarness();
  try {
    await redisReady(fresh);
    for (let i = 0; i < 12; i++) expect((await request(fresh.app).get('/v1/webhooks')).status).toBe(401);
    expect(await fresh.redis.keys(`${fresh.prefix}:auth-fail:api-key:*`)).toEqual([]);
  } finally {
    await fresh.close();
  }
});
