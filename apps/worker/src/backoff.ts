import type { BackoffStrategy } from 'bullmq';
import { MAX_RETRY_DELAY_MS, scheduledRetryDelay } from '@hookline/domain';

/**
 * Delay before retry number `retryNumber` (1-based): the RETRY_SCHEDULE entry
 * (doubling past its end), and for a `Retry-After` the later of the two —
 * never sooner than the schedule, never later than 24 h.
 */
export function retryDelayMs(opts: { schedule: number[]; retryNumber: number; retryAfterMs?: number | null }): number {
  const scheduled = scheduledRetryDelay(opts.schedule, Math.max(1, opts.retryNumber));
  const wanted = opts.retryAfterMs == null ? scheduled : Math.max(scheduled, opts.retryAfterMs);
  return Math.min(wanted, MAX_RETRY_DELAY_MS);
}

/**
 * Thrown by the processor when a failed attempt is to be tried again: BullMQ
 * moves the job to `delayed`, and the backoff strategy below reads the delay
 * from here. The delay is computed by the processor because only it knows the
 * attempt number (from PostgreSQL, not BullMQ's counter) and the response's
 * `Retry-After`.
 */
export class RetryLaterError extends Error {
  constructor(
    readonly delayMs: number,
    message = `retry in ${delayMs} ms`,
  ) {
    super(message);
    this.name = 'RetryLaterError';
  }
}

/** Growing delay for an unexpected error (e.g. PostgreSQL down): 1 s, 2 s, 4 s … at most 1 min. */
export function unexpectedErrorDelayMs(attemptsMade: number): number {
  return Math.min(1_000 * 2 ** Math.min(Math.max(attemptsMade - 1, 0), 6), 60_000);
}

/**
 * The custom backoff registered under DELIVERY_BACKOFF. BullMQ calls it with
 * its own attempt counter, which we ignore for scheduled retries: the delay
 * travels on the error. Anything else the processor threw was unexpected and
 * is retried soon; the delivery row still says what is due.
 */
export const deliveryBackoffStrategy: BackoffStrategy = (attemptsMade, _type, err) => {
  const delayMs = (err as { delayMs?: unknown } | undefined)?.delayMs;
  if (err instanceof RetryLaterError || (typeof delayMs === 'number' && Number.isFinite(delayMs) && delayMs >= 0)) {
    return Math.min(Number(delayMs), MAX_RETRY_DELAY_MS);
  }
  return unexpectedErrorDelayMs(attemptsMade);
};
