// Queue and job names. These strings are keys in Redis: changing one strands
// every job already queued under the old name, so never change a value without
// a migration plan (drain the old queue first).

/** Every callback attempt, first tries and retries (delayed jobs) alike. */
export const DELIVERY_QUEUE = 'hookline-deliveries';
export const DELIVER_JOB = 'deliver';

/** Name of the custom backoff strategy registered by the worker (see apps/worker/src/backoff.ts). */
export const DELIVERY_BACKOFF = 'hookline-schedule';

export const ALL_QUEUES = [DELIVERY_QUEUE] as const;
