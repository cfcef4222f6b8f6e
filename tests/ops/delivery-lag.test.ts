import request from 'supertest';
import { createMetrics, createProbeAnswers } from '@hookline/metrics';
import {
  createDeliveryQueues, createRedis, DELIVER_JOB, FIRST_ATTEMPT_PRIORITY, HELD_PRIORITY, markReadyAt, READY_AT_FIELD, RETRY_PRIORITY, shardIndexOf, shardLagSeconds,
  type DeliveryQueue, type DeliveryQueues, type RedisClient,
} from '@hookline/queue';
import { cleanPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/api-harness';
import { startWorkerHarness } from '../support/worker-harness';
import { eventually, sleep, startStack, type Stack } from '../delivery/stack';

// hookline_delivery_lag_seconds, the autoscaling signal (docs/operations.md#metrics,
// docs/kubernetes.md): the oldest due delivery's wait per shard, from the heads
// of the shard's lines in Redis; held deliveries are not lag.

describe('shardLagSeconds on a real Redis', () => {
  let redis: RedisClient;
  let queues: DeliveryQueues;
  let shard: DeliveryQueue;
  const prefix = uniquePrefix('lag');

  beforeAll(() => {
    redis = createRedis(TEST_REDIS_URL, 'producer');
    queues = createDeliveryQueues(redis, prefix, 2);
    shard = queues.shards[1];
  });
  afterEach(async () => {
    await shard.obliterate({ force: true });
  });
  afterAll(async () => {
    await queues.close();
    await cleanPrefix(redis, prefix);
    redis.disconnect();
  });

  const add = (id: string, opts: { priority?: number; delay?: number } = {}) => shard.add(DELIVER_JOB, { deliveryId: id }, { jobId: id, priority: opts.priority ?? FIRST_ATTEMPT_PRIORITY, ...(opts.delay ? { delay: opts.delay } : {}) });

  it('names each shard by its number', () => {
    expect(queues.shards.map(shardIndexOf)).toEqual([0, 1]);
  });

  it('is 0 for an empty shard', async () => {
    expect(await shardLagSeconds(redis, shard)).toBe(0);
  });

  it('counts a first attempt from when it was created', async () => {
    const job = await add('del_first');
    expect(await shardLagSeconds(redis, shard, job.timestamp + 4_000)).toBeCloseTo(4, 3);
  });

  it('takes the oldest head of the three lines: woken (wait list), first attempts and retries', async () => {
    const retry = await add('del_retry', { priority: RETRY_PRIORITY });
    // Time itself: each job must be created a few milliseconds after the last (the ages compared below).
    await sleep(20);
    await add('del_first');
    await sleep(20);
    await add('del_woken', { priority: HELD_PRIORITY });
    // The retry is the oldest, though first attempts go before it.
    expect(await shardLagSeconds(redis, shard, retry.timestamp + 10_000)).toBeCloseTo(10, 3);
    await shard.remove('del_retry');
    const lag = await shardLagSeconds(redis, shard, retry.timestamp + 10_000);
    expect(lag).toBeLessThan(10 - 0.019);
    expect(lag).toBeGreaterThan(10 - 0.2);
  });

  it('does not count a held delivery (delayed, not due yet), however old the job', async () => {
    const job = await add('del_held', { delay: 60_000 });
    expect(await shardLagSeconds(redis, shard, job.timestamp + 59_000)).toBe(0);
    // Once due and still not taken, it counts from its due time, not from its creation.
    expect(await shardLagSeconds(redis, shard, job.timestamp + 63_000)).toBeCloseTo(3, 2);
  });

  it('counts a job that was held or retried from when it became due again (its ready mark), not from its creation', async () => {
    const job = await add('del_was_held');
    await markReadyAt(redis, shard, job.id!, job.timestamp + 30_000);
    expect(await redis.hget(shard.toKey(job.id!), READY_AT_FIELD)).toBe(String(job.timestamp + 30_000));
    expect(await shardLagSeconds(redis, shard, job.timestamp + 32_000)).toBeCloseTo(2, 3);
    // Marked in the future (woken early, mark not yet moved): never negative.
    expect(await shardLagSeconds(redis, shard, job.timestamp + 1_000)).toBe(0);
  });

  it('never leaves a stray hash for a job that is gone', async () => {
    await markReadyAt(redis, shard, 'del_gone', Date.now());
    expect(await redis.exists(shard.toKey('del_gone'))).toBe(0);
  });

  it('the gauge has one series per shard, and drops a shard Redis cannot answer for', async () => {
    const metrics = createMetrics({ app: 'lag-test', defaultMetrics: false });
    const job = await add('del_first');
    const answers = createProbeAnswers({
      postgres: async () => true, redis: async () => true, metrics, queues: [], countCircuits: async () => ({}),
      lag: [
        { shard: 0, read: () => shardLagSeconds(redis, queues.shards[0]) },
        { shard: 1, read: () => shardLagSeconds(redis, shard, job.timestamp + 2_500) },
        { shard: 7, read: () => Promise.reject(new Error('no answer')) },
      ],
    });
    const body = (await answers.metrics()).body;
    expect(body).toMatch(/^hookline_delivery_lag_seconds\{shard="0",app="lag-test"\} 0$/m);
    expect(body).toMatch(/^hookline_delivery_lag_seconds\{shard="1",app="lag-test"\} 2\.5$/m);
    expect(body).not.toMatch(/shard="7"/);
    // Only a process that runs deliveries reports its slots.
    expect(body).not.toMatch(/hookline_worker_slots_busy_ratio/);
  });
});

describe('delivery lag and busy slots with the real worker', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await stack?.close();
  });
  beforeEach(() => stack.freshAccount());

  const lagOf = async () => {
    const res = await request(stack.api.app).get('/metrics').expect(200);
    const match = /^hookline_delivery_lag_seconds\{shard="0",app="api-test"\} (\S+)$/m.exec(res.text);
    return match ? Number(match[1]) : NaN;
  };

  it('deliveries held behind an open circuit are not lag: the gauge stays near 0 while they wait', async () => {
    const worker = await startWorkerHarness({
      databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey,
      config: { CIRCUIT_BREAKER_THRESHOLD: 3, CIRCUIT_BREAKER_COOLDOWN: 60_000 },
    });
    try {
      const down = await stack.receiver({ status: 503 });
      const wh = await stack.createWebhook({ url: down.url, max_in_flight: 1, retry_enabled: false });
      for (let i = 0; i < 8; i += 1) await stack.publish('quota.warning', { usage: i, limit: 100 }, 1);
      await eventually(async () => (await stack.webhook(wh.id)).circuit === 'open', 10_000, 'circuit open');
      // Every delivery left is held in `delayed`, none due.
      await eventually(async () => {
        const counts = await stack.api.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
        return counts.waiting + counts.prioritized + counts.active === 0 && counts.delayed === 5;
      }, 10_000, 'held deliveries delayed');
      const held = await stack.api.queue.getJobs(['delayed']);
      // The worker marked each held job with the time it comes due (its place in delayed).
      for (const job of held) {
        const mark = Number(await stack.api.redis.hget(stack.api.queue.toKey(job.id!), READY_AT_FIELD));
        expect(mark).toBeGreaterThan(Date.now());
      }
      // The oldest of them was created seconds ago; still no lag, now or a while later.
      expect(await lagOf()).toBeLessThan(0.5);
      // Time itself: the held jobs grow older, and that must not read as lag.
      await sleep(1_500);
      expect(await lagOf()).toBeLessThan(0.5);
      // Whereas the same deliveries waiting unserved (no worker running) would be lag.
      await worker.close();
      for (const job of held) await job.promote();
      const oldest = Math.min(...held.map((job) => Number(job.timestamp)));
      await markReadyAt(stack.api.redis, stack.api.queue, held[0].id!, oldest);
      expect(await lagOf()).toBeGreaterThan((Date.now() - oldest) / 1000 - 0.5);
      await stack.api.queue.obliterate({ force: true });
    } finally {
      await worker.close();
    }
  });

  it('hookline_worker_slots_busy_ratio: the share of the worker\'s slots running a delivery', async () => {
    const worker = await startWorkerHarness({
      databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey,
      config: { WORKER_CONCURRENCY: 4 },
    });
    try {
      const answers = createProbeAnswers({
        postgres: async () => true, redis: async () => true, metrics: worker.metrics, queues: [], countCircuits: async () => ({}),
        slots: () => worker.delivery.slots(),
      });
      const ratio = async () => Number(/^hookline_worker_slots_busy_ratio\{app="worker-test"\} (\S+)$/m.exec((await answers.metrics()).body)?.[1]);
      expect(await ratio()).toBe(0);
      const slow = await stack.receiver({ status: 200, delayMs: 1_500 });
      await stack.createWebhook({ url: slow.url, max_in_flight: 10 });
      await stack.publish('quota.warning', { usage: 1, limit: 100 }, 1);
      await stack.publish('quota.warning', { usage: 2, limit: 100 }, 1);
      await eventually(async () => (await ratio()) === 0.5, 10_000, 'two of four slots busy');
      await slow.waitFor(2, 10_000);
      await eventually(async () => (await ratio()) === 0, 10_000, 'slots free again');
    } finally {
      await worker.close();
    }
  });
});
