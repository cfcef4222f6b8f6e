import type { AddressInfo } from 'node:net';
import { createHttpServer } from '@hookline/api';
import { listen } from '@hookline/cli';
import { newId } from '@hookline/domain';
import { verify } from '@hookline/verify';
import { enqueueDeliveries, shardOf } from '@hookline/queue';
import { redisCli, startRedisCluster, type RedisCluster } from '../support/redis-topology';
import { publishEvent } from '../support/publish-event';
import { shardsThatCompleted } from '../support/queue-events';
import { deliveryReaches, onlyDelivery } from '../delivery/stack';
import { waitUntil } from '../support/wait-until';
import { expectAllDelivered, publishMany, startTopologyRun, type TopologyRun } from './scenario';

// The delivery path end to end on a 3-master Redis Cluster the test starts
// itself: 16 queue shards (the cluster default), each in its own hash slot.

describe('on a Redis Cluster (3 masters)', () => {
  let cluster: RedisCluster;
  let run: TopologyRun;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    run = await startTopologyRun(cluster.target, 3);
  });
  afterAll(async () => {
    await run?.close();
    await cluster?.stop();
  });

  it('serves 16 shards, and delivers signed callbacks from two workers with no duplicate', async () => {
    expect(run.stack.api.queues.count).toBe(16);
    expect(run.stack.worker.delivery.queues.shards).toHaveLength(16);
    await publishMany(run, 10);
    await expectAllDelivered(run, 30);
    const ids = run.receiver.received.map((cb) => String(cb.headers['x-perfectparser-delivery']));
    expect(new Set(ids).size).toBe(ids.length);
    // Each webhook's jobs ran in its own shard, and in no other.
    for (const hook of run.hooks) {
      const [delivery] = await run.stack.deliveries(hook.id);
      expect(await shardsThatCompleted(run.stack.api.redis, run.stack.api.queues.shards, delivery.id)).toEqual([shardOf(hook.id, 16)]);
    }
  });

  it('retries a failed attempt', async () => {
    const r = await run.stack.receiver((_req, index) => (index === 0 ? { status: 503 } : { status: 200 }));
    const hook = await run.stack.createWebhook({ url: r.url });
    await run.stack.publish('quota.warning', {}, run.hooks.length + 1);
    await r.waitFor(2, 15_000);
    const delivery = await onlyDelivery(run.stack, hook.id);
    const { attempts } = await deliveryReaches(run.stack, delivery.id, 'succeeded');
    expect(attempts.map((a) => a.response_status)).toEqual([503, 200]);
  });

  it('re-enqueues a job the cluster lost (relay)', async () => {
    const r = await run.stack.receiver();
    const hook = await run.stack.createWebhook({ url: r.url });
    // A delivery whose job never reached the cluster (lost, or the cluster was
    // down at commit): its outbox rows only, no job in any shard. (Not by pausing
    // the workers and removing the job: BullMQ's pause waits for its blocking
    // connection to end, which on a cluster under load could take longer than
    // the test's timeout.)
    const { deliveryIds } = await publishEvent(run.stack.api.database.db.prisma, {
      accountId: run.stack.account.accountId, event: 'quota.warning', parserId: null, data: { usage: 95, limit: 100 }, onlyWebhookId: hook.id, test: true,
    });
    expect(deliveryIds).toHaveLength(1);
    const [deliveryId] = deliveryIds;
    // The relay finds it (RELAY_GRACE later) and queues it in its webhook's shard.
    const [cb] = await r.waitFor(1, 15_000);
    expect(cb.headers['x-perfectparser-delivery']).toBe(deliveryId);
    await deliveryReaches(run.stack, deliveryId, 'succeeded');
    expect(await shardsThatCompleted(run.stack.api.redis, run.stack.api.queues.shards, deliveryId)).toEqual([shardOf(hook.id, 16)]);
  });

  it('puts each shard in one hash slot, and the shards on more than one master', async () => {
    // One delayed job in every shard (fake deliveries, an hour away), then look on each master.
    const { queues, prefix } = run.stack.api;
    await Promise.all(queues.shards.map((shard) => enqueueDeliveries(shard, [newId('delivery')], { delayMs: 3_600_000 })));
    const mastersOfShard = new Map<number, Set<number>>();
    for (const port of await cluster.masterPorts()) {
      const keys = (await redisCli(port, '--scan', '--pattern', `{${prefix}:*`)).split('\n').filter(Boolean);
      for (const key of keys) {
        const shard = Number(/^\{[^}]*:(\d+)\}/.exec(key)![1]);
        mastersOfShard.set(shard, (mastersOfShard.get(shard) ?? new Set()).add(port));
      }
    }
    expect([...mastersOfShard.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    for (const masters of mastersOfShard.values()) expect(masters.size).toBe(1);
    const used = new Set([...mastersOfShard.values()].flatMap((masters) => [...masters]));
    expect(used.size).toBeGreaterThan(1);
    await Promise.all(queues.shards.map((shard) => shard.drain(true)));
  });

  it('relays a hookline listen session\'s callbacks through the cluster (its keys in one slot, pub/sub across nodes)', async () => {
    const server = createHttpServer(run.stack.api.app);
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    const local = await run.stack.receiver();
    const handle = await listen({
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey: run.stack.account.key, forwardTo: local.url, events: ['quota.exceeded'], print: () => undefined,
    });
    try {
      await waitUntil(() => handle.connected(), 'the session connected');
      await run.stack.publish('quota.exceeded', { usage: 101, limit: 100 }, 1);
      const [cb] = await local.waitFor(1, 15_000);
      expect(verify(cb.body, cb.headers as Record<string, string>, handle.signingSecret).event).toBe('quota.exceeded');
      const { attempts } = await deliveryReaches(run.stack, String(cb.headers['x-perfectparser-delivery']), 'succeeded');
      expect(attempts[0]).toMatchObject({ response_status: 200 });
    } finally {
      await handle.stop();
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    }
  });
});
