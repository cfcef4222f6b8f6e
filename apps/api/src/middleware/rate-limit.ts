import type { RequestHandler } from 'express';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '@hookline/domain';
import type { ApiDeps } from '../deps';

// Per-API-key budget of RATE_LIMIT_PER_MINUTE requests per fixed minute, counted
// in Redis so it holds across API replicas. Must run after authentication: the
// counter is keyed by the key id, never by the secret key itself.

const WINDOW_SECONDS = 60;

export type RateLimitDeps = Pick<ApiDeps, 'redis' | 'logger'> & { config: Pick<ApiDeps['config'], 'RATE_LIMIT_PER_MINUTE' | 'QUEUE_PREFIX'> };

export function rateLimit(deps: RateLimitDeps): RequestHandler {
  const limiter = new RateLimiterRedis({
    storeClient: deps.redis,
    // The queue prefix keeps test files (and co-hosted deployments) apart.
    keyPrefix: `${deps.config.QUEUE_PREFIX}:ratelimit`,
    points: deps.config.RATE_LIMIT_PER_MINUTE,
    duration: WINDOW_SECONDS,
    // The producer connection has no offline queue; refuse at once instead of waiting.
    rejectIfRedisNotReady: true,
  });

  return async (_req, res, next) => {
    // Several /v1 routers may apply this; a request is counted once.
    if (res.locals.rateLimited) return next();
    res.locals.rateLimited = true;
    const keyId = (res.locals.auth as { keyId?: string } | undefined)?.keyId;
    if (!keyId) return next();
    try {
      await limiter.consume(keyId);
      return next();
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        const retryAfter = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
        return next(
          new AppError('RATE_LIMITED', `Too many requests for this API key; retry in ${retryAfter} s.`, undefined, { 'Retry-After': String(retryAfter) }),
        );
      }
      // Redis being down must not take the API down with it: fail open.
      deps.logger.warn('rate limit unavailable; request let through', { err: err instanceof Error ? err.message : String(err) });
      return next();
    }
  };
}
