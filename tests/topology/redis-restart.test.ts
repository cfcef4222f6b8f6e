import { installationKey } from '@hookline/queue';
import { readInstallationId } from '@hookline/db';
import { startSingleRedis, redisCli, type SingleRedis } from '../support/redis-topology';
import { eventually } from '../delivery/stack';
import { expectAllDelivered, publishMany, startTopologyRun, type TopologyRun } from './scenario';

// One plain redis-server, killed and started again EMPTY (no persistence)
// while events flow: the workers reconnect by themselves, the relay
// re-enqueues every delivery the lost data held, and the queue prefix is
// marked as this installation's again.

describe('on one redis-server restarted empty mid-run', () => {
  let redis: SingleRedis;
  let run: TopologyRun;
  beforeAll(async () => {
    redis = await startSingleRedis();
    run = await startTopologyRun(redis.target, 3);
  });
  afterAll(async () => {
    await run?.close();
    await redis?.stop();
  });

  it('loses nothing accepted, and the workers resume with no restart', async () => {
    await publishMany(run, 5);
    await expectAllDelivered(run, 15);

    const pending = publishMany(run, 5);
    await redis.restartEmpty();
    await pending;
    await publishMany(run, 5);
    await expectAllDelivered(run, 45);

    const id = await readInstallationId(run.stack.api.database.db.sql);
    await eventually(async () => (await redisCli(redis.port, 'hget', installationKey(run.stack.api.prefix), 'id')) === id, 10_000, 'prefix marked again');
  });
});
