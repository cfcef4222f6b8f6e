import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { redisReady } from '../support/redis-ready';

// The dashboard's sign-in form cannot be used to guess keys: after 10 failed
// sign-ins from one address in 15 minutes, further unknown keys are refused (429
// page with Retry-After) until the window passes. A valid key always signs in:
// an office behind one NAT is not locked out by a colleague's typos. Counted in
// Redis, per deployment prefix.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
  // Until Redis is connected the limit fails open: count from a connected start.
  await redisReady(h);
});
afterAll(() => h.close());

const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)![1];

it('refuses unknown keys from an address after 10 failures and says when to retry; a valid key still signs in', async () => {
  const { key } = await h.integrator();
  // A fresh browser (cookie jar) for each attempt, as a guesser would use.
  const attempt = async (apiKey: string) => {
    const agent = request.agent(h.app);
    const csrf = csrfOf((await agent.get('/dashboard')).text);
    return agent.post('/dashboard/sign-in').type('form').send({ _csrf: csrf, api_key: apiKey });
  };

  // Successful sign-ins are not counted.
  expect((await attempt(key)).status).toBe(303);
  for (let i = 0; i < 10; i++) {
    const res = await attempt(`hk_test_${'x'.repeat(31)}${i}`);
    expect(res.status).toBe(401);
  }
  const guess = `hk_test_${'x'.repeat(31)}z`;
  const blocked = await attempt(guess);
  expect(blocked.status).toBe(429);
  expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(800);
  expect(blocked.text).toContain('Too many failed sign-ins');
  expect(blocked.text).not.toContain(guess);
  expect(await h.redis.keys(`${h.prefix}:dash:signin-fail*`)).toHaveLength(1);

  // Same address, still blocked for failures: a valid key signs in all the same.
  const agent = request.agent(h.app);
  const csrf = csrfOf((await agent.get('/dashboard')).text);
  const signedIn = await agent.post('/dashboard/sign-in').type('form').send({ _csrf: csrf, api_key: key });
  expect(signedIn.status).toBe(303);
  expect((await agent.get(signedIn.headers.location)).status).toBe(200);
  // And it did not clear the block for guesses.
  expect((await attempt(guess)).status).toBe(429);
});

describe('behind a proxy (TRUST_PROXY)', () => {
  const failFrom = async (app: ApiHarness['app'], forwardedFor: string, times: number) => {
    for (let i = 0; i < times; i++) {
      const agent = request.agent(app);
      const csrf = csrfOf((await agent.get('/dashboard').set('X-Forwarded-For', forwardedFor)).text);
      const res = await agent.post('/dashboard/sign-in').set('X-Forwarded-For', forwardedFor).type('form').send({ _csrf: csrf, api_key: `hk_test_${'y'.repeat(32)}` });
      expect([401, 429]).toContain(res.status);
    }
  };
  const statusFrom = async (app: ApiHarness['app'], forwardedFor: string) => {
    const agent = request.agent(app);
    const csrf = csrfOf((await agent.get('/dashboard').set('X-Forwarded-For', forwardedFor)).text);
    return (await agent.post('/dashboard/sign-in').set('X-Forwarded-For', forwardedFor).type('form').send({ _csrf: csrf, api_key: 'hk_test_' + 'z'.repeat(32) })).status;
  };

  it('counts each client behind a proxy TRUST_PROXY names on its own, every spelling of an address as one', async () => {
    const proxied = await startApiHarness({ config: { TRUST_PROXY: 'loopback' } });
    try {
      await redisReady(proxied);
      await failFrom(proxied.app, '203.0.113.5', 5);
      await failFrom(proxied.app, '::ffff:203.0.113.5', 5);
      expect(await statusFrom(proxied.app, '203.0.113.5:4321')).toBe(429);
      expect(await statusFrom(proxied.app, '203.0.113.6')).toBe(401);
    } finally {
      await proxied.close();
    }
  });

  it('ignores X-Forwarded-For by default (TRUST_PROXY unset): rotating it buys no fresh budget', async () => {
    const strict = await startApiHarness();
    try {
      await redisReady(strict);
      for (let i = 0; i < 10; i++) await failFrom(strict.app, `198.51.100.${i + 1}`, 1);
      // Every request comes from the same socket address, whatever the header says.
      expect(await statusFrom(strict.app, '198.51.100.99')).toBe(429);
    } finally {
      await strict.close();
    }
  });
});
