import { createBatcher, unwrapSettled, type Settled } from '../src/batcher';

// Pure logic: a recording `run` stands in for the SQL statement.

function recorder<I>(answer: (item: I) => unknown = (item) => item) {
  const batches: I[][] = [];
  const gates: Array<() => void> = [];
  let hold = false;
  return {
    batches,
    holdNext() {
      hold = true;
    },
    release() {
      gates.splice(0).forEach((open) => open());
    },
    run: async (items: I[]) => {
      batches.push(items);
      if (hold) {
        hold = false;
        await new Promise<void>((open) => gates.push(open));
      }
      return items.map(answer);
    },
  };
}

describe('createBatcher', () => {
  it('runs calls made in the same turn as one batch and answers each with its own result', async () => {
    const r = recorder<number>((n) => n * 10);
    const call = createBatcher({ run: r.run, maxBatch: 100, maxInFlight: 2 });
    const results = await Promise.all([1, 2, 3].map((n) => call(n)));
    expect(results).toEqual([10, 20, 30]);
    expect(r.batches).toEqual([[1, 2, 3]]);
  });

  it('runs a lone call at once, alone', async () => {
    const r = recorder<string>();
    const call = createBatcher({ run: r.run, maxBatch: 100, maxInFlight: 2 });
    expect(await call('a')).toBe('a');
    expect(await call('b')).toBe('b');
    expect(r.batches).toEqual([['a'], ['b']]);
  });

  it('with lingerMs, waits that long for company: calls of several turns go out together', async () => {
    const r = recorder<number>();
    const call = createBatcher({ run: r.run, maxBatch: 100, maxInFlight: 2, lingerMs: 40 });
    const first = call(1);
    // Time itself: the second call comes a little later, within the linger.
    await new Promise((resolve) => setTimeout(resolve, 10));
    const second = call(2);
    expect(r.batches).toEqual([]);
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(r.batches).toEqual([[1, 2]]);
  });

  it('with lingerMs, a full batch goes out at once', async () => {
    const r = recorder<number>();
    const call = createBatcher({ run: r.run, maxBatch: 3, maxInFlight: 2, lingerMs: 60_000 });
    const started = Date.now();
    expect(await Promise.all([1, 2, 3].map((n) => call(n)))).toEqual([1, 2, 3]);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(r.batches).toEqual([[1, 2, 3]]);
  });

  it('splits at maxBatch', async () => {
    const r = recorder<number>();
    const call = createBatcher({ run: r.run, maxBatch: 2, maxInFlight: 10 });
    await Promise.all([1, 2, 3, 4, 5].map((n) => call(n)));
    expect(r.batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('holds calls while maxInFlight batches run, then sends them together', async () => {
    const r = recorder<number>();
    const call = createBatcher({ run: r.run, maxBatch: 100, maxInFlight: 1 });
    r.holdNext();
    const first = call(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.batches).toEqual([[1]]);
    const later = [call(2), call(3)];
    // Time itself: nothing is sent while the first batch runs, however long it runs.
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(r.batches).toHaveLength(1);
    r.release();
    await first;
    expect(await Promise.all(later)).toEqual([2, 3]);
    expect(r.batches).toEqual([[1], [2, 3]]);
  });

  it('never puts two items with the same key in one batch', async () => {
    const r = recorder<{ id: string; n: number }>((item) => item.n);
    const call = createBatcher({ run: r.run, maxBatch: 100, maxInFlight: 1, key: (item) => item.id });
    const results = await Promise.all([{ id: 'a', n: 1 }, { id: 'b', n: 2 }, { id: 'a', n: 3 }].map((item) => call(item)));
    expect(results).toEqual([1, 2, 3]);
    expect(r.batches.map((batch) => batch.map((item) => item.n))).toEqual([[1, 2], [3]]);
  });

  it('a failed batch rejects its own calls only', async () => {
    let calls = 0;
    const call = createBatcher<number, number>({
      maxBatch: 2,
      maxInFlight: 5,
      async run(items) {
        calls += 1;
        if (calls === 1) throw new Error('database down');
        return items;
      },
    });
    const outcomes = await Promise.allSettled([1, 2, 3].map((n) => call(n)));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect((outcomes[0] as PromiseRejectedResult).reason.message).toBe('database down');
  });

  it('rejects a synchronous throw of run as a failed batch and keeps serving later calls', async () => {
    let fail = true;
    const call = createBatcher<number, number>({
      run(items) {
        if (fail) throw new Error('thrown');
        return Promise.resolve(items);
      },
      maxBatch: 10,
      maxInFlight: 1,
    });
    const thrown = await Promise.allSettled([call(1), call(2)]);
    expect(thrown.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    expect(await Promise.all([call(3), call(4)])).toEqual([3, 4]);
  });

  it('rejects an item the batch gave no result for instead of leaving it hanging (undefined is a result)', async () => {
    const call = createBatcher<number, number | undefined>({ run: async (items) => items.slice(1).map(() => undefined), maxBatch: 10, maxInFlight: 1 });
    const outcomes = await Promise.allSettled([call(1), call(2)]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: undefined });
    expect(outcomes[1]).toEqual({ status: 'rejected', reason: new Error('the batch returned no result for this item') });
  });

  it('with unwrapSettled, answers each item with its own outcome', async () => {
    const call = unwrapSettled(
      createBatcher<number, Settled<number>>({
        run: async (items) => items.map((n): Settled<number> => (n < 0 ? { ok: false, error: new Error(`negative ${n}`) } : { ok: true, value: n * 10 })),
        maxBatch: 100,
        maxInFlight: 1,
      }),
    );
    const outcomes = await Promise.allSettled([call(1), call(-2), call(3)]);
    expect(outcomes).toEqual([
      { status: 'fulfilled', value: 10 },
      { status: 'rejected', reason: new Error('negative -2') },
      { status: 'fulfilled', value: 30 },
    ]);
  });
});
