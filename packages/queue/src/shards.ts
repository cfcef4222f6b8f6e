import { isCluster, type RedisClient } from './connection';
import { DELIVERY_QUEUE } from './names';

// Delivery queue shards. DELIVERY_QUEUE_SHARDS BullMQ queues share the
// deliveries; a webhook's deliveries always go to one shard (a stable hash of
// its id), so a webhook's line, slots and parked jobs stay in one queue.
//
// A shard's keys depend on its number only, never on the shard count: after
// the count changes, an old shard is still found where it was (workers drain
// it, see queue-owner.ts). Shard 0 on one server keeps the keys of the single
// queue Hookline had before shards (`<QUEUE_PREFIX>:hookline-deliveries:…`).
// On a Redis Cluster every key of one shard carries the hash tag
// `{<QUEUE_PREFIX>:<n>}` (BullMQ's scripts need all of a queue's keys in one
// slot), and different shards get different tags, so they spread over the masters.

export const MAX_DELIVERY_QUEUE_SHARDS = 256;
export const DEFAULT_SHARDS = { server: 1, cluster: 16 } as const;

/** The BullMQ queue name of shard `index`; these strings are Redis keys (see names.ts). */
export const shardQueueName = (index: number): string => (index === 0 ? DELIVERY_QUEUE : `${DELIVERY_QUEUE}-${index}`);

/** The BullMQ prefix of shard `index`: a hash tag of its own on a cluster. */
export const shardPrefix = (prefix: string, index: number, cluster: boolean): string => (cluster ? `{${prefix}:${index}}` : prefix);

/**
 * FNV-1a (32 bit) of the webhook id, modulo the shard count: the same on every
 * process and every version, which is all that matters here.
 */
export function shardOf(webhookId: string, count: number): number {
  if (count <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < webhookId.length; i += 1) {
    hash ^= webhookId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** DELIVERY_QUEUE_SHARDS as configured, or the topology's default (16 on a cluster, else 1). */
export function shardCount(configured: number | undefined, redis: RedisClient): number {
  return configured ?? (isCluster(redis) ? DEFAULT_SHARDS.cluster : DEFAULT_SHARDS.server);
}
