import { installationKey } from '@hookline/queue';
import { readInstallationId } from '@hookline/db';
import { startSingleRedis, redisCli, type SingleRedis } from '../support/redis-topology';
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
