import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { ApiDeps } from '../deps';

// Failed credentials per client address (req.ip: TRUST_PROXY decides what that
// is), counted in Redis so the count holds across API replicas. Guards the
// guessable secrets (platform token, admin password) and the dashboard sign-in.

/** Failures allowed from one address within the window; the next attempts are refused until it ends. */
export const FAILURES_ALLOWED = 10;
export const FAILURE_WINDOW_SECONDS = 15 * 60;

export type FailureLimiter = {
  /** Seconds until `client` may try again, or 0 when it is not blocked. */
  blockedFor(client: string): Promise<number>;
  /** Counts one failed attempt from `client`. */
  fail(client: string): Promise<void>;
};

export type FailureLimitDeps = Pick<ApiDeps, 'redis' | 'logger'> & { config: Pick<ApiDeps['config'], 'QUEUE_PREFIX'> };

/**
 * A failure counter named `name` (its Redis keys: `<QUEUE_PREFIX>:<name>:<address>`).
 * Redis being down must not lock everyone out: the limiter then fails open and
 * the credential is still checked.
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
  // Addresses that failed here within the window. Only they are looked up in
  // Redis before their credential is checked, so a client that never failed
  // (every platform publish) costs no Redis round trip. An address that failed
  // only on another replica is looked up after its first failure here.
  const suspects = new Map<string, number>();
  const MAX_SUSPECTS = 10_000;
  return {
    async blockedFor(client) {
      const until = suspects.get(client);
      if (until === undefined) return 0;
      if (until < Date.now()) {
        suspects.delete(client);
        return 0;
      }
      const state = await limiter.get(client).catch((err: Error) => {
        deps.logger.warn('failed-credential limit unavailable', { limit: name, err: err.message });
        return null;
      });
      return state && state.consumedPoints >= FAILURES_ALLOWED ? Math.max(1, Math.ceil(state.msBeforeNext / 1000)) : 0;
    },
    async fail(client) {
      if (suspects.size >= MAX_SUSPECTS) suspects.clear();
      suspects.set(client, Date.now() + FAILURE_WINDOW_SECONDS * 1000);
      // consume() rejects once the points are used up: the failure is counted all the same.
      await limiter.consume(client).catch((err: unknown) => {
        if (err instanceof Error) deps.logger.warn('could not count a failed credential', { limit: name, err: err.message });
      });
    },
  };
}
