import type { Request } from 'express';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError, clientAddressKey } from '@hookline/domain';
import type { ApiDeps } from '../deps';

// Failed credentials per client address, counted in Redis so the count holds
// across API replicas. Guards every guessable credential: the platform token,
// the admin password, API keys on /v1 and on the dashboard's sign-in form.
//
// What must stay true (docs/security.md):
// - the credential is checked first, and only a wrong one is counted or
//   refused: a right credential is never refused because of other requests'
//   failures (a proxy or a NAT gives many clients one address);
// - the address is req.ip (TRUST_PROXY decides whose X-Forwarded-For counts)
//   put through clientAddressKey, the one normaliser of every per-address
//   limit, so a port, an IPv4-mapped spelling or another address of the same
//   IPv6 /64 is the same budget.
// Guessing itself is hopeless (the secrets are long and random); the limit
// bounds the load and the noise of wrong attempts.

/** Failures allowed from one address within the window; further wrong attempts get 429 until it ends. */
export const FAILURES_ALLOWED = 10;
export const FAILURE_WINDOW_SECONDS = 15 * 60;

export type FailureLimiter = {
  /**
   * Counts one failed attempt from the request's address. Answers 0 while the
   * address is within its budget (answer the failure with 401), or the seconds
   * until the window ends once it is over it (answer 429 with Retry-After).
   */
  fail(req: Request): Promise<number>;
};

export type FailureLimitDeps = Pick<ApiDeps, 'redis' | 'logger'> & { config: Pick<ApiDeps['config'], 'QUEUE_PREFIX'> };

/**
 * A failure counter named `name` (its Redis keys: `<QUEUE_PREFIX>:<name>:<address key>`),
 * a fixed window from an address's first failure. A request with a right
 * credential never reaches it, so it costs a Redis round trip only to wrong
 * attempts. Redis being down must not lock everyone out: it then fails open
 * (the credential was checked all the same).
 */
export function failureLimiter(deps: FailureLimitDeps, name: string): FailureLimiter {
  const limiter = new RateLimiterRedis({
    storeClient: deps.redis,
    // The queue prefix keeps test files (and co-hosted deployments) apart.
    keyPrefix: `${deps.config.QUEUE_PREFIX}:${name}`,
    points: FAILURES_ALLOWED,
    duration: FAILURE_WINDOW_SECONDS,
    // The producer connection has no offline queue; answer at once instead of waiting.
    rejectIfRedisNotReady: true,
  });
  return {
    async fail(req) {
      try {
        await limiter.consume(clientAddressKey(req.ip));
        return 0;
      } catch (err) {
        // consume() rejects with the state once the budget is spent: the failure is counted all the same.
        if (err instanceof RateLimiterRes) return Math.max(1, Math.ceil(err.msBeforeNext / 1000));
        deps.logger.warn('failed-credential limit unavailable', { limit: name, err: err instanceof Error ? err.message : String(err) });
        return 0;
      }
    },
  };
}

/** The 429 of a wrong credential from an address over its budget. */
export function tooManyFailures(what: string, waitSeconds: number): AppError {
  return new AppError('RATE_LIMITED', `Too many wrong ${what} from this address; retry in ${waitSeconds} s.`, undefined, { 'Retry-After': String(waitSeconds) });
}
