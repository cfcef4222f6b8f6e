import { installationKey } from '@hookline/queue';
import { readInstallationId } from '@hookline/db';
import { startSingleRedis, redisCli, type SingleRedis } from '../support/redis-topology';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { waitUntil } from '../support/wait-until';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { eventually, onlyDelivery, startStack, type Stack } from '../delivery/stack';

// A Redis restarted empty is refilled at once: the worker that finds the
// queue prefix's mark gone (Redis lost its data) queues every waiting
// delivery again, instead of each one waiting RELAY_GRACE (its 30 s default
// here) past its turn for the relay's scan. Real API, worker, receiver and a
// redis-server of the test's own.

describe('a redis-server restarted empty, RELAY_GRACE at its 30 s default', () => {
  let redis: SingleRedis;
  let stack: Stack;
  beforeAll(async () => {
    redis = await startSingleRedis();
    stack = await startStack({ redis: redis.target, worker: { config: { RELAY_GRACE: 30_000 } } });
  });
  afterAll(async () => {
    await stack?.close();
    await redis?.stop();
  });

  it('a waiting delivery whose job the restart lost arrives within 10 s, once', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url });
    const worker = stack.worker.delivery.worker;
    // The delivery waits in Redis, its job queued but not taken, when Redis loses everything.
    await worker.pause();
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    expect(await stack.api.queue.getJobState(delivery.id)).toBe('prioritized');
    await redis.restartEmpty();
    const restartedAt = Date.now();
    await worker.resume();

    const [callback] = await r.waitFor(1, 10_000);
    expect(callback.headers['x-perfectparser-delivery']).toBe(delivery.id);
    expect(callback.receivedAt - restartedAt).toBeLessThan(10_000);
    await eventually(async () => (await stack.delivery(delivery.id)).delivery.status === 'succeeded', 10_000, 'delivery succeeded');
    expect(r.received).toHaveLength(1);
    // The mark is back, and the refill was the worker's doing (not the relay's scan).
    const id = await readInstallationId(stack.api.database.db.sql);
    expect(await redisCli(redis.port, 'hget', installationKey(stack.api.prefix), 'id')).toBe(id);
    expect(stack.worker.logs.filter((l) => /Redis lost its data/.test(l.message)).length).toBeGreaterThanOrEqual(1);
  });
});

// Redis back empty while PostgreSQL is still down (the chaos benchmark's
// "everything at once": the wipe lands inside a PostgreSQL outage): the refill
// cannot read the waiting deliveries yet, and must not leave them to the
// relay's scan (RELAY_GRACE late, 10 minutes here) but queue them the moment
// PostgreSQL answers. The worker reaches PostgreSQL through a TCP proxy the
// test cuts; the API keeps its own connection.
describe('a redis-server restarted empty while PostgreSQL is unreachable', () => {
  let redis: SingleRedis;
  let stack: Stack;
  let proxy: TcpProxy;
  let worker: WorkerHarness;
  beforeAll(async () => {
    redis = await startSingleRedis();
    stack = await startStack({ redis: redis.target, startWorker: false });
    const { hostname, port } = new URL(stack.api.database.url);
    proxy = await startTcpProxy({ host: hostname, port: Number(port || 5432) });
    worker = await startWorkerHarness({
      databaseUrl: proxy.through(stack.api.database.url), prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, redis: redis.target,
      config: { RELAY_GRACE: 600_000 },
    });
  });
  afterAll(async () => {
    proxy?.restore();
    await worker?.close();
    await proxy?.close();
    await stack?.close();
    await redis?.stop();
  });

  it('the refill waits for PostgreSQL and queues the waiting delivery as soon as it answers, once', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url });
    await worker.delivery.worker.pause();
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    proxy.cut();
    const refusedBefore = proxy.refused();
    await redis.restartEmpty();
    await worker.delivery.worker.resume();
    // The worker re-marks the prefix (Redis lost its data) and its refill fails on PostgreSQL, at least twice.
    const id = await readInstallationId(stack.api.database.db.sql);
    await waitUntil(async () => (await redisCli(redis.port, 'hget', installationKey(stack.api.prefix), 'id')) === id, 'the prefix marked again', { timeoutMs: 15_000 });
    await waitUntil(() => proxy.refused() >= refusedBefore + 2, 'the refill trying PostgreSQL', { timeoutMs: 15_000 });
    expect(r.received).toHaveLength(0);

    proxy.restore();
    const restoredAt = Date.now();
    const [callback] = await r.waitFor(1, 15_000);
    expect(callback.headers['x-perfectparser-delivery']).toBe(delivery.id);
    expect(callback.receivedAt - restoredAt).toBeLessThan(15_000);
    await eventually(async () => (await stack.delivery(delivery.id)).delivery.status === 'succeeded', 10_000, 'delivery succeeded');
    expect(r.received).toHaveLength(1);
    expect(worker.logs.filter((l) => /waiting deliveries queued again/.test(l.message)).length).toBeGreaterThanOrEqual(1);
    // The outage said it; no line per failed try.
    expect(worker.logs.filter((l) => /could not (finish )?queue(ing)? the waiting deliveries again/.test(l.message))).toEqual([]);
  });
});
