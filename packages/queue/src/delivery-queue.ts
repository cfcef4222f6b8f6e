import { randomBytes } from 'node:crypto';
import { Queue, type JobsOptions } from 'bullmq';
import type IORedis from 'ioredis';
import { DELIVER_JOB, DELIVERY_BACKOFF, DELIVERY_QUEUE, FIRST_ATTEMPT_PRIORITY, HELD_PRIORITY } from './names';
import type { DeliverJobData } from './jobs';

export type DeliveryQueue = Queue<DeliverJobData>;

/**
 * Default job options, in one place. `attempts` is only a ceiling: the worker
 * decides from the delivery row whether another try is due, throws a
 * RetryLaterError carrying the delay when it is, and ends the job with
 * UnrecoverableError on a final outcome.
 */
export const DELIVERY_JOB_OPTIONS: JobsOptions = {
  attempts: 12,
  backoff: { type: DELIVERY_BACKOFF },
  removeOnComplete: { age: 3_600, count: 10_000 },
  removeOnFail: { age: 7 * 86_400 },
};

export function createDeliveryQueue(connection: IORedis, prefix: string): DeliveryQueue {
  const queue = new Queue<DeliverJobData>(DELIVERY_QUEUE, { connection, prefix, defaultJobOptions: DELIVERY_JOB_OPTIONS });
  // Without a listener BullMQ prints every reconnection error during a Redis outage;
  // callers see the failure on the command that needed Redis (and the relay covers it).
  queue.on('error', () => undefined);
  return queue;
}

/**
 * One job per delivery, `jobId` = delivery id, so enqueuing twice is harmless.
 * Throws when Redis is unreachable; callers leave the rows to the relay then.
 * A first attempt goes ahead of every scheduled retry (RETRY_PRIORITY); a
 * one-off attempt (test send, manual retry) goes ahead of both, since a person
 * is waiting for it.
 */
export async function enqueueDeliveries(
  queue: DeliveryQueue,
  deliveryIds: string[],
  opts: { once?: boolean; delayMs?: number; priority?: number } = {},
): Promise<void> {
  if (deliveryIds.length === 0) return;
  await queue.addBulk(
    deliveryIds.map((deliveryId) => ({
      name: DELIVER_JOB,
      data: opts.once ? { deliveryId, once: true } : { deliveryId },
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
