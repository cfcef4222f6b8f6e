import { shardOf } from '@hookline/queue';
import { startRedisCluster, type RedisCluster } from '../support/redis-topology';
import type { CreatedWebhook } from '../delivery/stack';
import { expectAllDelivered, publishMany, startTopologyRun, type TopologyRun } from './scenario';

// A master of a 3-master cluster (one replica each) dies with SIGKILL while
// events flow: its replica takes over, every accepted event is still delivered
// (the relay re-enqueues what the dead master held and the replica never
// got), and the worker carries on by itself: after the failover a webhook in
// every one of the 16 shards gets its callback from the same worker process.

describe('on a Redis Cluster whose master dies mid-run', () => {
  let cluster: RedisCluster;
  let run: TopologyRun;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicas: 1 });
    run = await startTopologyRun(cluster.target, 4);
  });
  afterAll(async () => {
    await run?.close();
    await cluster?.stop();
  });

  it('loses nothing accepted, and the worker recovers by itself on every shard', async () => {
    await publishMany(run, 5);
    await expectAllDelivered(run, 20);
    // One worker process from here on: nobody else covers for it.
    await run.second.close();

    const [victim] = await cluster.masterPorts();
    const node = cluster.nodes.find((n) => n.port === victim)!;
    const pending = publishMany(run, 5);
    await node.kill('SIGKILL');
    await pending;
    // Accepted while the cluster has a master missing.
    await publishMany(run, 5);
    await cluster.waitHealthy(3);
    expect(await cluster.masterPorts()).not.toContain(victim);

    // After the failover: a webhook in each shard the first four do not cover.
    const covered = new Set(run.hooks.map((h) => shardOf(h.id, 16)));
    const extra: CreatedWebhook[] = [];
    for (let i = 0; covered.size < 16 && i < 400; i += 1) {
      const hook = await run.stack.createWebhook({ url: `${run.receiver.url}/x${i}` });
      if (covered.has(shardOf(hook.id, 16))) {
        await run.stack.v1.delete(`/v1/webhooks/${hook.id}`);
        continue;
      }
      covered.add(shardOf(hook.id, 16));
      extra.push(hook);
    }
    expect(covered.size).toBe(16);
    run.hooks.push(...extra);
    await publishMany(run, 5);
    // 15 events for the first four webhooks, then 5 for every webhook.
    await expectAllDelivered(run, 15 * 4 + 5 * run.hooks.length);
  });
});
