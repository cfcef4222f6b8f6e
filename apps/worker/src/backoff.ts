import type { BackoffStrategy } from 'bullmq';
import { MAX_RETRY_DELAY_MS } from '@hookline/domain';

/**
 * Thrown by the BullMQ adapter (worker.ts) when the deliverer says a failed
 * attempt is to be tried again: BullMQ moves the job to `delayed`, and the
 * backoff strategy below reads the delay from here. BullMQ calls a backoff
 * strategy only for a thrown error, so this error is how the delay the
 * deliverer computed (from the attempt number in PostgreSQL and the answer's
 * `Retry-After`) reaches it.
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
