import { shardOf } from '@hookline/queue';
import { startWorkerHarness } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';
import { startStack, type CreatedWebhook, type Stack } from '../delivery/stack';

// One slot budget per worker, shared by its shards (apps/worker/src/slot-budget.ts;
// #27 point 3): with DELIVERY_QUEUE_SHARDS=4 on one Redis and
// WORKER_CONCURRENCY=12, a shard with all the work runs more than ⌈12 / 4⌉ = 3
// deliveries at once, and the worker never runs more than 12, however the work
// is spread. The receiver holds each request, so what runs at once is what it
// sees open at once.

const SHARDS = 4;
const BUDGET = 12;
const HOLD_MS = 400;

describe('one slot budget shared by a worker\'s shards', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ shards: SHARDS, startWorker: false });
  });
  afterAll(() => stack?.close());

  /** `each` webhooks on one receiver in every shard `wanted` says yes to, with room for every delivery at once (max_in_flight 100). */
  async function hooksIn(url: string, wanted: (shard: number) => boolean, each: number): Promise<CreatedWebhook[]> {
    const hooks: CreatedWebhook[] = [];
    const per = new Map<number, number>();
    for (let i = 0; i < 200; i += 1) {
      const hook = await stack.createWebhook({ url: `${url}/${i}`, max_in_flight: 100 });
      const shard = shardOf(hook.id, SHARDS);
      if (!wanted(shard) || (per.get(shard) ?? 0) >= each) {
        await stack.v1.delete(`/v1/webhooks/${hook.id}`);
        continue;
      }
      per.set(shard, (per.get(shard) ?? 0) + 1);
      hooks.push(hook);
      if ([...Array(SHARDS).keys()].filter(wanted).every((s) => (per.get(s) ?? 0) >= each)) break;
    }
    return hooks;
  }

  /** A 4-shard worker with a budget of 12, and the most deliveries it counted running at once (sampled every 5 ms). */
  async function startWorker() {
    const worker = await startWorkerHarness({
      databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, shards: SHARDS,
      config: { WORKER_CONCURRENCY: BUDGET },
    });
    expect(worker.delivery.slots().total).toBe(BUDGET);
    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, worker.delivery.slots().busy);
    }, 5);
    return {
      mostBusy: () => most,
      async close() {
        clearInterval(sampler);
        await worker.close();
      },
    };
  }

  it('a shard with all the work runs more than its even split, and never more than the budget', async () => {
    const r = await stack.receiver({ status: 200, delayMs: HOLD_MS });
    const hooks = await hooksIn(r.url, (shard) => shard === 0, 2);
    expect(hooks.map((h) => shardOf(h.id, SHARDS))).toEqual([0, 0]);
    for (let i = 0; i < 20; i += 1) await stack.publish('quota.warning', { n: i }, 2);

    const worker = await startWorker();
    try {
      await r.waitFor(40, 60_000);
      // More than ⌈12 / 4⌉ = 3 at once (the idle shards keep one slot each: 9), never more than 12.
      expect(r.maxOpen()).toBeGreaterThan(Math.ceil(BUDGET / SHARDS));
      expect(r.maxOpen()).toBeLessThanOrEqual(BUDGET);
      expect(worker.mostBusy()).toBeLessThanOrEqual(BUDGET);
      expect(new Set(r.received.map((cb) => String(cb.headers['x-perfectparser-delivery']))).size).toBe(40);
    } finally {
      await worker.close();
    }
  });

  it('with work in every shard the shards share the budget: never more than it at once, and every delivery sent once', async () => {
    await stack.freshAccount();
    const r = await stack.receiver({ status: 200, delayMs: HOLD_MS });
    const hooks = await hooksIn(r.url, () => true, 2);
    expect(hooks).toHaveLength(2 * SHARDS);
    for (let i = 0; i < 8; i += 1) await stack.publish('quota.warning', { n: i }, hooks.length);

    const worker = await startWorker();
    try {
      await r.waitFor(8 * hooks.length, 60_000);
      expect(r.maxOpen()).toBeLessThanOrEqual(BUDGET);
      expect(r.maxOpen()).toBeGreaterThan(Math.ceil(BUDGET / SHARDS));
      expect(worker.mostBusy()).toBeLessThanOrEqual(BUDGET);
      expect(new Set(r.received.map((cb) => String(cb.headers['x-perfectparser-delivery']))).size).toBe(8 * hooks.length);
      // Nothing is left behind in any shard.
      await waitUntil(async () => {
        for (const shard of stack.api.queues.shards) {
          const counts = await shard.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
          if (Object.values(counts).some((n) => n > 0)) return false;
        }
        return true;
      }, 'every shard is empty');
    } finally {
      await worker.close();
    }
  });
});
