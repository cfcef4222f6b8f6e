import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TEST_REDIS_URL } from '../support/api-harness';
import { canListen } from '../support/local-services';
import { commandOf, killTree, startNpmStart, stillRunning, type NpmStart } from '../support/npm-start';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { waitUntil } from '../support/wait-until';

// `npm start` itself (npm, its script, the node process and the redis-server it
// starts): production uses only what it is given and prints no secret; one data
// folder serves one start; Ctrl-C, SIGINT and SIGTERM end everything within 3 s
// with no error lines; development listens on loopback only.

const STOP_WITHIN_MS = 3_000;

const key = () => randomBytes(32).toString('base64');
const call = async (base: string, method: string, path: string, auth: string, body?: unknown) => {
  const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json().catch((): any => null) };
};

/** Whether something accepts TCP connections at host:port now. */
const answers = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1_000, () => (socket.destroy(), resolve(false)));
    socket.once('connect', () => (socket.end(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

/**
 * Sends `signal` — to the process npm started for the script (`started`), to
 * npm itself, or to the whole process group as a terminal's Ctrl-C does — and
 * checks that all of it ends in time.
 */
async function expectStopsWithin(app: NpmStart, signal: NodeJS.Signals, target: 'started' | 'npm' | 'group') {
  const tree = app.processTree();
  const started = tree.find((pid) => /main\.ts$/.test(commandOf(pid)))!;
  expect(tree.map(commandOf)).toEqual(expect.arrayContaining([expect.stringMatching(/^npm/), expect.stringMatching(/main\.ts$/), expect.stringMatching(/^redis-server/)]));
  const sent = Date.now();
  process.kill(target === 'group' ? -app.child.pid! : target === 'npm' ? app.child.pid! : started, signal);
  try {
    await waitUntil(() => stillRunning(tree).length === 0, `every process of npm start to end after ${signal}`, { timeoutMs: STOP_WITHIN_MS, intervalMs: 20 });
  } catch (err) {
    throw new Error(`${(err as Error).message}; still running: ${stillRunning(tree).map(commandOf).join(' | ')}\n${app.output()}`);
  }
  expect(Date.now() - sent).toBeLessThanOrEqual(STOP_WITHIN_MS);
  expect(await canListen(app.port)).toBe(true);
  expect(await canListen(app.redisPort)).toBe(true);
  const after = app.output().slice(app.output().indexOf('Press Ctrl-C to stop.'));
  expect(after).not.toMatch(/ECONNREFUSED|"level":"error"|Error:/);
}

describe('npm start in development', () => {
  let dataDir: string;
  let app: NpmStart | undefined;
  let leftovers: number[] = [];

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'hookline-npm-start-'));
  });

  afterEach(() => {
    for (const pid of stillRunning(leftovers)) process.kill(pid, 'SIGKILL');
    killTree(app);
    app = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });

  const start = async (env: Record<string, string | undefined> = {}) => {
    app = await startNpmStart({ HOOKLINE_DATA_DIR: dataDir, ...env });
    leftovers = app.processTree();
    return app;
  };

  it('refuses a second start on the same data folder, starting nothing; Ctrl-C then ends everything within 3 s', async () => {
    const first = await start();
    const lock = readFileSync(join(dataDir, 'hookline.lock'), 'utf8').trim();
    expect(commandOf(Number(lock))).toMatch(/main\.ts$/);

    const second = await startNpmStart({ HOOKLINE_DATA_DIR: dataDir }, { waitFor: 'hookline: could not start' });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`hookline: could not start: another Hookline (pid ${lock}) is using the data folder ${dataDir}; stop it first, or set HOOKLINE_DATA_DIR to another folder`);
    expect(second.output()).not.toMatch(/PGlite|redis-server|Platform token/);
    expect(await canListen(second.redisPort)).toBe(true);
    expect(readFileSync(join(dataDir, 'hookline.lock'), 'utf8').trim()).toBe(lock);

    await expectStopsWithin(first, 'SIGINT', 'group');
    expect(existsSync(join(dataDir, 'hookline.lock'))).toBe(false);
  }, 240_000);

  it('takes over the lock of a start that died, and ends everything within 3 s of SIGINT to the process npm started', async () => {
    // A pid that cannot be alive: the kernel's pid_max is at most 2^22.
    writeFileSync(join(dataDir, 'hookline.lock'), '4194304\n');
    const app = await start();
    expect(readFileSync(join(dataDir, 'hookline.lock'), 'utf8').trim()).not.toBe('4194304');
    await expectStopsWithin(app, 'SIGINT', 'started');
  }, 240_000);

  it('ends everything within 3 s of SIGTERM to the process npm started', async () => {
    await expectStopsWithin(await start(), 'SIGTERM', 'started');
  }, 240_000);

  it('listens on 127.0.0.1 only by default, and says how to change it', async () => {
    const app = await start();
    expect(app.output()).toContain(`Hookline is running at http://127.0.0.1:${app.port}`);
    expect(app.output()).toContain('Listening on:    127.0.0.1 only, not reachable from other machines (set HOST=0.0.0.0 to listen on every interface)');
    expect(await answers('127.0.0.1', app.port)).toBe(true);
    const external = Object.values(networkInterfaces()).flat().filter((a) => a && !a.internal && a.family === 'IPv4').map((a) => a!.address);
    if (external.length) {
      for (const address of external) expect(await answers(address, app.port)).toBe(false);
    } else {
      // No other address on this machine: the bound address is what keeps it local.
      expect(await canListen(app.port)).toBe(false);
      const ss = readFileSync('/proc/net/tcp', 'utf8');
      const hexPort = app.port.toString(16).toUpperCase().padStart(4, '0');
      expect(ss).toContain(`0100007F:${hexPort}`);
      expect(ss).not.toContain(`00000000:${hexPort}`);
    }
    await app.stop();
  }, 240_000);
});

describe('npm start with NODE_ENV=production', () => {
  const token = `prod_${randomBytes(24).toString('hex')}`;
  const encryptionKey = key();
  let dataDir: string;

  beforeEach(() => {
    // Production must not even create it.
    dataDir = join(mkdtempSync(join(tmpdir(), 'hookline-npm-start-prod-')), 'data');
  });

  afterEach(() => rmSync(dirname(dataDir), { recursive: true, force: true }));

  it('stops with one line when DATABASE_URL is missing, starting no database and no Redis and printing no secret', async () => {
    const app = await startNpmStart({ NODE_ENV: 'production', HOOKLINE_DATA_DIR: dataDir, PLATFORM_TOKEN: token, ENCRYPTION_KEY: encryptionKey }, { waitFor: 'invalid configuration' });
    expect(await app.exited).toBe(1);
    expect(app.output()).toContain('hookline: invalid configuration: DATABASE_URL must be set when NODE_ENV=production\n');
    expect(app.output()).not.toContain(token);
    expect(app.output()).not.toContain(encryptionKey);
    expect(existsSync(dataDir)).toBe(false);
    expect(await canListen(app.redisPort)).toBe(true);
  }, 120_000);

  it('stops with one line when no Redis is named, rather than use whatever answers on 6379', async () => {
    const app = await startNpmStart(
      { NODE_ENV: 'production', HOOKLINE_DATA_DIR: dataDir, DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/postgres', REDIS_URL: undefined, PLATFORM_TOKEN: token, ENCRYPTION_KEY: encryptionKey },
      { waitFor: 'invalid configuration' },
    );
    expect(await app.exited).toBe(1);
    expect(app.output()).toContain('hookline: invalid configuration: REDIS_URL (or REDIS_CLUSTER_NODES, or REDIS_SENTINELS) must be set when NODE_ENV=production\n');
    expect(existsSync(dataDir)).toBe(false);
  }, 120_000);

  describe('given everything', () => {
    let database: TestDatabase;
    let app: NpmStart | undefined;

    beforeAll(async () => {
      database = await createTestDatabase({ poolSize: 1 });
    });

    afterAll(async () => {
      killTree(app);
      await database?.drop();
    });

    it('uses only what it is given, prints no secret, refuses private targets naming the setting, and labels metrics app="standalone"', async () => {
      app = await startNpmStart({ NODE_ENV: 'production', HOOKLINE_DATA_DIR: dataDir, DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, PLATFORM_TOKEN: token, ENCRYPTION_KEY: encryptionKey });
      const out = app.output();
      expect(out).toContain('Platform token:  from PLATFORM_TOKEN (not printed)');
      expect(out).toContain('Bearer $PLATFORM_TOKEN');
      expect(out).not.toContain(token);
      expect(out).not.toContain(encryptionKey);
      expect(out).not.toMatch(/PGlite|started redis-server|Demo account|Sign in:|hk_test_/);
      expect(out).toContain('Admin view:      off');
      expect(out).toContain('Private targets: refused');
      expect(out).toContain('Listening on:    every interface (HOST=0.0.0.0)');
      expect(app.processTree().map(commandOf)).not.toEqual(expect.arrayContaining([expect.stringMatching(/redis-server/)]));
      expect(existsSync(dataDir)).toBe(false);

      const account = await call(app.base, 'POST', '/internal/v1/accounts', token, { name: 'Prod', plan: 'pro' });
      expect(account.status).toBe(201);
      const apiKey = await call(app.base, 'POST', `/internal/v1/accounts/${account.body.account.id}/api-keys`, token, { mode: 'test' });
      const refused = await call(app.base, 'POST', '/v1/webhooks', apiKey.body.api_key.key, { url: 'http://127.0.0.1:9/hooks', events: ['quota.warning'] });
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toContain('ALLOW_PRIVATE_TARGETS=true allows private ones');

      const metrics = await (await fetch(`${app.base}/metrics`)).text();
      expect(metrics).toMatch(/^hookline_deliveries_created_total\{app="standalone"\} /m);
      expect(metrics).not.toContain('app="hookline"');
      expect(readFileSync(join(__dirname, '../../docs/operations.md'), 'utf8')).toContain('`standalone` under `npm start`');

      expect(await app.stop('SIGTERM')).toBe(0);
      expect(existsSync(dataDir)).toBe(false);
    }, 240_000);
  });
});
