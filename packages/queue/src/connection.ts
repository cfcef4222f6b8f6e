import IORedis, { type RedisOptions } from 'ioredis';

export type RedisRole = 'producer' | 'worker';

/**
 * Producers fail fast (no offline queue) so an outage is seen at once and the
 * outbox relay takes over; workers wait for Redis forever, as BullMQ requires.
 */
export function redisOptions(role: RedisRole): RedisOptions {
  return role === 'worker'
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (n) => Math.min(n * 200, 2_000) }
    : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000, retryStrategy: (n) => Math.min(n * 200, 2_000) };
}

/**
 * Connection errors also surface on the commands that need Redis; `onError`
 * (a throttled log line, see throttledWarn) says why meanwhile. Without a
 * listener an 'error' event would crash the process.
 */
export function createRedis(url: string, role: RedisRole, onError: (err: Error) => void = () => undefined): IORedis {
  const redis = new IORedis(url, redisOptions(role));
  redis.on('error', onError);
  return redis;
}

export async function pingRedis(redis: IORedis, timeoutMs = 1_000): Promise<boolean> {
  const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
  return Promise.race([redis.ping().then((r) => r === 'PONG', () => false), timeout]);
}
