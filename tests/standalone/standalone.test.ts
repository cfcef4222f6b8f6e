import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startReceiver, type Receiver } from '../support/receiver';
import { verifyCallback } from '../support/verifier';
import { startNpmStart, type NpmStart } from '../support/npm-start';

// `npm start` on the embedded PostgreSQL (PGlite): migrations, API, worker and a
// redis-server of its own (nothing answers at its REDIS_URL), driven over HTTP
// like an integrator would; one signed callback must arrive, at a receiver on
// this machine (development allows private targets without being told). A first
// start also makes a demo account, a one-time dashboard sign-in link and an
// admin password; a later start on the same data folder reuses the account;
// NODE_ENV=production makes none of them.

type Standalone = NpmStart;
const startStandalone = startNpmStart;

const call = async (base: string, method: string, path: string, auth: string, body?: unknown) => {
  const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json().catch((): any => null) };
};

/** The value printed after `label:` on its line of the start-up banner. */
const printed = (output: string, label: string): string | undefined => new RegExp(`^  ${label}:\\s+(\\S+)`, 'm').exec(output)?.[1];

/** Follows a printed sign-in link like a browser: open it, press the button; resolves to the Webhooks page. */
async function followSignInLink(base: string, link: string) {
  const jar = new Map<string, string>();
  const cookie = () => [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
  const keep = (res: Response) => {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      if (pair.slice(eq + 1)) jar.set(pair.slice(0, eq), pair.slice(eq + 1));
      else jar.delete(pair.slice(0, eq));
    }
  };
  const confirm = await fetch(link, { redirect: 'manual' });
  keep(confirm);
  const form = await confirm.text();
  if (confirm.status !== 200) return { status: confirm.status, page: form };
  const value = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(form)![1];
  const post = await fetch(`${base}/dashboard/sign-in/link`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: value('_csrf'), token: value('token') }).toString(),
  });
  keep(post);
  if (post.status !== 303) return { status: post.status, page: await post.text() };
  const page = await fetch(new URL(post.headers.get('location')!, base), { headers: { cookie: cookie() }, redirect: 'manual' });
  return { status: page.status, page: await page.text() };
}

const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` });

describe('npm start (standalone, PGlite, own redis-server)', () => {
  let app: Standalone;
  let dataDir: string;
  let receiver: Receiver;
  const token = `standalone_${Date.now()}_token`;
  let first: { accountId: string; key: string; adminPassword: string };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'hookline-standalone-'));
    receiver = await startReceiver();
    app = await startStandalone({ HOOKLINE_DATA_DIR: dataDir, PLATFORM_TOKEN: token });
  }, 120_000);

  afterAll(async () => {
    if (app?.child.exitCode === null) app.child.kill('SIGKILL');
    await receiver?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints the URL and platform token, keeps data under the data dir, and delivers a signed callback', async () => {
    const { base } = app;
    expect(app.output()).toContain(`Platform token:  ${token}`);
    expect(app.output()).toContain('started redis-server for this process');
    expect(app.output()).toContain('Private targets: allowed: webhooks may call this machine and the local network (ALLOW_PRIVATE_TARGETS=false refuses them)');
    expect(existsSync(join(dataDir, 'pglite'))).toBe(true);
    expect(statSync(join(dataDir, 'secrets.json')).mode & 0o077).toBe(0);

    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const account = await call(base, 'POST', '/internal/v1/accounts', token, { name: 'Standalone' });
    expect(account.status).toBe(201);
    const key = await call(base, 'POST', `/internal/v1/accounts/${account.body.account.id}/api-keys`, token, { mode: 'test' });
    const webhook = await call(base, 'POST', '/v1/webhooks', key.body.api_key.key, { url: receiver.url, events: ['quota.warning'] });
    expect(webhook.status).toBe(201);
    const event = await call(base, 'POST', '/internal/v1/events', token, { account_id: account.body.account.id, event: 'quota.warning', data: { usage: 80, limit: 100 } });
    expect(event.status).toBe(202);
    expect(event.body.event.deliveries).toBe(1);

    const [callback] = await receiver.waitFor(1, 30_000);
    expect(verifyCallback(webhook.body.webhook.signing_secret, callback.body, callback.headers)).toEqual({ standard: true, brand: true });
    expect(JSON.parse(callback.body)).toMatchObject({ id: event.body.event.id, event: 'quota.warning', data: { usage: 80, limit: 100 } });
  }, 60_000);

  it('creates a demo account on the first start and prints its test key, a one-time sign-in link and an admin password', async () => {
    const { base } = app;
    const out = app.output();
    const accountId = printed(out, 'Demo account')!;
    const key = printed(out, 'Demo API key')!;
    const link = printed(out, 'Sign in')!;
    expect(accountId).toMatch(/^acct_/);
    expect(out).toContain('(created now: pro plan)');
    expect(key).toMatch(/^hk_test_/);
    expect(out).toContain('shown this once: only its hash is stored');
    expect(link).toMatch(new RegExp(`^${base}/dashboard/sign-in/link\\?token=[A-Za-z0-9_-]{43}$`));
    expect(JSON.parse(readFileSync(join(dataDir, 'demo-account.json'), 'utf8'))).toEqual({ account_id: accountId, api_key_id: expect.stringMatching(/^key_/) });
    expect(readFileSync(join(dataDir, 'demo-account.json'), 'utf8')).not.toContain(key);

    // The key works, on a pro account, in test mode (http:// webhooks allowed).
    const created = await call(base, 'POST', '/v1/webhooks', key, { url: receiver.url, events: ['quota.warning'] });
    expect(created.status).toBe(201);

    // The link opens the dashboard, signed in; once.
    const signedIn = await followSignInLink(base, link);
    expect(signedIn.status).toBe(200);
    expect(signedIn.page).toContain(receiver.url);
    expect(signedIn.page).toContain(key.slice(0, 12));
    expect((await followSignInLink(base, link)).status).toBe(410);

    // The admin view is on, behind the generated password, which is kept in secrets.json.
    const adminPassword = /^ {2}Admin view:\s+\S+\/admin\/queues\s+\(user admin, password (\S+)\s+\(generated, kept in /m.exec(out)?.[1];
    expect(adminPassword).toBeDefined();
    expect(JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')).ADMIN_PASSWORD).toBe(adminPassword);
    expect((await fetch(`${base}/admin/queues`, { headers: basic(adminPassword!) })).status).toBe(200);
    expect((await fetch(`${base}/admin/queues`, { headers: basic('wrong-password') })).status).toBe(401);
    first = { accountId, key, adminPassword: adminPassword! };
  }, 60_000);

  it('stops cleanly on SIGTERM, taking its redis-server with it', async () => {
    expect(await app.stop()).toBe(0);
    expect(existsSync(join(dataDir, 'redis', 'appendonlydir')) || existsSync(join(dataDir, 'redis', 'appendonly.aof'))).toBe(true);
  }, 30_000);

  it('on a later start with the same data folder reuses the demo account: no key printed, a new link, the same admin password', async () => {
    app = await startStandalone({ HOOKLINE_DATA_DIR: dataDir, PLATFORM_TOKEN: token });
    const { base } = app;
    const out = app.output();
    expect(printed(out, 'Demo account')).toBe(first.accountId);
    expect(out).not.toContain('(created now');
    expect(out).not.toContain(first.key);
    expect(out).not.toMatch(/hk_test_[A-Za-z0-9]{20,}/);
    expect(out).toContain(`Demo API key:    ${first.key.slice(0, 12)}… (`);
    expect(out).toContain(`/internal/v1/accounts/${first.accountId}/api-keys`);
    expect(out).toContain(`password ${first.adminPassword}`);

    // The same account: the first start's key still works, and sees the webhook it made.
    const list = await call(base, 'GET', '/v1/webhooks', first.key);
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(1);
    const signedIn = await followSignInLink(base, printed(out, 'Sign in')!);
    expect(signedIn.status).toBe(200);
    expect(signedIn.page).toContain(receiver.url);
    expect(await app.stop()).toBe(0);
  }, 120_000);
});

describe('npm start with NODE_ENV=production', () => {
  // More in npm-start.test.ts: production uses only what it is given.
  it('refuses to start without its database, Redis, PLATFORM_TOKEN and ENCRYPTION_KEY, generating nothing', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hookline-standalone-prod-'));
    try {
      const app = await startStandalone({ NODE_ENV: 'production', HOOKLINE_DATA_DIR: dataDir, REDIS_URL: undefined }, { waitFor: 'invalid configuration' });
      expect(await app.exited).toBe(1);
      expect(app.output()).toContain('DATABASE_URL, REDIS_URL (or REDIS_CLUSTER_NODES, or REDIS_SENTINELS), PLATFORM_TOKEN, ENCRYPTION_KEY must be set when NODE_ENV=production');
      expect(existsSync(join(dataDir, 'secrets.json'))).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
