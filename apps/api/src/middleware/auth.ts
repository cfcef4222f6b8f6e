import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { AppError, hashApiKey, planAllowsWebhooks } from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { failureLimiter, tooManyFailures, type FailureLimitDeps } from './failure-limit';

export type ApiKeyAuth = { accountId: string; keyId: string; mode: 'live' | 'test'; plan: string };

/** The presented key from `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(authorization: string | undefined, apiKeyHeader: string | undefined): string | null {
  if (apiKeyHeader?.trim()) return apiKeyHeader.trim();
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return match ? match[1] : null;
}

/** The account behind an API key, or null when it is unknown or revoked. Shared with the dashboard. */
export async function authenticateApiKey(deps: Pick<ApiDeps, 'db'>, key: string): Promise<ApiKeyAuth | null> {
  if (key.length > 200) return null;
  const row = await deps.db.prisma.apiKey.findUnique({
    where: { keyHash: hashApiKey(key) },
    select: { id: true, mode: true, revokedAt: true, account: { select: { id: true, plan: true } } },
  });
  if (!row || row.revokedAt) return null;
  return { accountId: row.account.id, keyId: row.id, mode: row.mode === 'live' ? 'live' : 'test', plan: row.account.plan };
}

export function getAuth(res: Response): ApiKeyAuth {
  const auth = res.locals.auth as ApiKeyAuth | undefined;
  if (!auth) throw new AppError('UNAUTHORIZED', 'Missing API key.');
  return auth;
}

/**
 * Integrator API authentication. With `requirePlan`, a free account is refused:
 * webhooks need the pro or enterprise plan. A presented key that is unknown or
 * revoked is counted per client address (failure-limit.ts): past the budget a
 * wrong key gets 429 instead of 401, while a valid key from the same address
 * always passes. No key at all is not a guess and is not counted.
 */
export function requireApiKey(deps: Pick<ApiDeps, 'db'> & FailureLimitDeps, opts: { requirePlan?: boolean } = {}): RequestHandler {
  const failures = failureLimiter(deps, 'auth-fail:api-key');
  return async (req, res, next) => {
    try {
      const key = presentedKey(req.get('authorization'), req.get('x-api-key'));
      if (!key) throw new AppError('UNAUTHORIZED', 'Missing API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>".');
      const auth = await authenticateApiKey(deps, key);
      if (!auth) {
        const waitSeconds = await failures.fail(req);
        if (waitSeconds > 0) throw tooManyFailures('API keys', waitSeconds);
        throw new AppError('UNAUTHORIZED', 'Invalid or revoked API key.');
      }
      if (opts.requirePlan && !planAllowsWebhooks(auth.plan)) {
        throw new AppError('PLAN_REQUIRED', 'Webhooks need the pro or enterprise plan; upgrade the account to use them.');
      }
      res.locals.auth = auth;
      res.locals.accountId = auth.accountId;
      next();
    } catch (err) {
      next(err);
    }
  };
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** Constant-time comparison (hashing first makes the lengths equal). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * The platform API: `Authorization: Bearer $PLATFORM_TOKEN`. The token is
 * compared first (in constant time): the right token always passes, whatever
 * others sent from the same address. Wrong bearer tokens are counted per client
 * address (failure-limit.ts); past the budget a wrong one is answered 429
 * RATE_LIMITED with Retry-After until the window ends.
 */
export function requirePlatformToken(deps: Pick<ApiDeps, 'config' | 'redis' | 'logger'>): RequestHandler {
  const failures = failureLimiter(deps, 'auth-fail:platform');
  const unauthorized = () => new AppError('UNAUTHORIZED', 'Missing or wrong platform token: send "Authorization: Bearer <PLATFORM_TOKEN>".');
  return async (req, res, next) => {
    try {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
      // No bearer token at all is not a guess: refused without touching the counter.
      if (!match) return next(unauthorized());
      if (safeEqual(match[1], deps.config.PLATFORM_TOKEN)) {
        res.locals.platform = true;
        return next();
      }
      const waitSeconds = await failures.fail(req);
      next(waitSeconds > 0 ? tooManyFailures('platform tokens', waitSeconds) : unauthorized());
    } catch (err) {
      next(err);
    }
  };
}
