import { networkInterfaces } from 'node:os';
import { freePort } from '../support/local-services';
import { startTcpProxy } from '../support/tcp-proxy';
import { waitUntil } from '../support/wait-until';
import { spawnApiProcess, spawnWorkerProcess, workerProcessEnv, type WorkerProcess } from '../support/worker-harness';
import { deliveryReaches, onlyDelivery, startStack, type Stack } from './stack';

// The worker as its own process (`npm run start:worker` = tsx apps/worker/src/main.ts):
// a SIGKILL mid-delivery loses nothing (another process takes the stalled job
// over), a SIGTERM lets the in-flight delivery finish, bad configuration is
// refused with one line, and a worker (or API) started while PostgreSQL is
// unreachable waits for it instead of exiting.

describe('worker process', () => {
  let stack: Stack;
  const running: WorkerProcess[] = [];

  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
    await stack?.close();
  });
  beforeEach(() => stack.freshAccount());
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill('SIGTERM')));
  });

  function env(extra: Record<string, string> = {}): Record<string, string> {
    return workerProcessEnv(stack.api, {
      RETRY_SCHEDULE: '300ms,600ms',
      DELIVERY_TIMEOUT: '20s',
      // A dead worker's job is free for others after 2 s; survivors look every second.
      WORKER_LOCK_DURATION: '2s',
      WORKER_STALLED_INTERVAL: '1s',
      // Keep the relay out of it: this is the stalled-job path.
      RELAY_GRACE: '10m',
      ...extra,
    });
  }

  async function start(extra?: Record<string, string>): Promise<WorkerProcess> {
    const p = await spawnWorkerProcess(env(extra));
    running.push(p);
    return p;
  }

  it('a worker SIGKILLed mid-delivery loses nothing: the next worker process delivers it', async () => {
    // The first request never gets an answer; the retry after the crash does.
    const r = await stack.receiver((_req, i) => (i === 0 ? { status: 200, hang: true } : { status: 200, body: 'second time' }));
    const wh = await stack.createWebhook({ url: r.url });
    const first = await start();
    await stack.publish('quota.warning', { usage: 80 }, 1);
    await r.waitFor(1, 15_000);
    const killed = await first.kill('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    const delivery = await onlyDelivery(stack, wh.id);
    expect(delivery.status).toBe('pending');

    await start();
    const [lost, recovered] = await r.waitFor(2, 20_000);
    expect(recovered.headers['x-perfectparser-delivery']).toBe(delivery.id);
    expect(lost.headers['x-perfectparser-delivery']).toBe(delivery.id);
    expect(recovered.body).toBe(lost.body);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'succeeded');
    // The killed process never recorded its attempt; the one that completed is attempt 1.
    expect(attempts).toEqual([expect.objectContaining({ attempt_number: 1, status: 'succeeded', response_body: 'second time' })]);
  });

  it('SIGTERM lets the in-flight delivery finish, then exits 0', async () => {
    const r = await stack.receiver({ status: 200, delayMs: 1_500, body: 'slow ok' });
    const wh = await stack.createWebhook({ url: r.url });
    const p = await start();
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(1, 15_000);
    const exit = await p.kill('SIGTERM');
    expect(exit.code).toBe(0);
    const delivery = await onlyDelivery(stack, wh.id);
    const found = await stack.delivery(delivery.id);
    expect(found.delivery.status).toBe('succeeded');
    expect(found.attempts).toEqual([expect.objectContaining({ attempt_number: 1, response_body: 'slow ok' })]);
    expect(p.output.some((line) => line.includes('worker shutting down'))).toBe(true);
  });

  /** An IPv4 address of this machine other than loopback, if it has one. */
  const outsideAddress = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

  it('serves /healthz, /readyz and /metrics on WORKER_HEALTH_PORT, on loopback only by default (WORKER_HEALTH_HOST)', async () => {
    const port = await freePort();
    await start({ WORKER_HEALTH_PORT: String(port) });
    const base = `http://127.0.0.1:${port}`;
    if (outsideAddress) await expect(fetch(`http://${outsideAddress}:${port}/healthz`)).rejects.toThrow();
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { postgres: 'up', redis: 'up' } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('hookline_attempts_total');
    expect(metrics).toContain('hookline_queue_jobs');
  });

  it('WORKER_HEALTH_HOST=0.0.0.0 (as the image sets) serves the machine\'s other addresses too', async () => {
    const port = await freePort();
    await start({ WORKER_HEALTH_PORT: String(port), WORKER_HEALTH_HOST: '0.0.0.0' });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    if (outsideAddress) expect((await fetch(`http://${outsideAddress}:${port}/healthz`)).status).toBe(200);
  });

  it('started while PostgreSQL is unreachable, waits for it (one line each way) instead of exiting, then delivers', async () => {
    const { hostname, port } = new URL(stack.api.database.url);
    const proxy = await startTcpProxy({ host: hostname, port: Number(port || 5432) });
    try {
      proxy.cut();
      const r = await stack.receiver();
      const wh = await stack.createWebhook({ url: r.url });
      const starting = spawnWorkerProcess(env({ DATABASE_URL: proxy.through(stack.api.database.url) }));
      // It keeps trying (refused connections pile up) and has not exited.
      starting.catch(() => undefined); // awaited below; an early exit must fail the test there, not as an unhandled rejection
      await waitUntil(() => proxy.refused() >= 3, 'the worker retrying PostgreSQL', { timeoutMs: 20_000 });
      proxy.restore();
      const p = await starting;
      running.push(p);
      const waits = p.output.filter((line) => line.includes('PostgreSQL unreachable at start'));
      expect(waits).toHaveLength(1);
      expect(JSON.parse(waits[0])).toMatchObject({ level: 'warn', message: expect.stringContaining('waits for it and starts when it answers') });
      const back = p.output.filter((line) => line.includes('PostgreSQL answered; starting'));
      expect(back).toHaveLength(1);
      expect(JSON.parse(back[0]).waited_ms).toBeGreaterThan(0);
      expect(p.output.filter((line) => /"level":"error"/.test(line))).toEqual([]);

      await stack.publish('quota.warning', { usage: 1 }, 1);
      const delivery = await onlyDelivery(stack, wh.id);
      await deliveryReaches(stack, delivery.id, 'succeeded', 15_000);
      expect(r.received).toHaveLength(1);
    } finally {
      proxy.restore();
      await proxy.close();
    }
  });

  it('the API, started while PostgreSQL is unreachable, waits for it too and then answers', async () => {
    const { hostname, port } = new URL(stack.api.database.url);
    const proxy = await startTcpProxy({ host: hostname, port: Number(port || 5432) });
    try {
      proxy.cut();
      const starting = spawnApiProcess(env({ DATABASE_URL: proxy.through(stack.api.database.url), PLATFORM_TOKEN: 'p'.repeat(40) }));
      starting.catch(() => undefined); // awaited below
      await waitUntil(() => proxy.refused() >= 3, 'the API retrying PostgreSQL', { timeoutMs: 20_000 });
      proxy.restore();
      const api = await starting;
      running.push(api);
      expect(api.output.filter((line) => line.includes('PostgreSQL unreachable at start: the API waits for it'))).toHaveLength(1);
      expect(api.output.filter((line) => line.includes('PostgreSQL answered; starting'))).toHaveLength(1);
      expect((await fetch(`http://127.0.0.1:${api.port}/readyz`)).status).toBe(200);
    } finally {
      proxy.restore();
      await proxy.close();
    }
  });

  it('a wrong database is not an outage: refused at once, with one line', async () => {
    const url = new URL(stack.api.database.url);
    url.pathname = '/hookline_no_such_database';
    const failure = await spawnWorkerProcess(env({ DATABASE_URL: url.toString() })).then(
      () => null,
      (err: Error) => err.message,
    );
    expect(failure).toMatch(/hookline: the worker could not start: .*hookline_no_such_database/);
    expect(failure).not.toContain('PostgreSQL unreachable at start');
  });

  it('refuses to start without DATABASE_URL, with one clear line', async () => {
    const failure = await spawnWorkerProcess({ REDIS_URL: 'redis://127.0.0.1:6379', ENCRYPTION_KEY: stack.api.encryptionKey.toString('base64') }).then(
      () => null,
      (err: Error) => err.message,
    );
    expect(failure).toContain('the worker needs DATABASE_URL (PostgreSQL); for a single-process dev setup use npm start');
  });

  it('refuses an invalid setting, naming the variable', async () => {
    const failure = await spawnWorkerProcess(env({ RETRY_SCHEDULE: 'soon' })).then(
      () => null,
      (err: Error) => err.message,
    );
    expect(failure).toContain('RETRY_SCHEDULE');
  });
});
