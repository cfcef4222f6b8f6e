import { within, withinOrNull } from '../src';

// Bounds on work that may hang (packages/domain/src/timeouts.ts).

const never = () => new Promise<number>(() => undefined);

describe('withinOrNull', () => {
  it('answers the work\'s value, null when it fails, null when it takes longer', async () => {
    expect(await withinOrNull(Promise.resolve(7), 1_000)).toBe(7);
    expect(await withinOrNull(Promise.reject(new Error('down')), 1_000)).toBeNull();
    const started = Date.now();
    expect(await withinOrNull(never(), 50)).toBeNull();
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('within', () => {
  it('answers the work\'s value, passes its failure on, and rejects with the message when it takes longer', async () => {
    expect(await within(Promise.resolve(7), 1_000, 'late')).toBe(7);
    await expect(within(Promise.reject(new Error('down')), 1_000, 'late')).rejects.toThrow('down');
    await expect(within(never(), 50, 'Redis did not answer within 50 ms')).rejects.toThrow('Redis did not answer within 50 ms');
  });
});
