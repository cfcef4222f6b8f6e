import { DELIVERY_QUEUE, FIRST_ATTEMPT_PRIORITY, RETRY_PRIORITY } from './names';
import type { DeliveryQueue } from './delivery-queue';
import type { RedisClient } from './connection';

// Delivery lag, the fleet's autoscaling signal: per shard, how long the oldest
// delivery that is due has been waiting to start. Read at scrape time from
// the heads of the shard's lines in Redis (one script, a handful of commands,
// no scan), so it costs the same with ten jobs queued or ten million.
//
// What must stay true: a delivery held back by endpoint isolation (its
// webhook's in-flight cap, rate limit or open circuit) is not lag. It sits in
// BullMQ's `delayed` set until its time, and a delayed job counts only once
// that time has passed; when it is woken or comes due, it counts from then,
// not from when it was created. So a fleet whose customers' endpoints are down
// does not scale out for nothing, while a backlog of due work is seen at once.

/**
 * Job hash field (ms since the epoch): when the job became due again after it
 * was held or scheduled for a retry. Written by the worker; a job without it
 * has been due since it was created (BullMQ's `timestamp`).
 */
export const READY_AT_FIELD = 'hookline_ready_at';

/** The priority lanes of `prioritized`; HELD_PRIORITY (0) jobs are in the `wait` list. */
const PRIORITY_LANES = [FIRST_ATTEMPT_PRIORITY, RETRY_PRIORITY] as const;

// KEYS: wait, prioritized, delayed. ARGV: now (ms), the job key prefix, the priority lanes.
// wait: BullMQ pushes on the left and takes from the right, so the oldest is at -1.
// prioritized: score = priority * 2^32 + an insertion counter, so each lane's first is its oldest.
// delayed: score = due time (ms) * 4096 + a counter; its first is due when that time has passed.
const OLDEST_DUE_SCRIPT = `
local now = tonumber(ARGV[1])
local jobPrefix = ARGV[2]
local oldest = nil
local function consider(t)
  if t ~= nil and (oldest == nil or t < oldest) then oldest = t end
end
local function readySince(id)
  local f = redis.call('HMGET', jobPrefix .. id, '${READY_AT_FIELD}', 'timestamp')
  return tonumber(f[1]) or tonumber(f[2])
end
local head = redis.call('LINDEX', KEYS[1], -1)
if head then consider(readySince(head)) end
for i = 3, #ARGV do
  local p = tonumber(ARGV[i])
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], p * 4294967296, (p + 1) * 4294967296 - 1, 'LIMIT', 0, 1)
  if ids[1] then consider(readySince(ids[1])) end
end
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if first[1] then
  local due = math.floor(tonumber(first[2]) / 4096)
  if due <= now then consider(due) end
end
if oldest == nil then return -1 end
return oldest
`;

// Writes the field only while the job exists: a job that finished meanwhile must not come back as a stray hash.
const MARK_SCRIPT = `if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0`;

/** The shard number of a delivery queue, from its name (shardQueueName). */
export function shardIndexOf(queue: Pick<DeliveryQueue, 'name'>): number {
  if (queue.name === DELIVERY_QUEUE) return 0;
  return Number(queue.name.slice(DELIVERY_QUEUE.length + 1));
}

/** Seconds the oldest due delivery of this shard has waited to start (0 when none waits), read through `redis`. */
export async function shardLagSeconds(redis: RedisClient, queue: Pick<DeliveryQueue, 'toKey'>, now = Date.now()): Promise<number> {
  const oldest = Number(
    await redis.eval(OLDEST_DUE_SCRIPT, 3, queue.toKey('wait'), queue.toKey('prioritized'), queue.toKey('delayed'), now, queue.toKey(''), ...PRIORITY_LANES),
  );
  return oldest < 0 ? 0 : Math.max(0, now - oldest) / 1000;
}

/** Records when a held or retried job becomes due (see READY_AT_FIELD). */
export async function markReadyAt(redis: RedisClient, queue: Pick<DeliveryQueue, 'toKey'>, jobId: string, at: number): Promise<void> {
  await redis.eval(MARK_SCRIPT, 1, queue.toKey(jobId), READY_AT_FIELD, Math.round(at));
}
