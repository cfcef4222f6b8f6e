import { sleep } from '../bench/support';
import type { ChaosContext, Scenario } from './run';

// The chaos benchmark's scenarios. Times are seconds after publishing began
// (4,000 events at 80/s publish for 50 s); each fault is recorded by
// ctx.fault(), and recovery is measured from the end of the last one.

const KILL_EVERY_SECONDS = 8;

/** SIGKILL one worker every 8 s, the workers in turn, each restarted 1 s later, while publishing lasts. */
async function killWorkersInTurn(ctx: ChaosContext, until: () => boolean): Promise<void> {
  for (let n = 0; ; n++) {
    await ctx.at(KILL_EVERY_SECONDS * (n + 1));
    if (!until()) return;
    const index = n % ctx.workers;
    await ctx.fault(`worker ${index + 1} SIGKILLed, restarted 1 s later`, async () => {
      await ctx.killWorker(index);
      await sleep(1_000);
      ctx.startWorker(index);
    });
  }
}

function needRedis(ctx: ChaosContext) {
  if (!ctx.redis) throw new Error('this scenario needs a single Redis server');
  return ctx.redis;
}

const pgDown = (ctx: ChaosContext, seconds: number) =>
  ctx.fault(`PostgreSQL down ${seconds} s (pg_ctl stop -m immediate, then start)`, async () => {
    await ctx.pg.crash();
    await sleep(seconds * 1000);
    await ctx.pg.start();
  });

const redisKilledAof = (ctx: ChaosContext) => ctx.fault('Redis kill -9 (AOF on), restarted', () => needRedis(ctx).restart());
const redisWiped = (ctx: ChaosContext) => ctx.fault('Redis kill -9, data deleted, restarted empty', () => needRedis(ctx).restartEmpty());

export const SCENARIOS: Scenario[] = [
  {
    name: 'baseline',
    description: 'no fault: the reference',
    redis: 'plain',
    plan: async () => undefined,
  },
  {
    name: 'worker-kill',
    description: `SIGKILL of a worker every ${KILL_EVERY_SECONDS} s (the two in turn, each restarted 1 s later) while publishing`,
    redis: 'plain',
    plan: (ctx) => killWorkersInTurn(ctx, () => ctx.publishing()),
  },
  {
    name: 'worker-rolling',
    description: 'a rolling SIGTERM restart of the workers at 15 s (a new one started and ready, then the old one stopped; one at a time)',
    redis: 'plain',
    plan: async (ctx) => {
      await ctx.at(15);
      await ctx.fault('rolling restart of the workers (SIGTERM)', async () => {
        for (let i = 0; i < ctx.workers; i++) await ctx.rollWorker(i);
      });
    },
  },
  {
    name: 'redis-kill-aof',
    description: 'Redis kill -9 at 15 s with AOF on (fsync every second), restarted at once',
    redis: 'aof',
    plan: async (ctx) => {
      await ctx.at(15);
      await redisKilledAof(ctx);
    },
  },
  {
    name: 'redis-wiped',
    description: 'Redis kill -9 at 15 s, its data deleted, restarted empty',
    redis: 'plain',
    plan: async (ctx) => {
      await ctx.at(15);
      await redisWiped(ctx);
    },
  },
  {
    name: 'pg-down-3s',
    description: 'PostgreSQL down 3 s at 15 s (pg_ctl stop -m immediate, then start)',
    redis: 'plain',
    plan: async (ctx) => {
      await ctx.at(15);
      await pgDown(ctx, 3);
    },
  },
  {
    name: 'pg-down-45s',
    description: 'PostgreSQL down 45 s at 10 s (pg_ctl stop -m immediate, then start)',
    redis: 'plain',
    plan: async (ctx) => {
      await ctx.at(10);
      await pgDown(ctx, 45);
    },
  },
  {
    name: 'cluster-failover',
    description: 'a 3-master Redis Cluster with a replica each; at 15 s a master SIGKILLed, its replica takes over',
    redis: 'cluster',
    plan: async (ctx) => {
      await ctx.at(15);
      const cluster = ctx.cluster;
      if (!cluster) throw new Error('this scenario needs a Redis Cluster');
      await ctx.fault('a Redis Cluster master SIGKILLed, until its replica took over', async () => {
        const [port] = await cluster.masterPorts();
        await cluster.nodes.find((node) => node.port === port)!.kill('SIGKILL');
        await cluster.waitHealthy(3, 60_000);
      });
    },
  },
  {
    name: 'all',
    description: 'all together, 1.5× the events at 1.25× the rate (6,000 at 100/s by default): workers SIGKILLed every 8 s, Redis kill -9 with AOF at 15 s, PostgreSQL down 3 s at 25 s, Redis wiped at 35 s',
    redis: 'aof',
    scale: { events: 1.5, rate: 1.25 },
    plan: async (ctx) => {
      const others = (async () => {
        await ctx.at(15);
        await redisKilledAof(ctx);
        await ctx.at(25);
        await pgDown(ctx, 3);
        await ctx.at(35);
        await redisWiped(ctx);
      })();
      await Promise.all([killWorkersInTurn(ctx, () => ctx.publishing()), others]);
    },
  },
];
