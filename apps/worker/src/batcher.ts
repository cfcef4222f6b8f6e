// Coalesces concurrent single-item calls into one multi-item call. With
// hundreds of deliveries in flight, one statement for the deliveries that
// finished in the same instant costs PostgreSQL one round trip and one commit
// instead of dozens; with little traffic a call runs alone, at once.

export type BatcherOptions<I, O> = {
  /** Runs a batch; resolves to one result per item, in order. */
  run(items: I[]): Promise<O[]>;
  maxBatch: number;
  /** Batches running at once; calls arriving meanwhile wait and go out together. */
  maxInFlight: number;
  /** Items with the same key never share a batch (e.g. two updates of one row). */
  key?(item: I): string;
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

  function flush(): void {
    scheduled = false;
    while (inFlight < opts.maxInFlight && queue.length > 0) {
      const batch = takeBatch();
      inFlight += 1;
      opts
        .run(batch.map((p) => p.item))
        .then(
          (results) => batch.forEach((p, i) => p.resolve(results[i])),
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
    // End of this turn of the event loop: everything queued in the same turn goes together.
    setImmediate(flush);
  }

  return (item: I) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      schedule();
    });
}
