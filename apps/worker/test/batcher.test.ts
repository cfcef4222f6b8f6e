import { createBatcher } from '../src/batcher';

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
    async run(items: I[]) {
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
});
