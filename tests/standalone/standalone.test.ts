import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startReceiver, type Receiver } from '../support/receiver';
import { verifyCallback } from '../support/verifier';
import { uniquePrefix } from '../support/api-harness';
import { freePort } from '../support/local-services';

// `npm start`'s process on the embedded PostgreSQL (PGlite): migrations, API,
// worker and a redis-server of its own (nothing answers at its REDIS_URL), driven
// over HTTP like an integrator would; one signed callback must arrive.

const ROOT = resolve(__dirname, '../..');

describe('npm start (standalone, PGlite, own redis-server)', () => {
  let child: ChildProcess;
  let output = '';
  let dataDir: string;
  let receiver: Receiver;
  let base: string;
  const token = `standalone_${Date.now()}_token`;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'hookline-standalone-'));
    receiver = await startReceiver();
    const [port, redisPort] = [await freePort(), await freePort()];
    base = `http://127.0.0.1:${port}`;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: String(port),
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      HOOKLINE_DATA_DIR: dataDir,
      PLATFORM_TOKEN: token,
      ALLOW_PRIVATE_TARGETS: 'true',
      QUEUE_PREFIX: uniquePrefix('standalone'),
      LOG_LEVEL: 'warn',
    };
    child = spawn(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'apps/standalone/src/main.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const deadline = Date.now() + 90_000;
    while (!output.includes('Hookline is running at')) {
      if (child.exitCode !== null) throw new Error(`standalone exited early:\n${output}`);
      if (Date.now() > deadline) throw new Error(`standalone did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await receiver?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, auth: string, body?: unknown) => {
    const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json().catch(() => null)) as any };
  };

  it('prints the URL and platform token, keeps data under the data dir, and delivers a signed callback', async () => {
    expect(output).toContain(`Platform token:  ${token}`);
    expect(output).toContain('started redis-server for this process');
    expect(existsSync(join(dataDir, 'pglite'))).toBe(true);
    expect(statSync(join(dataDir, 'secrets.json')).mode & 0o077).toBe(0);

    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const account = await call('POST', '/internal/v1/accounts', token, { name: 'Standalone' });
    expect(account.status).toBe(201);
    const key = await call('POST', `/internal/v1/accounts/${account.body.account.id}/api-keys`, token, { mode: 'test' });
    const webhook = await call('POST', '/v1/webhooks', key.body.api_key.key, { url: receiver.url, events: ['quota.warning'] });
    expect(webhook.status).toBe(201);
    const event = await call('POST', '/internal/v1/events', token, { account_id: account.body.account.id, event: 'quota.warning', data: { used: 80 } });
    expect(event.status).toBe(202);
    expect(event.body.event.deliveries).toBe(1);

    const [callback] = await receiver.waitFor(1, 30_000);
    expect(verifyCallback(webhook.body.webhook.signing_secret, callback.body, callback.headers)).toEqual({ standard: true, brand: true });
    expect(JSON.parse(callback.body)).toMatchObject({ id: event.body.event.id, event: 'quota.warning', data: { used: 80 } });
  }, 60_000);

  it('stops cleanly on SIGTERM, taking its redis-server with it', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(join(dataDir, 'redis', 'appendonlydir')) || existsSync(join(dataDir, 'redis', 'appendonly.aof'))).toBe(true);
  }, 30_000);
});
