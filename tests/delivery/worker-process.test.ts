import { networkInterfaces } from 'node:os';
import { freePort } from '../support/local-services';
import { spawnWorkerProcess, workerProcessEnv, type WorkerProcess } from '../support/worker-harness';
import { deliveryReaches, onlyDelivery, startStack, type Stack } from './stack';

// The worker as its own process (`npm run start:worker` = tsx apps/worker/src/main.ts):
// a SIGKILL mid-delivery loses nothing (another process takes the stalled job
// over), a SIGTERM lets the in-flight delivery finish, bad configuration is
// refused with one line.

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
