// Coalesces concurrent single-item calls into one multi-item call. Under load,
// the requests that arrive while a batch is running go out together as the
// next batch, so a few statements serve dozens of requests; with little
// traffic a call runs alone, at once (no timer, no added latency).

export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

export type MicroBatcherOptions<I, O> = {
  /** Runs a batch; resolves to one outcome per item, in order. A rejection fails every item of the batch. */
  run(items: I[]): Promise<Settled<O>[]>;
  maxBatch: number;
  /** Batches running at once; calls arriving meanwhile wait and go out together. */
  maxInFlight: number;
};

type Pending<I, O> = { item: I; resolve(value: O): void; reject(err: unknown): void };

export function createMicroBatcher<I, O>(opts: MicroBatcherOptions<I, O>): (item: I) => Promise<O> {
  let queue: Pending<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;

  function settle(batch: Pending<I, O>[], outcomes: Settled<O>[]): void {
    batch.forEach((pending, i) => {
      const outcome = outcomes[i];
      if (!outcome) pending.reject(new Error('the batch returned no outcome for this item'));
      else if (outcome.ok) pending.resolve(outcome.value);
      else pending.reject(outcome.error);
    });
  }

  function flush(): void {
    scheduled = false;
    while (inFlight < opts.maxInFlight && queue.length > 0) {
      const batch = queue.length <= opts.maxBatch ? queue : queue.slice(0, opts.maxBatch);
      queue = queue.length <= opts.maxBatch ? [] : queue.slice(opts.maxBatch);
      inFlight += 1;
      // `then` before `run` starts: a synchronous throw in run must reject the batch, not escape flush.
      Promise.resolve()
        .then(() => opts.run(batch.map((p) => p.item)))
        .then(
          (outcomes) => settle(batch, outcomes),
          (err) => batch.forEach((p) => p.reject(err)),
        )
        .finally(() => {
          inFlight -= 1;
          if (queue.length > 0) schedule();
        });
    }
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    // After this turn's I/O callbacks: the requests parsed in the same turn share the batch.
    setImmediate(flush);
  }

  return (item: I) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      schedule();
    });
}
