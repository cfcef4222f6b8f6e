import type { Worker } from 'bullmq';

// One slot budget per worker process, shared by its queue shards' BullMQ
// workers (one per shard, worker.ts).
//
// Each shard's BullMQ worker fetches jobs while it holds fewer than its
// `concurrency`. Instead of a fixed ⌈WORKER_CONCURRENCY / shards⌉ each, the
// budget sets every shard's `concurrency` again whenever a job starts or ends:
//
// - a shard is *hungry* when its last fetch found a job (BullMQ's `drained` is
//   false; once a fetch finds none, it is true until one finds a job again);
// - every other shard keeps what it holds now, and at least 1 (one fetch loop,
//   a blocking read, so that work arriving there is taken at once);
// - the hungry shards share the rest equally. One above its share is given a
//   concurrency below what it holds: it fetches nothing more, and its ending
//   jobs fetch no successor (BullMQ fetches the next job with a finished one's
//   only while it holds no more than its concurrency), so its slots come free
//   for the others; one below its share grows into the slots free now.
//
// What a shard's worker holds is read from BullMQ: the jobs it fetched or is
// fetching (its main loop's queue, `numTotal()`), an upper bound of the jobs it
// has moved to active. A shard never holds more than the larger of its
// concurrency and what it held when its concurrency was last lowered, so
// keeping Σ max(concurrency, held) ≤ the budget keeps the jobs this process
// holds (fetched, running, being recorded) within WORKER_CONCURRENCY; the one
// exception is a budget smaller than the shard count, where every shard still
// gets one slot (as before).
//
// BullMQ 6.7.0 (pinned) has no public reading of either: `mainLoopQueue` and
// `drained` are read here, and `slot-budget.test.ts` fails if a BullMQ upgrade
// changes them. Raising a shard's concurrency does not wake a main loop parked
// on its running jobs; the budget wakes it as BullMQ's own `resume()` does (a
// resolved promise added to that queue).

/** The parts of BullMQ's Worker the budget reads and writes (fields BullMQ 6.7.0 declares private). */
type LoopQueue = { numTotal(): number; add(promise: Promise<unknown>): void };
type WorkerInternals = { mainLoopQueue?: LoopQueue | null; drained?: boolean; waiting?: unknown };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyWorker = Worker<any, any>;
const internals = (worker: AnyWorker) => worker as unknown as WorkerInternals;

/** Whether this BullMQ has the private fields the budget reads (a test pins them). */
export function bullmqInternalsPresent(worker: AnyWorker): boolean {
  const w = internals(worker);
  return 'mainLoopQueue' in w && typeof w.drained === 'boolean' && 'waiting' in w;
}

/**
 * Jobs this shard's worker has fetched or is fetching (at most one of them a
 * blocking read for new work): 0 when its main loop is not running. Without the
 * field, its concurrency (all it may hold), so the bound holds anyway.
 */
export function heldBy(worker: AnyWorker): number {
  const w = internals(worker);
  if (!('mainLoopQueue' in w)) return worker.concurrency;
  return w.mainLoopQueue?.numTotal() ?? 0;
}

export type BudgetShard = {
  /** This shard's BullMQ worker now (the watchdog may replace it). */
  worker(): AnyWorker;
};

export type SlotBudget = {
  /** The slots shared: WORKER_CONCURRENCY, or the shard count if larger (each shard keeps one). */
  readonly total: () => number;
  add(shard: BudgetShard): void;
  /** A shard's replaced worker: what it still holds counts until `forget`. */
  retire(worker: AnyWorker): void;
  forget(worker: AnyWorker): void;
  /** Sets each shard's concurrency again, after the current tick (a job started or ended). */
  schedule(): void;
  /** Sets each shard's concurrency now. */
  rebalance(): void;
  /** Starts the safety timer (a pause or a resume between jobs is seen within `intervalMs`). */
  start(): void;
  stop(): void;
};

export function createSlotBudget(opts: { slots: number; intervalMs?: number }): SlotBudget {
  const shards: BudgetShard[] = [];
  const retired = new Set<AnyWorker>();
  let scheduled = false;
  let timer: NodeJS.Timeout | undefined;
  const total = () => Math.max(opts.slots, shards.length);

  const setConcurrency = (worker: AnyWorker, value: number) => {
    const before = worker.concurrency;
    if (value === before) return;
    worker.concurrency = value;
    // A loop parked on its running jobs fetches again only once woken (as BullMQ's resume() does).
    if (value > before) internals(worker).mainLoopQueue?.add(Promise.resolve());
  };

  function rebalance(): void {
    scheduled = false;
    if (shards.length === 0) return;
    if (shards.length === 1 && retired.size === 0) {
      setConcurrency(shards[0].worker(), total());
      return;
    }
    let reserved = 0;
    for (const worker of retired) reserved += heldBy(worker);
    const state = shards.map((shard) => {
      const worker = shard.worker();
      const held = heldBy(worker);
      const hungry = worker.isRunning() && !worker.isPaused() && internals(worker).drained === false;
      return { worker, held, floor: Math.max(1, held), hungry };
    });
    for (const s of state) reserved += s.floor;
    const hungry = state.filter((s) => s.hungry);
    for (const s of state) if (!s.hungry) setConcurrency(s.worker, s.floor);
    if (hungry.length === 0) return;

    // The hungry shards' equal shares of what the others do not hold.
    const avail = total() - (reserved - hungry.reduce((sum, s) => sum + s.floor, 0));
    const base = Math.floor(avail / hungry.length);
    // The remainder of an uneven split to the first shards, always the same ones:
    // passing it around would move a slot between shards at every call.
    const extra = avail - base * hungry.length;
    const shares = hungry.map((_, i) => Math.max(1, base + (i < extra ? 1 : 0)));

    // Above its share: shrinks as its jobs end. Below: grows into the free slots, evenly.
    let free = total() - reserved;
    const growing: Array<{ worker: AnyWorker; floor: number; want: number; given: number }> = [];
    hungry.forEach((s, i) => {
      if (s.floor >= shares[i]) setConcurrency(s.worker, shares[i]);
      else growing.push({ worker: s.worker, floor: s.floor, want: shares[i] - s.floor, given: 0 });
    });
    let open = growing.filter((g) => g.want > 0);
    while (free > 0 && open.length > 0) {
      const each = Math.max(1, Math.floor(free / open.length));
      for (const g of open) {
        const take = Math.min(each, g.want, free);
        g.given += take;
        g.want -= take;
        free -= take;
      }
      open = open.filter((g) => g.want > 0);
    }
    for (const g of growing) setConcurrency(g.worker, g.floor + g.given);
  }

  return {
    total,
    add(shard) {
      shards.push(shard);
      shard.worker().concurrency = 1;
      rebalance();
    },
    retire(worker) {
      retired.add(worker);
    },
    forget(worker) {
      retired.delete(worker);
      rebalance();
    },
    schedule() {
      if (scheduled) return;
      scheduled = true;
      setImmediate(rebalance);
    },
    rebalance,
    start() {
      timer ??= setInterval(rebalance, opts.intervalMs ?? 250);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
