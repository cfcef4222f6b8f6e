import request from 'supertest';
import { installationKey, shardOf, shardQueueName } from '@hookline/queue';
import { shardsThatCompleted } from '../support/queue-events';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';
import { deliveryReaches, eventually, onlyDelivery, startStack, type CreatedWebhook, type Stack } from '../delivery/stack';

// DELIVERY_QUEUE_SHARDS on one Redis (the machine's): each webhook's
// deliveries in its own shard, every shard served, counted in /metrics and
// shown by Bull Board, and a smaller shard count later still drains the old shards.

const PASSWORD = 'correct horse battery staple';
const auth = { Authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };

describe('delivery queue shards', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ shards: 4, startWorker: false });
  });
  afterAll(() => stack?.close());

  /** Webhooks on one receiver until every shard in `wanted` has one. */
  async function hooksCovering(url: string, count: number, wanted: (shard: number) => boolean, each = 1): Promise<CreatedWebhook[]> {
    const hooks: CreatedWebhook[] = [];
    const per = new Map<number, number>();
    for (let i = 0; hooks.length < count * each && i < 200; i += 1) {
      const hook = await stack.createWebhook({ url: `${url}/${i}` });
      const shard = shardOf(hook.id, 4);
      if (!wanted(shard) || (per.get(shard) ?? 0) >= each) {
        await stack.v1.delete(`/v1/webhooks/${hook.id}`);
        continue;
      }
      per.set(shard, (per.get(shard) ?? 0) + 1);
      hooks.push(hook);
    }
    return hooks;
  }

  it('puts a webhook\'s deliveries in its shard; every shard is served; /metrics and Bull Board show every shard', async () => {
    const worker = await startWorkerHarness({ databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, shards: 4 });
    try {
      expect(worker.delivery.queues.shards.map((q) => q.name)).toEqual([0, 1, 2, 3].map(shardQueueName));
      const r = await stack.receiver();
      const hooks = await hooksCovering(r.url, 4, () => true);
      await stack.publish('quota.warning', {}, 4);
      await r.waitFor(4);
      for (const hook of hooks) {
        const { id } = await onlyDelivery(stack, hook.id);
        await deliveryReaches(stack, id, 'succeeded');
        // Its job ran in its webhook's shard and no other (and, completed, is gone from Redis).
        expect(await shardsThatCompleted(stack.api.redis, stack.api.queues.shards, id)).toEqual([shardOf(hook.id, 4)]);
        for (const shard of stack.api.queues.shards) expect(await shard.getJobState(id)).toBe('unknown');
      }
      // Every shard answers for itself in /metrics …
      const metrics = await request(stack.api.app).get('/metrics');
      for (let i = 0; i < 4; i += 1) expect(metrics.text).toContain(`hookline_queue_jobs{queue="${shardQueueName(i)}",state="waiting",`);
      // … and in Bull Board (mounted when ADMIN_PASSWORD is set).
      const { createApp } = await import('@hookline/api');
      const admin = createApp({ ...stack.api.deps, config: { ...stack.api.deps.config, ADMIN_PASSWORD: PASSWORD } });
      const board = await request(admin).get('/admin/queues/api/queues').set(auth);
      expect(board.status).toBe(200);
      expect((board.body.queues as Array<{ name: string }>).map((q) => q.name).sort()).toEqual([0, 1, 2, 3].map(shardQueueName).sort());
    } finally {
      await worker.close();
    }
  });

  it('after the shard count shrinks, workers still drain the old shards (each delivery once) and stop once they are empty', async () => {
    await stack.freshAccount();
    const r = await stack.receiver();
    // Only webhooks whose deliveries go to shards 2 and 3, which a 2-shard worker does not have.
    const hooks = await hooksCovering(r.url, 2, (shard) => shard >= 2, 2);
    await stack.publish('quota.warning', {}, 4);
    await stack.publish('quota.warning', {}, 4);
    const ids = (await Promise.all(hooks.map((h) => stack.deliveries(h.id)))).flat().map((d) => d.id);
    expect(ids).toHaveLength(8);

    // The 4-shard worker of the test above recorded 4 as the count in use.
    let smaller: WorkerHarness | undefined = await startWorkerHarness({ databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, shards: 2 });
    let after: WorkerHarness | undefined;
    try {
      expect(smaller.delivery.queues.count).toBe(2);
      expect(smaller.delivery.queues.shards.map((q) => q.name)).toEqual([0, 1, 2, 3].map(shardQueueName));
      await r.waitFor(8, 15_000);
      for (const id of ids) await deliveryReaches(stack, id, 'succeeded');
      // The relay found them where they were: nothing was queued (or sent) twice, and no job of them is left.
      const worker = smaller;
      await waitUntil(async () => {
        const counts = await Promise.all(worker.delivery.queues.shards.map((q) => q.getJobCounts('waiting', 'prioritized', 'active', 'delayed')));
        return counts.every((c) => Object.values(c).every((n) => n === 0));
      }, 'every job of the four shards ended');
      expect(r.received).toHaveLength(8);
      expect(new Set(r.received.map((cb) => cb.headers['x-perfectparser-delivery'])).size).toBe(8);
      await smaller.close();
      smaller = undefined;
      // Drained: the next worker serves the two shards alone, and says so for the next one.
      after = await startWorkerHarness({ databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, shards: 2 });
      expect(after.delivery.queues.shards.map((q) => q.name)).toEqual([0, 1].map(shardQueueName));
      await eventually(async () => (await stack.api.redis.hget(installationKey(stack.api.prefix), 'shards')) === '2', 2_000, 'shard count recorded');
    } finally {
      await smaller?.close();
      await after?.close();
    }
  });
});
