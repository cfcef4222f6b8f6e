import { UnrecoverableError } from 'bullmq';
import { MAX_RETRY_DELAY_MS, parseSchedule } from '@hookline/domain';
import { deliveryBackoffStrategy, retryDelayMs, RetryLaterError, unexpectedErrorDelayMs } from '../src/backoff';

const MIN = 60_000;
const schedule = parseSchedule('5m,10m,20m,40m,80m')!;

describe('retryDelayMs', () => {
  it('follows the default schedule, then doubles, capped at 24 h', () => {
    const delays = Array.from({ length: 12 }, (_, i) => retryDelayMs({ schedule, retryNumber: i + 1 }));
    expect(delays.map((ms) => ms / MIN)).toEqual([5, 10, 20, 40, 80, 160, 320, 640, 1280, 1440, 1440, 1440]);
    expect(retryDelayMs({ schedule, retryNumber: 500 })).toBe(MAX_RETRY_DELAY_MS);
  });

  it('doubles the last entry of a custom schedule', () => {
    const short = [300, 600, 1200];
    expect([1, 2, 3, 4, 5].map((retryNumber) => retryDelayMs({ schedule: short, retryNumber }))).toEqual([300, 600, 1200, 2400, 4800]);
  });

  it('honours Retry-After but never sooner than the schedule', () => {
    expect(retryDelayMs({ schedule, retryNumber: 1, retryAfterMs: 30_000 })).toBe(5 * MIN);
    expect(retryDelayMs({ schedule, retryNumber: 1, retryAfterMs: 0 })).toBe(5 * MIN);
    expect(retryDelayMs({ schedule, retryNumber: 1, retryAfterMs: 7 * MIN })).toBe(7 * MIN);
    expect(retryDelayMs({ schedule, retryNumber: 2, retryAfterMs: null })).toBe(10 * MIN);
  });

  it('caps Retry-After at 24 h', () => {
    expect(retryDelayMs({ schedule, retryNumber: 1, retryAfterMs: 3 * 86_400_000 })).toBe(MAX_RETRY_DELAY_MS);
  });
});

describe('deliveryBackoffStrategy', () => {
  it('returns the delay carried by a RetryLaterError, whatever BullMQ counted', () => {
    expect(deliveryBackoffStrategy(1, 'hookline-schedule', new RetryLaterError(1234))).toBe(1234);
    expect(deliveryBackoffStrategy(9, 'hookline-schedule', new RetryLaterError(5 * MIN))).toBe(5 * MIN);
  });

  it('reads a delay from an error that crossed a module boundary (duck-typed)', () => {
    const foreign = Object.assign(new Error('retry'), { delayMs: 4321 });
    expect(deliveryBackoffStrategy(1, 'hookline-schedule', foreign)).toBe(4321);
  });

  it('never returns more than 24 h', () => {
    expect(deliveryBackoffStrategy(1, 'hookline-schedule', new RetryLaterError(10 * MAX_RETRY_DELAY_MS))).toBe(MAX_RETRY_DELAY_MS);
  });

  it('retries an unexpected error soon, growing to at most a minute', () => {
    expect(deliveryBackoffStrategy(1, 'hookline-schedule', new Error('database down'))).toBe(1_000);
    expect(deliveryBackoffStrategy(3, 'hookline-schedule', new Error('database down'))).toBe(4_000);
    expect(deliveryBackoffStrategy(30, 'hookline-schedule', new Error('database down'))).toBe(60_000);
    expect(unexpectedErrorDelayMs(0)).toBe(1_000);
  });

  it('RetryLaterError is not an UnrecoverableError (BullMQ must retry it)', () => {
    const err = new RetryLaterError(10);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    expect(err.name).toBe('RetryLaterError');
    expect(err.message).toBe('retry in 10 ms');
  });
});
