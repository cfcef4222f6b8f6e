import type { DeliveryQueue, RedisClient } from '@hookline/queue';

// Where a job ran, after the fact. A completed delivery job is deleted at once
// (DELIVERY_JOB_OPTIONS), so its state reads 'unknown' everywhere; its queue's
// BullMQ event stream still says it completed there.

const says = (fields: string[], name: string, value: string) => {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name && fields[i + 1] === value) return true;
  return false;
};

/** Whether `queue`'s event stream (read through `redis`, where the queue lives) records that job `jobId` completed. */
export async function completedIn(redis: RedisClient, queue: DeliveryQueue, jobId: string): Promise<boolean> {
  const entries = await redis.xrange(queue.keys.events, '-', '+');
  return entries.some(([, fields]) => says(fields, 'event', 'completed') && says(fields, 'jobId', jobId));
}

/** The indexes of the shards whose event stream records that job `jobId` completed. */
export async function shardsThatCompleted(redis: RedisClient, shards: readonly DeliveryQueue[], jobId: string): Promise<number[]> {
  const found: number[] = [];
  for (const [i, queue] of shards.entries()) if (await completedIn(redis, queue, jobId)) found.push(i);
  return found;
}
