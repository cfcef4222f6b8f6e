import { formatDuration, parseDuration, parseSchedule } from '../src/durations';
import { MAX_RETRY_DELAY_MS, scheduledRetryDelay } from '../src/delivery-policy';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['3d', 259_200_000],
    ['1.5s', 1_500],
    ['0s', 0],
    [' 10s ', 10_000],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '10', 's', '5 m', '5M', '-5s', '1w', '5m10s', '1e3ms', 'abc', '.5s'])('%p is not a duration', (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe('parseSchedule', () => {
  it('parses the contract default', () => {
    expect(parseSchedule('5m,10m,20m,40m,80m')).toEqual([300_000, 600_000, 1_200_000, 2_400_000, 4_800_000]);
  });

  it('parses one entry and tolerates spaces around entries', () => {
    expect(parseSchedule('30s')).toEqual([30_000]);
    expect(parseSchedule('1s, 2s')).toEqual([1_000, 2_000]);
  });

  it.each(['', '5m,', ',5m', '5m,,10m', '5m,0s', '5m,soon'])('%p is refused', (text) => {
    expect(parseSchedule(text)).toBeNull();
  });
});

describe('formatDuration', () => {
  it.each([
    [500, '500ms'],
    [1_000, '1s'],
    [90_000, '90s'],
    [300_000, '5m'],
    [7_200_000, '2h'],
    [259_200_000, '3d'],
    [1_500, '1500ms'],
  ])('%d → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [1, 999, 1_000, 61_000, 3_600_000, 86_400_000, 123_456]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});

describe('scheduledRetryDelay', () => {
  const schedule = [300_000, 600_000, 1_200_000, 2_400_000, 4_800_000];

  it('follows the schedule, then doubles the last delay, capped at 24 h', () => {
    expect([1, 2, 3, 4, 5].map((n) => scheduledRetryDelay(schedule, n))).toEqual(schedule);
    expect(scheduledRetryDelay(schedule, 6)).toBe(9_600_000);
    expect(scheduledRetryDelay(schedule, 7)).toBe(19_200_000);
    expect(scheduledRetryDelay(schedule, 8)).toBe(38_400_000);
    expect(scheduledRetryDelay(schedule, 9)).toBe(76_800_000);
    expect(scheduledRetryDelay(schedule, 10)).toBe(MAX_RETRY_DELAY_MS);
    expect(scheduledRetryDelay(schedule, 1_000)).toBe(MAX_RETRY_DELAY_MS);
  });

  it('caps a schedule entry above 24 h', () => {
    expect(scheduledRetryDelay([2 * MAX_RETRY_DELAY_MS], 1)).toBe(MAX_RETRY_DELAY_MS);
  });

  it('is never decreasing', () => {
    let previous = 0;
    for (let n = 1; n < 60; n++) {
      const delay = scheduledRetryDelay([1_000, 500], n);
      if (n > 2) expect(delay).toBeGreaterThanOrEqual(previous);
      previous = delay;
    }
  });
});
