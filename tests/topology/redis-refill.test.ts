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

type ProxiedWorkerStack = { redis: SingleRedis; stack: Stack; proxy: TcpProxy; worker: WorkerHarness };

/**
 * A redis-server of the test's own, the API, and a worker that reaches
 * PostgreSQL through a TCP proxy the test can cut (the API keeps its own
 * connection); RELAY_GRACE at 10 minutes, so the relay's scan never stands in
 * for the refill.
 */
async function proxiedWorkerStack(extra: Pick<Parameters<typeof startWorkerHarness>[0], 'recordRetryMs'>): Promise<ProxiedWorkerStack> {
  const redis = await startSingleRedis();
  const stack = await startStack({ redis: redis.target, startWorker: false });
  const { hostname, port } = new URL(stack.api.database.url);
  const proxy = await startTcpProxy({ host: hostname, port: Number(port || 5432) });
  const worker = await startWorkerHarness({
    databaseUrl: proxy.through(stack.api.database.url), prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, redis: redis.target,
    config: { RELAY_GRACE: 600_000 }, ...extra,
  });
  return { redis, stack, proxy, worker };
}

async function closeProxiedWorkerStack(s: Partial<ProxiedWorkerStack>): Promise<void> {
  s.proxy?.restore();
  await s.worker?.close();
  await s.proxy?.close();
  await s.stack?.close();
  await s.redis?.stop();
}

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
    ({ redis, stack, proxy, worker } = await proxiedWorkerStack({}));
  });
  afterAll(() => closeProxiedWorkerStack({ redis, stack, proxy, worker }));

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

// Redis back empty while a worker holds an answered attempt it cannot record
// yet (its PostgreSQL cut as the callback arrived): the worker takes the
// job's lock again on reconnect, and the refill, once PostgreSQL answers,
// finds the delivery in hand and does not queue it a second time. Recording
// is retried slowly here (every 8 s), so the refill comes first.
describe('a redis-server restarted empty while a worker holds an answered, unrecorded attempt', () => {
  let redis: SingleRedis;
  let stack: Stack;
  let proxy: TcpProxy;
  let worker: WorkerHarness;
  beforeAll(async () => {
    ({ redis, stack, proxy, worker } = await proxiedWorkerStack({ recordRetryMs: { first: 8_000, max: 8_000 } }));
  });
  afterAll(() => closeProxiedWorkerStack({ redis, stack, proxy, worker }));

  it('the delivery is sent once: the worker takes its lock again and the refill leaves it to that worker', async () => {
    const r = await stack.receiver((_req, index) => {
      if (index === 0) proxy.cut();
      return { status: 200, body: '{"ok":true}' };
    });
    const wh = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(1, 10_000);
    await waitUntil(() => worker.delivery.outage().down.includes('postgres'), 'the outage seen', { timeoutMs: 10_000 });

    await redis.restartEmpty();
    // The lock of the job still running in the worker is back (the job itself is gone).
    await waitUntil(async () => {
      const keys = (await redisCli(redis.port, 'keys', '*:lock')).split('\n').filter(Boolean);
      return keys.length === 1;
    }, 'the running job\'s lock taken again', { timeoutMs: 15_000 });
    expect(worker.logs.filter((l) => /taken again, so they are not queued twice/.test(l.message))).toHaveLength(1);

    proxy.restore();
    const [delivery] = await waitUntil(async () => {
      const list = await stack.deliveries(wh.id);
      return list.length === 1 && list[0].status === 'succeeded' ? list : undefined;
    }, 'the answered attempt recorded', { timeoutMs: 30_000 });
    // The refill ran (PostgreSQL back) and queued nothing: the one delivery was in hand.
    await waitUntil(() => worker.logs.some((l) => /waiting deliveries queued again/.test(l.message)), 'the refill done', { timeoutMs: 15_000 });
    expect(worker.logs.find((l) => /waiting deliveries queued again/.test(l.message))).toMatchObject({ enqueued: 0 });
    expect(delivery.attempt_count).toBe(1);
    expect(await stack.api.queue.getJobState(delivery.id)).toBe('unknown');
    expect(r.received).toHaveLength(1);
  });
});
