import type { DeliveryQueue, RedisClient } from '@hookline/queue';
import type { KnownOutcome } from './deliver';
import type { OutcomeStore } from './run-job';

// The outcome journal in Redis: an attempt that was sent and answered but that
// PostgreSQL did not take at once (deliver/record.ts) is kept under its job's
// key, in the job's shard (`<job key>:outcome`). If the worker dies before the
// attempt is recorded, BullMQ's stalled check gives the job to another worker,
// whose run finds the entry and records the attempt instead of sending the
// callback again (deliver.ts). The entry is removed once the attempt is
// recorded; the expiry is for an entry whose job never ran again.

/** How long an entry outlives a job that never comes back. */
export const OUTCOME_TTL_MS = 24 * 60 * 60_000;

const keyOf = (queue: DeliveryQueue, jobId: string) => queue.toKey(`${jobId}:outcome`);

/** A stored entry, read back; null for anything not of its shape (an entry is never trusted blindly). */
export function parseOutcome(text: string | null): KnownOutcome | null {
  if (!text) return null;
  try {
    const value = JSON.parse(text) as Partial<KnownOutcome>;
    const result = value.result as Partial<KnownOutcome['result']> | undefined;
    if (typeof value.attemptId !== 'string' || !Number.isInteger(value.attemptCount) || !result || typeof result.ok !== 'boolean' || typeof result.durationMs !== 'number') return null;
    return {
      attemptId: value.attemptId,
      attemptCount: value.attemptCount!,
      result: {
        ok: result.ok,
        status: typeof result.status === 'number' ? result.status : null,
        body: typeof result.body === 'string' ? result.body : null,
        error: result.error ?? null,
        durationMs: result.durationMs,
        retryAfterMs: typeof result.retryAfterMs === 'number' ? result.retryAfterMs : null,
      },
    };
  } catch {
    return null;
  }
}

export function redisOutcomes(redis: Pick<RedisClient, 'set' | 'get' | 'del'>, ttlMs = OUTCOME_TTL_MS): OutcomeStore {
  return {
    async keep(queue, jobId, outcome) {
      await redis.set(keyOf(queue, jobId), JSON.stringify(outcome), 'PX', ttlMs);
    },
    async find(queue, jobId) {
      return parseOutcome(await redis.get(keyOf(queue, jobId)));
    },
    async forget(queue, jobId) {
      await redis.del(keyOf(queue, jobId));
    },
  };
}
