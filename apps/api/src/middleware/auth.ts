import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { AppError, hashApiKey, planAllowsWebhooks } from '@hookline/domain';
import type { ApiDeps } from '../deps';

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
 * webhooks need the pro or enterprise plan.
 */
export function requireApiKey(deps: Pick<ApiDeps, 'db'>, opts: { requirePlan?: boolean } = {}): RequestHandler {
  return async (req, res, next) => {
    try {
      const key = presentedKey(req.get('authorization'), req.get('x-api-key'));
      if (!key) throw new AppError('UNAUTHORIZED', 'Missing API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>".');
      const auth = await authenticateApiKey(deps, key);
      if (!auth) throw new AppError('UNAUTHORIZED', 'Invalid or revoked API key.');
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

/** The platform API: `Authorization: Bearer $PLATFORM_TOKEN`. */
export function requirePlatformToken(deps: Pick<ApiDeps, 'config'>): RequestHandler {
  return (req, res, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    if (!match || !safeEqual(match[1], deps.config.PLATFORM_TOKEN)) {
      return next(new AppError('UNAUTHORIZED', 'Missing or wrong platform token: send "Authorization: Bearer <PLATFORM_TOKEN>".'));
    }
    res.locals.platform = true;
    next();
  };
}
