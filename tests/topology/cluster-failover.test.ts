import { startRedisCluster, type RedisCluster } from '../support/redis-topology';
import { expectAllDelivered, publishMany, startTopologyRun, type TopologyRun } from './scenario';

// A master of a 3-master cluster (one replica each) dies with SIGKILL while
// events flow: its replica takes over, every accepted event is still delivered
// (the relay re-enqueues what the dead master held and the replica never
// got), and the same worker processes carry on: nobody restarts them.

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

  it('loses nothing accepted, and the workers recover by themselves', async () => {
    await publishMany(run, 5);
    await expectAllDelivered(run, 20);

    const [victim] = await cluster.masterPorts();
    const node = cluster.nodes.find((n) => n.port === victim)!;
    const pending = publishMany(run, 5);
    await node.kill('SIGKILL');
    await pending;
    // Accepted while the cluster has a master missing.
    await publishMany(run, 5);
    await cluster.waitHealthy(3);
    expect(await cluster.masterPorts()).not.toContain(victim);
    // And after the failover, on the same workers.
    await publishMany(run, 5);
    await expectAllDelivered(run, 80);
  });
});
