import { UnrecoverableError } from 'bullmq';
import { MAX_RETRY_DELAY_MS } from '@hookline/domain';
import { deliveryBackoffStrategy, RetryLaterError, unexpectedErrorDelayMs } from '../src/backoff';

const MIN = 60_000;

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
