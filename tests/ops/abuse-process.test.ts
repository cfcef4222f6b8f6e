import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { cleanPrefix, startApiHarness, TEST_REDIS_URL, type ApiHarness } from '../support/api-harness';
import { spawnApiProcess, type ApiProcess } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';

// Issue #23 on the API as deployed: `tsx apps/api/src/main.ts` with
// NODE_ENV=production, its settings read from the environment (so the defaults
// are env.ts's, not a test harness's), spoken to over real TCP from loopback
// (docs/security.md). The in-process tests beside each part hold the details;
// this holds that the process wires them: the failed-credential throttles with
// TRUST_PROXY unset and with it naming the proxy, the cookies' Secure flag in
// production and the Swagger demo page's 404.

const PASSWORD = 'admin-password-of-this-test';
let h: ApiHarness; // the database, the prefix and the secrets; its in-process app is not used
const running: ApiProcess[] = [];
const prefixes: string[] = [];
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(async () => {
  for (const api of running) await api.kill('SIGKILL');
  for (const prefix of prefixes) await cleanPrefix(h.redis, prefix);
  await h.close();
});

/** One API process on this test's database; `prefix` keeps its counters apart from another process's. */
async function startApi(prefix: string, env: Record<string, string> = {}): Promise<ApiProcess> {
  const api = await spawnApiProcess({
    NODE_ENV: 'production',
    DATABASE_URL: h.database.url,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: prefix,
    PLATFORM_TOKEN: h.platformToken,
    ENCRYPTION_KEY: h.encryptionKey.toString('base64'),
    SESSION_SECRET: randomBytes(24).toString('hex'),
    ADMIN_PASSWORD: PASSWORD,
    ...env,
  });
  running.push(api);
  prefixes.push(prefix);
  // Until its Redis connection is up the throttles fail open: count from a ready process.
  await waitUntil(async () => (await fetch(`http://127.0.0.1:${api.port}/readyz`)).status === 200, 'the API process ready (PostgreSQL and Redis up)', { timeoutMs: 20_000 });
  return api;
}

type Call = { path: string; method?: string; bearer?: string; headers?: Record<string, string>; body?: unknown };
const call = (api: ApiProcess, c: Call) =>
  fetch(`http://127.0.0.1:${api.port}${c.path}`, {
    method: c.method ?? 'GET',
    redirect: 'manual',
    headers: { ...(c.bearer ? { authorization: `Bearer ${c.bearer}` } : {}), ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}), ...c.headers },
    body: c.body !== undefined ? JSON.stringify(c.body) : undefined,
  });
const createAccount = (api: ApiProcess, token: string, forwardedFor: string) =>
  call(api, { path: '/internal/v1/accounts', method: 'POST', bearer: token, headers: { 'x-forwarded-for': forwardedFor }, body: { name: 'abuse-process', plan: 'pro' } });
const wrongToken = (i: number | string) => `wrong-${i}-${'x'.repeat(40)}`;
const wrongKey = (i: number | string) => `hk_test_${'w'.repeat(31)}${i}`;
const counterKeys = (prefix: string, name: string) => h.redis.keys(`${prefix}:${name}:*`);

/** A `hookline listen` WebSocket upgrade (an upgrade, not an Express route): its status, 101 if it was accepted. */
const listenUpgrade = (api: ApiProcess, key: string, forwardedFor: string) =>
  new Promise<number>((done, fail) => {
    const req = httpRequest({
      host: '127.0.0.1', port: api.port, path: '/v1/listen/sessions/wh_missing/connect',
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), authorization: `Bearer ${key}`, 'x-forwarded-for': forwardedFor },
    });
    req.on('response', (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      done(101);
    });
    req.on('error', fail);
    req.end();
  });

describe('TRUST_PROXY unset (the default): X-Forwarded-For is not believed', () => {
  const prefix = `hl-test-abuse-${randomBytes(4).toString('hex')}-default`;
  let api: ApiProcess;
  beforeAll(async () => {
    api = await startApi(prefix);
  });
  afterAll(() => api.kill());

  it('rotating X-Forwarded-For from loopback is throttled after 10 wrong platform tokens, and the right token still gets in', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await createAccount(api, wrongToken(i), `203.0.113.${i + 1}`)).status);
    expect(statuses).toEqual([...Array(10).fill(401), 429, 429]);
    const refused = await createAccount(api, wrongToken('z'), '203.0.113.200');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(800);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(900);
    // Counted under the connection's own address, whatever the header said.
    expect(await counterKeys(prefix, 'auth-fail:platform')).toEqual([`${prefix}:auth-fail:platform:127.0.0.1`]);
    // The same address, over its budget: the right token is accepted, again and again.
    for (let i = 0; i < 3; i++) expect((await createAccount(api, h.platformToken, `203.0.113.${50 + i}`)).status).toBe(201);
  });

  it('on /v1, wrong API keys are throttled after 10 while a valid key from the same address works', async () => {
    const account = (await (await createAccount(api, h.platformToken, '203.0.113.1')).json()) as { account: { id: string } };
    const created = await call(api, { path: `/internal/v1/accounts/${account.account.id}/api-keys`, method: 'POST', bearer: h.platformToken, body: { mode: 'test' } });
    const { api_key: { key } } = (await created.json()) as { api_key: { key: string } };
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await call(api, { path: '/v1/webhooks', bearer: wrongKey(i), headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } })).status);
    expect(statuses).toEqual([...Array(10).fill(401), 429, 429]);
    expect((await call(api, { path: '/v1/webhooks', bearer: key })).status).toBe(200);
    expect((await call(api, { path: '/v1/event-types', headers: { 'x-api-key': key } })).status).toBe(200);
    expect((await call(api, { path: '/v1/webhooks', headers: { 'x-api-key': wrongKey('z') } })).status).toBe(429);
  });

  it('sets the dashboard\'s sign-in and session cookies Secure (NODE_ENV=production), though the request came over plain http', async () => {
    const account = (await (await createAccount(api, h.platformToken, '203.0.113.1')).json()) as { account: { id: string } };
    const created = await call(api, { path: `/internal/v1/accounts/${account.account.id}/api-keys`, method: 'POST', bearer: h.platformToken, body: { mode: 'test' } });
    const { api_key: { key } } = (await created.json()) as { api_key: { key: string } };
    const page = await call(api, { path: '/dashboard' });
    const signInCookies = page.headers.getSetCookie();
    expect(signInCookies.length).toBeGreaterThan(0);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1];
    const signedIn = await fetch(`http://127.0.0.1:${api.port}/dashboard/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: signInCookies.map((c) => c.split(';')[0]).join('; ') },
      body: new URLSearchParams({ _csrf: csrf, api_key: key }).toString(),
    });
    expect(signedIn.status).toBe(303);
    const sessionCookies = signedIn.headers.getSetCookie().filter((c) => !/Expires=Thu, 01 Jan 1970/.test(c));
    expect(sessionCookies.some((c) => c.startsWith('hl_dash_sid='))).toBe(true);
    for (const cookie of [...signInCookies, ...sessionCookies]) expect(cookie).toMatch(/; Secure(;|$)/);
  });

  it('does not serve Swagger\'s demo page, while /docs and its own assets load', async () => {
    const demo = await call(api, { path: '/docs/assets/index.html' });
    expect(demo.status).toBe(404);
    expect(((await demo.json()) as { error: { code: string } }).error.code).toBe('RESOURCE_NOT_FOUND');
    expect((await call(api, { path: '/docs' })).status).toBe(200);
    expect((await call(api, { path: '/docs/assets/swagger-ui-bundle.js' })).status).toBe(200);
  });

  it('the admin password: 10 wrong ones, then the right one gets in', async () => {
    const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` });
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await call(api, { path: '/admin/queues/api/queues', headers: { ...basic(`guess ${i}`), 'x-forwarded-for': `192.0.2.${i + 1}` } })).status);
    expect(statuses).toEqual([...Array(10).fill(401), 429]);
    expect((await call(api, { path: '/admin/queues/api/queues', headers: basic(PASSWORD) })).status).toBe(200);
  });
});

describe('TRUST_PROXY naming the proxy (127.0.0.1)', () => {
  const prefix = `hl-test-abuse-${randomBytes(4).toString('hex')}-proxied`;
  let api: ApiProcess;
  beforeAll(async () => {
    api = await startApi(prefix, { TRUST_PROXY: '127.0.0.1' });
  });
  afterAll(() => api.kill());

  it('counts the forwarded client, every spelling of one address (and one IPv6 /64) as one budget', async () => {
    const spellings = ['198.51.100.30', '::ffff:198.51.100.30', '198.51.100.30:1234', '[::ffff:198.51.100.30]:80', '::ffff:c633:641e'];
    for (let i = 0; i < 10; i++) expect((await createAccount(api, wrongToken(i), spellings[i % spellings.length])).status).toBe(401);
    expect((await createAccount(api, wrongToken('a'), '198.51.100.30:9999')).status).toBe(429);
    for (let i = 0; i < 10; i++) expect((await createAccount(api, wrongToken(i), `2001:db8:5:6::${i + 1}`)).status).toBe(401);
    expect((await createAccount(api, wrongToken('b'), '2001:db8:5:6:ffff::1')).status).toBe(429);
    // Another client behind the same proxy has a budget of its own, and the right token always gets in.
    expect((await createAccount(api, wrongToken('c'), '198.51.100.31')).status).toBe(401);
    expect((await createAccount(api, h.platformToken, '198.51.100.30')).status).toBe(201);
    expect((await counterKeys(prefix, 'auth-fail:platform')).sort()).toEqual(
      [`${prefix}:auth-fail:platform:198.51.100.30`, `${prefix}:auth-fail:platform:198.51.100.31`, `${prefix}:auth-fail:platform:2001:db8:5:6::/64`].sort(),
    );
  });

  it('counts a wrong key on the `hookline listen` upgrade under the forwarded client too, as on any /v1 route', async () => {
    const account = (await (await createAccount(api, h.platformToken, '198.51.100.1')).json()) as { account: { id: string } };
    const created = await call(api, { path: `/internal/v1/accounts/${account.account.id}/api-keys`, method: 'POST', bearer: h.platformToken, body: { mode: 'test' } });
    const { api_key: { key } } = (await created.json()) as { api_key: { key: string } };
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push(await listenUpgrade(api, wrongKey(i), i % 2 ? '198.51.100.40' : '::ffff:198.51.100.40'));
    expect(statuses).toEqual([...Array(10).fill(401), 429]);
    // Another client behind the proxy is not refused for that one's failures (the proxy's own address is never counted).
    expect(await listenUpgrade(api, wrongKey('x'), '198.51.100.41')).toBe(401);
    // A valid key gets past the throttle, to the missing session's 404.
    expect(await listenUpgrade(api, key, '198.51.100.40')).toBe(404);
    expect((await counterKeys(prefix, 'auth-fail:api-key')).sort()).toEqual([`${prefix}:auth-fail:api-key:198.51.100.40`, `${prefix}:auth-fail:api-key:198.51.100.41`]);
  });
});
