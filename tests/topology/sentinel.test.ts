import { startSentinelSetup, type SentinelSetup } from '../support/redis-topology';
import { eventually } from '../delivery/stack';
import { expectAllDelivered, publishMany, startTopologyRun, type TopologyRun } from './scenario';

// Redis through Sentinel (one master, one replica, three sentinels): the
// master dies with SIGKILL while events flow, Sentinel promotes the replica,
// and every accepted event is still delivered by the same worker processes.

describe('through Redis Sentinel, failing the master over mid-run', () => {
  let sentinel: SentinelSetup;
  let run: TopologyRun;
  beforeAll(async () => {
    sentinel = await startSentinelSetup();
    run = await startTopologyRun(sentinel.target, 4);
  });
  afterAll(async () => {
    await run?.close();
    await sentinel?.stop();
  });

  it('loses nothing accepted, and the workers follow the new master by themselves', async () => {
    expect(run.stack.api.queues.count).toBe(1);
    await publishMany(run, 5);
    await expectAllDelivered(run, 20);

    const [master, replica] = sentinel.servers;
    expect(await sentinel.masterPort()).toBe(master.port);
    const pending = publishMany(run, 5);
    await master.kill('SIGKILL');
    await pending;
    await publishMany(run, 5);
    await eventually(async () => (await sentinel.masterPort()) === replica.port, 20_000, 'the replica promoted');
    await publishMany(run, 5);
    await expectAllDelivered(run, 80);
  });
});
