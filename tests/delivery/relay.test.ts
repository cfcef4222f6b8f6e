import { DELIVER_JOB } from '@hookline/queue';
import { publishEvent } from '../support/publish-event';
import { ownRedisServer, type OwnRedis } from '../support/local-services';
import { allDeliveriesFinal, deliveryReaches, eventually, onlyDelivery, startStack, type Stack } from './stack';

// "An event accepted with 202 is never lost": deliveries whose job never
// reached Redis, or that Redis lost, are found by the relay (RELAY_GRACE
// 500 ms, every 200 ms in the harness) and delivered.

describe('the outbox relay', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack?.close());
  beforeEach(() => stack.freshAccount());

  it('delivers outbox rows that were never enqueued (the API died between commit and enqueue)', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url });
    const written = await publishEvent(stack.api.database.db.prisma, { accountId: stack.account.accountId, event: 'quota.warning', parserId: null, data: { usage: 80 } });
    expect(written.deliveryIds).toHaveLength(1);
    const [cb] = await r.waitFor(1, 10_000);
    expect(cb.headers['x-perfectparser-delivery']).toBe(written.deliveryIds[0]);
    await deliveryReaches(stack, written.deliveryIds[0], 'succeeded');
    expect((await stack.deliveries(wh.id))[0].attempt_count).toBe(1);
    expect((await stack.worker.metrics.relayed.get()).values[0]?.value).toBeGreaterThanOrEqual(1);
  });

  it('re-enqueues jobs Redis lost (the whole queue obliterated)', async () => {
    const r = await stack.receiver();
    const worker = stack.worker.delivery.worker;
    await worker.pause();
    let ids: string[];
    try {
      const whs = [await stack.createWebhook({ url: r.url }), await stack.createWebhook({ url: `${r.url}/second` })];
      await stack.publish('quota.warning', {}, 2);
      ids = (await Promise.all(whs.map((w) => onlyDelivery(stack, w.id)))).map((d) => d.id);
      expect(await stack.api.queue.getJobState(ids[0])).toBe('prioritized');
      await stack.api.queue.obliterate({ force: true });
      expect(await stack.api.queue.getJobState(ids[0])).toBe('unknown');
    } finally {
      await worker.resume();
    }
    const got = await r.waitFor(2, 10_000);
    expect(got.map((cb) => cb.headers['x-perfectparser-delivery']).sort()).toEqual([...ids].sort());
  });

  it('replaces a job that finished while its delivery still waits (stuck), and delivers', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(1);
    const delivery = await onlyDelivery(stack, wh.id);
    await deliveryReaches(stack, delivery.id, 'succeeded');
    // Its completed job is deleted at once; a finished job of that id remains when it
    // failed (kept a week) or was queued by a version that kept completed jobs. Leave one:
    // the worker runs it (the delivery is final: nothing sent), and it stays completed.
    await eventually(async () => (await stack.api.queue.getJobState(delivery.id)) === 'unknown', 5_000, 'job deleted');
    await stack.api.queue.add(DELIVER_JOB, { deliveryId: delivery.id }, { jobId: delivery.id, removeOnComplete: false });
    await eventually(async () => (await stack.api.queue.getJobState(delivery.id)) === 'completed', 5_000, 'job completed');
    expect(r.received).toHaveLength(1);
    // The row says "still due" while Redis holds a completed job of the same id: adding it again would be a no-op.
    await stack.api.database.db.sql.query(`UPDATE deliveries SET status = 'pending_retry', next_attempt_at = now() - interval '1 minute' WHERE id = $1`, [delivery.id]);
    const [, again] = await r.waitFor(2, 10_000);
    expect(again.headers['x-perfectparser-delivery']).toBe(delivery.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'succeeded');
    expect(attempts.map((a) => a.attempt_number)).toEqual([1, 2]);
  });

  it('leaves deliveries whose job is merely waiting alone (no duplicate sends)', async () => {
    const r = await stack.receiver({ status: 200, delayMs: 1_500 });
    const whs = await Promise.all(Array.from({ length: 5 }, (_, i) => stack.createWebhook({ url: `${r.url}/${i}` })));
    await stack.publish('quota.warning', {}, 5);
    // Each callback takes 1.5 s: well past RELAY_GRACE while the jobs are active.
    await r.waitFor(5);
    for (const wh of whs) await deliveryReaches(stack, (await onlyDelivery(stack, wh.id)).id, 'succeeded', 10_000);
    await allDeliveriesFinal(stack);
    expect(r.received).toHaveLength(5);
  });
});

describe('Redis down at ingest', () => {
  let redis: OwnRedis;
  let stack: Stack | undefined;

  beforeAll(async () => {
    redis = await ownRedisServer();
    await redis.start();
    stack = await startStack({ redisUrl: redis.url });
  });

  afterAll(async () => {
    await stack?.close();
    await redis.stop();
  });

  it('an event accepted (202) while Redis is down is delivered once Redis is back', async () => {
    const s = stack!;
    const r = await s.receiver();
    const wh = await s.createWebhook({ url: r.url });
    await redis.stop();

    const res = await s.api.platform.post('/internal/v1/events', { account_id: s.account.accountId, event: 'quota.warning', data: { usage: 99, limit: 100 } });
    expect(res.status).toBe(202);
    expect(res.body.event.deliveries).toBe(1);
    const delivery = await onlyDelivery(s, wh.id);
    expect(delivery.status).toBe('pending');
    // Time itself: with Redis down the delivery stays pending (no final state to wait for); a second to send it anyway.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(r.received).toHaveLength(0);

    // Same port, empty data set: nothing of the job survived; only the outbox row did.
    await redis.start();
    const [cb] = await r.waitFor(1, 20_000);
    expect(cb.headers['x-perfectparser-delivery']).toBe(delivery.id);
    await deliveryReaches(s, delivery.id, 'succeeded');
  });
});
