import { createMicroBatcher, type Settled } from '../src/services/micro-batcher';

// Pure logic: a recording `run` stands in for the SQL statements.

function recorder<I, O>(answer: (item: I) => Settled<O>) {
  const batches: I[][] = [];
  const gates: Array<() => void> = [];
  let running = 0;
  let maxRunning = 0;
  let hold = false;
  return {
    batches,
    get maxRunning() {
      return maxRunning;
    },
    holdAll() {
      hold = true;
    },
    release() {
      hold = false;
      gates.splice(0).forEach((open) => open());
    },
    async run(items: I[]): Promise<Settled<O>[]> {
      batches.push(items);
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      try {
        if (hold) await new Promise<void>((open) => gates.push(open));
        return items.map(answer);
      } finally {
        running -= 1;
      }
    },
  };
}

const ok = <O>(value: O): Settled<O> => ({ ok: true, value });
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('createMicroBatcher', () => {
  it('runs the calls of one turn as one batch and answers each with its own outcome', async () => {
    const r = recorder<number, number>((n) => (n < 0 ? { ok: false, error: new Error(`negative ${n}`) } : ok(n * 10)));
    const call = createMicroBatcher({ run: (items: number[]) => r.run(items), maxBatch: 100, maxInFlight: 1 });

    const outcomes = await Promise.allSettled([call(1), call(-2), call(3)]);

    expect(r.batches).toEqual([[1, -2, 3]]);
    expect(outcomes).toEqual([
      { status: 'fulfilled', value: 10 },
      { status: 'rejected', reason: new Error('negative -2') },
      { status: 'fulfilled', value: 30 },
    ]);
  });

  it('collects the calls made while batches run into the next batch, never exceeding maxInFlight or maxBatch', async () => {
    const r = recorder<number, number>((n) => ok(n));
    const call = createMicroBatcher({ run: (items: number[]) => r.run(items), maxBatch: 3, maxInFlight: 2 });
    r.holdAll();

    const first = [call(1), call(2), call(3), call(4)];
    await tick();
    // 1–3 fill one batch, 4 starts the second: both slots are busy now.
    expect(r.batches).toEqual([[1, 2, 3], [4]]);
    const later = [5, 6, 7, 8, 9].map((n) => call(n));
    await tick();
    expect(r.batches).toHaveLength(2);

    r.release();
    expect(await Promise.all([...first, ...later])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(r.batches.slice(2)).toEqual([[5, 6, 7], [8, 9]]);
    expect(r.maxRunning).toBe(2);
  });

  it('fails every item of a batch whose run rejects or throws, and keeps serving later calls', async () => {
    let mode: 'reject' | 'throw' | 'ok' = 'reject';
    const call = createMicroBatcher<number, number>({
      run(items) {
        if (mode === 'throw') throw new Error('thrown');
        if (mode === 'reject') return Promise.reject(new Error('rejected'));
        return Promise.resolve(items.map(ok));
      },
      maxBatch: 10,
      maxInFlight: 1,
    });

    await expect(Promise.all([call(1), call(2)])).rejects.toThrow('rejected');
    mode = 'throw';
    const thrown = await Promise.allSettled([call(3), call(4)]);
    expect(thrown.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    mode = 'ok';
    expect(await Promise.all([call(5), call(6)])).toEqual([5, 6]);
  });

  it('rejects an item the batch gave no outcome for instead of leaving it hanging', async () => {
    const call = createMicroBatcher<number, number>({ run: async (items) => items.slice(1).map(ok), maxBatch: 10, maxInFlight: 1 });
    const outcomes = await Promise.allSettled([call(1), call(2)]);
    expect(outcomes[0].status).toBe('fulfilled');
    expect(outcomes[1]).toEqual({ status: 'rejected', reason: new Error('the batch returned no outcome for this item') });
  });
});
