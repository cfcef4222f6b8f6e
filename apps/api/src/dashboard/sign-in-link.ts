import { createHash } from 'node:crypto';
import type { RedisClient } from '@hookline/queue';
import { AppError } from '@hookline/domain';
import { BASE } from './layout';
import { newToken } from './session';

// One-time sign-in links: `npm start` makes one for its demo account and prints
// it, so a first start leads straight into the dashboard. A link names an API
// key by id (never the key itself) and works once, within its lifetime.
// What must stay true:
// - opening the link (GET) changes nothing: it shows a form, so link previews
//   and prefetching cannot use it up; signing in is the form's POST, checked
//   against the sign-in form's CSRF cookie like the API-key form (no login CSRF);
// - Redis holds only the token's SHA-256, and GETDEL makes the first POST the
//   only one that signs in;
// - the key is checked again when the link is used: a revoked key's link is dead.

export const SIGN_IN_LINK_PATH = `${BASE}/sign-in/link`;
export const SIGN_IN_LINK_TTL_SECONDS = 30 * 60;

export type SignInGrant = { keyId: string; accountId: string };

const TOKEN_RE = /^[A-Za-z0-9_-]{40,60}$/;
const linkKey = (queuePrefix: string, token: string) => `${queuePrefix}:dash:link:${createHash('sha256').update(token, 'utf8').digest('base64url')}`;

function parseGrant(raw: string | null): SignInGrant | null {
  if (!raw) return null;
  try {
    const value = JSON.parse(raw) as Partial<SignInGrant>;
    return typeof value.keyId === 'string' && typeof value.accountId === 'string' ? { keyId: value.keyId, accountId: value.accountId } : null;
  } catch {
    return null;
  }
}

/** A Redis failure is the session store's 503 page, not a stack trace. */
async function fromRedis(op: () => Promise<string | null>): Promise<string | null> {
  try {
    return await op();
  } catch (err) {
    const error = new AppError('SERVICE_UNAVAILABLE', 'The session store is unreachable right now; try again in a moment.');
    error.cause = err;
    throw error;
  }
}

/** Stores a new link for `grant`; returns its path and query (append to the server's origin). */
export async function createSignInLink(redis: RedisClient, queuePrefix: string, grant: SignInGrant, ttlSeconds = SIGN_IN_LINK_TTL_SECONDS): Promise<string> {
  const token = newToken();
  await redis.set(linkKey(queuePrefix, token), JSON.stringify(grant), 'EX', ttlSeconds);
  return `${SIGN_IN_LINK_PATH}?token=${token}`;
}

/** The grant of a live link, leaving it usable (for the confirmation page). */
export async function peekSignInLink(redis: RedisClient, queuePrefix: string, token: string | null): Promise<SignInGrant | null> {
  if (!token || !TOKEN_RE.test(token)) return null;
  return parseGrant(await fromRedis(() => redis.get(linkKey(queuePrefix, token))));
}

/** The grant of a live link, using it up: of racing callers, one gets it. */
export async function takeSignInLink(redis: RedisClient, queuePrefix: string, token: string | null): Promise<SignInGrant | null> {
  if (!token || !TOKEN_RE.test(token)) return null;
  return parseGrant(await fromRedis(() => redis.getdel(linkKey(queuePrefix, token))));
}
