import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { startReceiver, type Receiver } from '../support/receiver';
import { verifyCallback } from '../support/verifier';
import { uniquePrefix } from '../support/api-harness';
import { freePort } from '../support/local-services';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { startRedisCluster, type RedisCluster } from '../support/redis-topology';
import { waitUntil } from '../support/wait-until';

// The three entry points (API, worker, `npm start`) as processes: a bad Redis
// topology stops each at start with one line, and `npm start` runs the whole
// service on a Redis Cluster named by REDIS_CLUSTER_NODES.

const ROOT = resolve(__dirname, '../..');
const TSX = join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const ENTRIES = { api: 'apps/api/src/main.ts', worker: 'apps/worker/src/main.ts', standalone: 'apps/standalone/src/main.ts' } as const;

const baseEnv = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'test' });

describe('a bad Redis topology stops every process at start, with one line', () => {
  it.each([
    [{ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, 'hookline: invalid configuration: REDIS_CLUSTER_NODES: set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS (got REDIS_URL and REDIS_CLUSTER_NODES)'],
    [{ REDIS_SENTINELS: '127.0.0.1:26379' }, 'hookline: invalid configuration: REDIS_SENTINEL_MASTER: must be set with REDIS_SENTINELS (the name of the master the sentinels watch)'],
    [{ DELIVERY_QUEUE_SHARDS: '300' }, 'hookline: invalid configuration: DELIVERY_QUEUE_SHARDS: must be an integer from 1 to 256'],
  ])('%o', (env, line) => {
    for (const entry of Object.values(ENTRIES)) {
      const result = spawnSync(process.execPath, [TSX, entry], { cwd: ROOT, env: { ...baseEnv(), ...env }, encoding: 'utf8', timeout: 30_000 });
      expect({ entry, status: result.status, stderr: result.stderr }).toEqual({ entry, status: 1, stderr: `${line}\n` });
    }
  });
});

describe('npm start on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let database: TestDatabase;
  let receiver: Receiver;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    database = await createTestDatabase();
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await database?.drop();
    await cluster?.stop();
  });

  it('serves the API and delivers a signed callback through the cluster', async () => {
    const port = await freePort();
    const token = `pt_${randomBytes(24).toString('hex')}`;
    const nodes = cluster.target.kind === 'cluster' ? cluster.target.nodes.map((n) => `${n.host}:${n.port}`).join(',') : '';
    const child = spawn(process.execPath, [TSX, ENTRIES.standalone], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...baseEnv(),
        PORT: String(port),
        DATABASE_URL: database.url,
        REDIS_CLUSTER_NODES: nodes,
        PLATFORM_TOKEN: token,
        ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        ALLOW_PRIVATE_TARGETS: 'true',
        QUEUE_PREFIX: uniquePrefix('standalone-cluster'),
        LOG_LEVEL: 'warn',
      },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    try {
      await waitUntil(() => output.includes('Press Ctrl-C to stop.') || child.exitCode !== null, 'npm start ready or gone', { timeoutMs: 60_000, intervalMs: 200 })
        .catch(() => undefined);
      if (!output.includes('Press Ctrl-C to stop.')) throw new Error(`npm start did not start:\n${output}`);
      expect(output).toContain(`hookline: using Redis Cluster ${nodes}`);
      expect(output).not.toContain('started redis-server');
      const base = `http://127.0.0.1:${port}`;
      const call = async (path: string, auth: string, body: unknown) => {
        const res = await fetch(base + path, { method: 'POST', headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: res.status, body: await res.json() };
      };
      const account = await call('/internal/v1/accounts', token, { name: 'Cluster', plan: 'pro' });
      const key = await call(`/internal/v1/accounts/${account.body.account.id}/api-keys`, token, { mode: 'test' });
      const hook = await call('/v1/webhooks', key.body.api_key.key, { url: receiver.url, events: ['quota.warning'] });
      expect(hook.status).toBe(201);
      const event = await call('/internal/v1/events', token, { account_id: account.body.account.id, event: 'quota.warning', data: { usage: 80, limit: 100 } });
      expect(event.status).toBe(202);
      const [cb] = await receiver.waitFor(1, 20_000);
      expect(verifyCallback(hook.body.webhook.signing_secret, cb.body, cb.headers)).toEqual({ standard: true, brand: true });
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
