import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { bullmqInternalsPresent, createSlotBudget, heldBy } from '../src/slot-budget';
import { TEST_REDIS_URL } from '../../../tests/support/api-harness';

// The worker's one slot budget shared by its shards' BullMQ workers
// (apps/worker/src/slot-budget.ts): which shard gets how many slots, that the
// process never holds more than the budget, and the BullMQ fields it reads.

/** A stand-in for a shard's BullMQ worker, with the fields the budget reads. */
type Fake = {
  concurrency: number;
  drained: boolean;
  waiting: null;
  paused: boolean;
  held: number;
  wakes: number;
  mainLoopQueue: { numTotal(): number; add(p: Promise<unknown>): void };
  isRunning(): boolean;
  isPaused(): boolean;
};

function fake(opts: { held?: number; drained?: boolean } = {}): Fake {
  const f: Fake = {
    concurrency: 1,
    drained: opts.drained ?? true,
    waiting: null,
    paused: false,
    held: opts.held ?? 1,
    wakes: 0,
    mainLoopQueue: {
      numTotal: () => f.held,
      add: () => {
        f.wakes += 1;
      },
    },
    isRunning: () => true,
    isPaused: () => f.paused,
  };
  return f;
}

function budgetOver(slots: number, fakes: Fake[]) {
  const budget = createSlotBudget({ slots });
   
  for (const f of fakes) budget.add({ worker: () => f as any });
  return budget;
}

/** What the shards may hold at most before the budget sets them again (BullMQ's rule: it fetches while it holds fewer than its concurrency). */
const reserved = (fakes: Fake[]) => fakes.reduce((sum, f) => sum + Math.max(f.concurrency, f.held), 0);

describe('slot budget', () => {
  it('one busy shard among four gets every slot the idle ones do not hold (one each), and is woken to fetch them', () => {
    const shards = [fake({ held: 1, drained: false }), fake(), fake(), fake()];
    const budget = budgetOver(20, shards);
    budget.rebalance();
    expect(shards.map((s) => s.concurrency)).toEqual([17, 1, 1, 1]);
    expect(shards[0].wakes).toBeGreaterThan(0);
    expect(reserved(shards)).toBe(20);
  });

  it('two busy shards share the rest equally; the one above its share shrinks, the other grows only into free slots', () => {
    const shards = [fake({ held: 17, drained: false }), fake({ held: 1, drained: false }), fake(), fake()];
    shards[0].concurrency = 17;
    const budget = budgetOver(20, shards);
    shards[0].concurrency = 17;
    budget.rebalance();
    // Shares of 18: 9 each. Shard 0 holds 17: it fetches nothing more (9 < 17); nothing is free for shard 1 yet.
    expect(shards[0].concurrency).toBe(9);
    expect(shards[1].concurrency).toBe(1);
    expect(reserved(shards)).toBeLessThanOrEqual(20);
    // As shard 0's jobs end without successors, shard 1 grows into their slots.
    shards[0].held = 12;
    budget.rebalance();
    expect(shards[1].concurrency).toBe(6);
    shards[0].held = 9;
    budget.rebalance();
    expect(shards.slice(0, 2).map((s) => s.concurrency)).toEqual([9, 9]);
    expect(reserved(shards)).toBe(20);
  });

  it('a shard whose line emptied keeps what it holds and lets the rest go as its jobs end', () => {
    const shards = [fake({ held: 17, drained: false }), fake(), fake(), fake()];
    const budget = budgetOver(20, shards);
    budget.rebalance();
    shards[0].drained = true;
    shards[0].held = 5;
    budget.rebalance();
    expect(shards[0].concurrency).toBe(5);
    shards[0].held = 0;
    budget.rebalance();
    expect(shards.map((s) => s.concurrency)).toEqual([1, 1, 1, 1]);
  });

  it('one shard alone has the whole budget; more shards than slots keep one each', () => {
    const one = [fake({ drained: true })];
    budgetOver(50, one).rebalance();
    expect(one[0].concurrency).toBe(50);
    const many = Array.from({ length: 8 }, () => fake({ drained: false }));
    const budget = budgetOver(4, many);
    budget.rebalance();
    expect(budget.total()).toBe(8);
    expect(many.every((s) => s.concurrency === 1)).toBe(true);
  });

  it('a paused shard is given no more than it holds (at least 1)', () => {
    const shards = [fake({ held: 3, drained: false }), fake({ held: 1, drained: false })];
    shards[0].paused = true;
    const budget = budgetOver(20, shards);
    budget.rebalance();
    expect(shards[0].concurrency).toBe(3);
    expect(shards[1].concurrency).toBe(17);
  });

  it('a replaced worker still holding jobs counts until forgotten', () => {
    const shards = [fake({ held: 1, drained: false }), fake()];
    const old = fake({ held: 6 });
    const budget = budgetOver(20, shards);
     
    budget.retire(old as any);
    budget.rebalance();
    expect(shards[0].concurrency).toBe(13);
     
    budget.forget(old as any);
    expect(shards[0].concurrency).toBe(19);
  });

  it('in a random run under BullMQ\'s rule, the shards never hold more than the budget, and busy shards get more than an even split', () => {
    // A small deterministic PRNG, so a failure repeats.
    let seed = 27;
    const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const slots = 40;
    const shards = Array.from({ length: 6 }, () => fake({ held: 1 }));
    const budget = budgetOver(slots, shards);
    let mostByOne = 0;
    for (let step = 0; step < 5_000; step += 1) {
      const s = shards[Math.floor(rand() * shards.length)];
      const r = rand();
      if (r < 0.45 && s.held < s.concurrency) {
        // BullMQ fetches: a job when the shard has work (shards 0 and 1 mostly do).
        s.held += 1;
        s.drained = rand() > (shards.indexOf(s) < 2 ? 0.95 : 0.1);
      } else if (r < 0.9 && s.held > 0) {
        // A job ends (its successor, if any, takes its slot within the rule, so: one fewer).
        s.held -= 1;
      } else if (r < 0.92) {
        s.paused = !s.paused;
      }
      if (rand() < 0.5) budget.rebalance();
      const held = shards.reduce((sum, f) => sum + f.held, 0);
      expect(held).toBeLessThanOrEqual(slots);
      expect(reserved(shards)).toBeLessThanOrEqual(slots);
      mostByOne = Math.max(mostByOne, ...shards.map((f) => f.held));
    }
    expect(mostByOne).toBeGreaterThan(Math.ceil(slots / shards.length));
  });

  describe('BullMQ (the fields the budget reads)', () => {
    let connection: IORedis;
    beforeAll(() => {
      connection = new IORedis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    });
    afterAll(() => connection.quit());

    it('has a main loop queue counting fetched jobs, a drained flag, and a loop woken by a raised concurrency', async () => {
      const name = `slot-budget-${process.pid}-${Date.now()}`;
      const queue = new Queue(name, { connection });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let running = 0;
      let most = 0;
      const worker = new Worker(name, async () => {
        running += 1;
        most = Math.max(most, running);
        await gate;
        running -= 1;
      }, { connection, concurrency: 1, autorun: false });
      try {
        expect(bullmqInternalsPresent(worker)).toBe(true);
        expect(heldBy(worker)).toBe(0);
        await queue.addBulk(Array.from({ length: 6 }, (_, i) => ({ name: 'job', data: { i } })));
        void worker.run();
        await waitFor(() => running === 1);
        expect(heldBy(worker)).toBe(1);
        // Raised while its one job is held: the budget's wake makes it fetch more now.
        const budget = createSlotBudget({ slots: 4 });
        budget.add({ worker: () => worker });
        await waitFor(() => running === 4);
        expect(heldBy(worker)).toBeGreaterThanOrEqual(4);
        release();
        await waitFor(() => running === 0);
        expect(most).toBe(4);
        await waitFor(async () => (await queue.getJobCounts('completed')).completed === 6);
        await waitFor(() => (worker as unknown as { drained: boolean }).drained);
      } finally {
        release();
        await worker.close();
        await queue.obliterate({ force: true });
        await queue.close();
      }
    });
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
