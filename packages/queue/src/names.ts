// Queue and job names. These strings are keys in Redis: changing one strands
// every job already queued under the old name, so never change a value without
// a migration plan (drain the old queue first).

/** Every callback attempt, first tries and retries (delayed jobs) alike. */
export const DELIVERY_QUEUE = 'hookline-deliveries';
export const DELIVER_JOB = 'deliver';

/** Name of the custom backoff strategy registered by the worker (see apps/worker/src/backoff.ts). */
export const DELIVERY_BACKOFF = 'hookline-schedule';

export const ALL_QUEUES = [DELIVERY_QUEUE] as const;

// Job priorities (BullMQ: a job without priority is taken before any with one;
// among prioritized jobs, lower numbers first). Stored on each job in Redis.
/** A delivery that was held back (endpoint isolation) and woken: it already waited its turn. */
export const HELD_PRIORITY = 0;
/** A delivery's first attempt, and one-off attempts the API waits on. */
export const FIRST_ATTEMPT_PRIORITY = 1;
/** A scheduled retry: never ahead of anyone's first attempt. */
export const RETRY_PRIORITY = 2;
