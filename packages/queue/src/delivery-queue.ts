import { randomBytes } from 'node:crypto';
import { Queue, type JobsOptions } from 'bullmq';
import { isCluster, type RedisClient } from './connection';
import { DELIVER_JOB, DELIVERY_BACKOFF, FIRST_ATTEMPT_PRIORITY, HELD_PRIORITY } from './names';
import type { DeliverJobData } from './jobs';
import { shardOf, shardPrefix, shardQueueName } from './shards';

export type DeliveryQueue = Queue<DeliverJobData>;

/**
 * Default job options, in one place. `attempts` is only a ceiling: the worker
 * decides from the delivery row whether another try is due, throws a
 * RetryLaterError carrying the delay when it is, and ends the job with
 * UnrecoverableError on a final outcome.
 *
 * A completed job is deleted at once: the delivery log in PostgreSQL is the
 * record of what was sent, and keeping the last 10,000 jobs for an hour (as
 * before) cost Redis ~5 more commands per delivery (the completed set and its
 * trimming) and their memory. A failed job stays a week, for the admin view.
 */
export const DELIVERY_JOB_OPTIONS: JobsOptions = {
  attempts: 12,
  backoff: { type: DELIVERY_BACKOFF },
  removeOnComplete: true,
  removeOnFail: { age: 7 * 86_400 },
};

/** One shard's queue (shard 0 by default: the only one with DELIVERY_QUEUE_SHARDS=1). */
export function createDeliveryQueue(connection: RedisClient, prefix: string, shard = 0): DeliveryQueue {
  const queue = new Queue<DeliverJobData>(shardQueueName(shard), { connection, prefix: shardPrefix(prefix, shard, isCluster(connection)), defaultJobOptions: DELIVERY_JOB_OPTIONS });
  // Without a listener BullMQ prints every reconnection error during a Redis outage;
  // callers see the failure on the command that needed Redis (and the relay covers it).
  queue.on('error', () => undefined);
  return queue;
}

/** The delivery queue shards of one installation, on one connection. */
export type DeliveryQueues = {
  /** How many shards new deliveries are spread over (DELIVERY_QUEUE_SHARDS). */
  readonly count: number;
  /**
   * Every shard served here, by shard number: the `count` current ones, then
   * any older ones (from a larger count before) that still hold jobs.
   */
  readonly shards: readonly DeliveryQueue[];
  /** The shard every delivery of this webhook goes to. */
  forWebhook(webhookId: string): DeliveryQueue;
  close(): Promise<void>;
};

/** `count` shards, plus the older shard numbers in `draining` (each ≥ count). */
export function createDeliveryQueues(connection: RedisClient, prefix: string, count: number, draining: readonly number[] = []): DeliveryQueues {
  const indexes = [...Array.from({ length: count }, (_, i) => i), ...draining.filter((i) => i >= count)];
  const shards = indexes.map((i) => createDeliveryQueue(connection, prefix, i));
  return {
    count,
    shards,
    forWebhook: (webhookId) => shards[shardOf(webhookId, count)],
    async close() {
      await Promise.all(shards.map((queue) => queue.close()));
    },
  };
}

/** A delivery as the queues need it: its id (the job id) and its webhook (which picks the shard). */
export type DeliveryRef = { id: string; webhookId: string; traceparent?: string };

/** enqueueDeliveries over the shards: each delivery into its webhook's shard, one addBulk per shard. */
export async function enqueueToShards(queues: DeliveryQueues, deliveries: readonly DeliveryRef[], opts: EnqueueOptions = {}): Promise<void> {
  const byShard = new Map<DeliveryQueue, DeliveryRef[]>();
  for (const d of deliveries) {
    const queue = queues.forWebhook(d.webhookId);
    const refs = byShard.get(queue);
    if (refs) refs.push(d);
    else byShard.set(queue, [d]);
  }
  await Promise.all([...byShard].map(([queue, refs]) => enqueueDeliveries(queue, refs, opts)));
}

export type EnqueueOptions = { once?: boolean; delayMs?: number; priority?: number };

/**
 * One job per delivery, `jobId` = delivery id, so enqueuing twice is harmless.
 * Throws when Redis is unreachable; callers leave the rows to the relay then.
 * A first attempt goes ahead of every scheduled retry (RETRY_PRIORITY); a
 * one-off attempt (test send, manual retry) goes ahead of both, since a person
 * is waiting for it.
 */
export async function enqueueDeliveries(
  queue: DeliveryQueue,
  deliveries: readonly (string | Pick<DeliveryRef, 'id' | 'traceparent'>)[],
  opts: EnqueueOptions = {},
): Promise<void> {
  if (deliveries.length === 0) return;
  await queue.addBulk(
    deliveries.map((d) => typeof d === 'string' ? { id: d } : d).map(({ id: deliveryId, traceparent }) => ({
      name: DELIVER_JOB,
      data: { deliveryId, ...(opts.once ? { once: true } : {}), ...(traceparent ? { traceparent } : {}) },
      opts: {
        // BullMQ refuses custom ids with ':'; a random suffix keeps two manual retries in one millisecond apart.
        jobId: opts.once ? `${deliveryId}-once-${Date.now().toString(36)}${randomBytes(4).toString('hex')}` : deliveryId,
        priority: opts.priority ?? (opts.once ? HELD_PRIORITY : FIRST_ATTEMPT_PRIORITY),
        ...(opts.once ? { attempts: 1 } : {}),
        ...(opts.delayMs ? { delay: opts.delayMs } : {}),
      },
    })),
  );
}
