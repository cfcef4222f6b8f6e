import { pingRedis, type RedisClient } from './connection';

// Readiness probe for a Redis connection. A producer connection has no offline
// queue, so a ping sent while it is still making its first connection fails at
// once; wait for that first connection (briefly) instead of reporting "down"
// for a process that has just started. A connection that is reconnecting after
// losing Redis is reported down at once.
const FIRST_CONNECT = new Set(['wait', 'connecting', 'connect']);

export async function probeRedis(redis: RedisClient, timeoutMs = 1_000): Promise<boolean> {
  if (FIRST_CONNECT.has(redis.status)) {
    const ready = await new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('end', onEnd);
        resolve(ok);
      };
      const onReady = () => done(true);
      const onEnd = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      redis.once('ready', onReady);
      redis.once('end', onEnd);
    });
    if (!ready) return false;
  }
  return pingRedis(redis, timeoutMs);
}
