import type { RedisClient } from './connection';
import { createDeliveryQueue } from './delivery-queue';

// Whose queues these are. Two Hookline installations (two databases) given the
// same QUEUE_PREFIX on one Redis would take each other's jobs, and each would
// drop the other's as "delivery not found". So the first worker to use a
// prefix writes its database's installation id (a random id a migration put in
// the `installation` table) into `<QUEUE_PREFIX>:installation`, and a worker of
// any other database refuses to start on that prefix.
//
// The same hash remembers the largest DELIVERY_QUEUE_SHARDS in use, so that
// workers started with a smaller count still drain the shards beyond it.

export const installationKey = (prefix: string) => `${prefix}:installation`;

export class QueueOwnedElsewhereError extends Error {
  constructor(prefix: string) {
    super(`QUEUE_PREFIX "${prefix}" on this Redis holds the queues of another Hookline installation (another database); give each installation its own QUEUE_PREFIX`);
    this.name = 'QueueOwnedElsewhereError';
  }
}

/**
 * Writes this installation's id under the prefix when none is there (a new
 * prefix, or a Redis that lost its data), and throws QueueOwnedElsewhereError
 * when another installation's is. Resolves to true when this call wrote the
 * mark: on a running installation that means Redis lost its data (restarted
 * empty, flushed), queued jobs included, and exactly one caller learns it.
 */
export async function claimQueuePrefix(redis: RedisClient, prefix: string, installationId: string): Promise<boolean> {
  const key = installationKey(prefix);
  const wrote = (await redis.hsetnx(key, 'id', installationId)) === 1;
  const owner = await redis.hget(key, 'id');
  if (owner !== null && owner !== installationId) throw new QueueOwnedElsewhereError(prefix);
  return wrote;
}

/** The job states that mean "still to be run" (a shard holding any is not drained yet). */
const UNFINISHED = ['waiting', 'prioritized', 'delayed', 'active', 'waiting-children'] as const;

/**
 * Shard numbers at or past `count` that still hold unfinished jobs (the count
 * was larger before): the worker serves them too until they are empty. Records
 * the largest shard count still needed, for the next worker to start.
 */
export async function drainingShards(redis: RedisClient, prefix: string, count: number): Promise<number[]> {
  const key = installationKey(prefix);
  const recorded = Number((await redis.hget(key, 'shards')) ?? 0);
  const draining: number[] = [];
  for (let shard = count; shard < recorded; shard += 1) {
    const queue = createDeliveryQueue(redis, prefix, shard);
    try {
      const counts = await queue.getJobCounts(...UNFINISHED);
      if (Object.values(counts).some((n) => n > 0)) draining.push(shard);
    } finally {
      await queue.close();
    }
  }
  const needed = Math.max(count, ...draining.map((shard) => shard + 1));
  await redis.hset(key, 'shards', String(needed));
  return draining;
}
