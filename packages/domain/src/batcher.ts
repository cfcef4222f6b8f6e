// Coalesces concurrent single-item calls into one multi-item call. Under load,
// the calls made while a batch runs go out together as the next batch, so one
// SQL statement (one round trip, one commit) serves dozens of callers; with
// little traffic a call runs alone, at once (no timer, no added latency).
// Used by the API's event publisher and the worker's load/record statements.

/** One item's outcome, for batches whose items can fail one by one. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

export type BatcherOptions<I, O> = {
  /** Runs a batch; resolves to one result per item, in order. A rejection fails every item of the batch. */
  run(items: I[]): Promise<O[]>;
  maxBatch: number;
  /** Batches running at once; calls arriving meanwhile wait and go out together. */
  maxInFlight: number;
  /** Items with the same key never share a batch (e.g. two updates of one row). */
  key?(item: I): string;
  /**
   * Waits this long for company before a batch that is not full goes out
   * (default 0: at once). Only for work nobody waits on to answer quickly,
   * such as recording an attempt whose callback was already sent.
   */
  lingerMs?: number;
};

type Pending<I, O> = { item: I; resolve(value: O): void; reject(err: unknown): void };

export function createBatcher<I, O>(opts: BatcherOptions<I, O>): (item: I) => Promise<O> {
  let queue: Pending<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;

  function takeBatch(): Pending<I, O>[] {
    if (!opts.key) return queue.splice(0, opts.maxBatch);
    const batch: Pending<I, O>[] = [];
    const rest: Pending<I, O>[] = [];
    const keys = new Set<string>();
    for (const pending of queue) {
      const key = opts.key(pending.item);
      if (batch.length >= opts.maxBatch || keys.has(key)) rest.push(pending);
      else {
        keys.add(key);
        batch.push(pending);
      }
    }
    queue = rest;
    return batch;
  }

  function settle(batch: Pending<I, O>[], results: O[]): void {
    batch.forEach((pending, i) => {
      if (i < results.length) pending.resolve(results[i]);
      else pending.reject(new Error('the batch returned no result for this item'));
    });
  }

  function flush(): void {
    scheduled = false;
    while (inFlight < opts.maxInFlight && queue.length > 0) {
      const batch = takeBatch();
      inFlight += 1;
      // `then` before `run` starts: a synchronous throw in run must reject the batch, not escape flush.
      Promise.resolve()
        .then(() => opts.run(batch.map((p) => p.item)))
        .then(
          (results) => settle(batch, results),
          (err) => batch.forEach((p) => p.reject(err)),
        )
        .finally(() => {
          inFlight -= 1;
          if (queue.length > 0) schedule();
        });
    }
  }

  let lingering: NodeJS.Timeout | undefined;

  function schedule(): void {
    if (lingering && queue.length >= opts.maxBatch) {
      clearTimeout(lingering);
      lingering = undefined;
      scheduled = false;
    }
    if (scheduled) return;
    scheduled = true;
    if (opts.lingerMs && queue.length < opts.maxBatch) {
      lingering = setTimeout(() => {
        lingering = undefined;
        flush();
      }, opts.lingerMs);
      return;
    }
    // After this turn's I/O callbacks: everything queued in the same turn goes together.
    setImmediate(flush);
  }

  return (item: I) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      schedule();
    });
}

/** A batched call whose items fail one by one: resolves with the value or rejects with the item's error. */
export function unwrapSettled<I, O>(call: (item: I) => Promise<Settled<O>>): (item: I) => Promise<O> {
  return async (item) => {
    const outcome = await call(item);
    if (outcome.ok) return outcome.value;
    throw outcome.error;
  };
}
