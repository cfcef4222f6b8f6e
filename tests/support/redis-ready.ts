import type { RedisClient } from '@hookline/queue';

/**
 * Waits until a harness's producer connection is connected. That connection
 * fails commands at once until then, and the failed-credential limits fail
 * open meanwhile: a test that counts failures starts from a connected Redis.
 */
export async function redisReady(h: { redis: RedisClient }): Promise<void> {
  if (h.redis.status === 'ready') return;
  await new Promise<void>((ready) => h.redis.once('ready', () => ready()));
}
