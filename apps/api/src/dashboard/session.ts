import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { RedisClient } from '@hookline/queue';
import { AppError } from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { safeEqual } from '../middleware/auth';

// Dashboard sessions live in Redis, never in the cookie: the browser holds only
// a random id (signed, httpOnly, SameSite=Strict). Redis keys are the SHA-256
// of that id, so reading Redis does not hand out usable session cookies.

export const SESSION_COOKIE = 'hl_dash_sid';
/** Pre-session CSRF token of the sign-in form (login CSRF: nobody signs you into their account). */
export const SIGN_IN_COOKIE = 'hl_dash_signin';
export const SESSION_TTL_SECONDS = 12 * 3_600;
const FLASH_TTL_SECONDS = 120;

export type DashboardSession = { id: string; keyId: string; accountId: string; csrfToken: string; createdAt: string };
export type StoredSession = Omit<DashboardSession, 'id'>;

/** A one-shot message shown on the next page (post → redirect → get). */
export type Flash = { tone: 'success' | 'error' | 'info'; message: string; webhookId?: string };

export type SessionStore = {
  create(input: { keyId: string; accountId: string }): Promise<DashboardSession>;
  get(id: string): Promise<DashboardSession | null>;
  destroy(id: string): Promise<void>;
  setFlash(id: string, flash: Flash): Promise<void>;
  takeFlash(id: string): Promise<Flash | null>;
};

/**
 * The cookie-signing secret: SESSION_SECRET, or one derived from the platform
 * token, so a deployment without SESSION_SECRET still signs with something
 * secret and stable across restarts and replicas. Never an API key.
 */
export function cookieSecret(config: Pick<ApiDeps['config'], 'SESSION_SECRET' | 'PLATFORM_TOKEN'>): string {
  if (config.SESSION_SECRET) return config.SESSION_SECRET;
  return createHmac('sha256', config.PLATFORM_TOKEN).update('hookline:dashboard:session-cookie:v1').digest('base64url');
}

export const newToken = () => randomBytes(32).toString('base64url');

export function tokensMatch(expected: string | undefined, presented: unknown): boolean {
  if (!expected || typeof presented !== 'string' || presented.length === 0 || presented.length > 200) return false;
  return safeEqual(expected, presented);
}

function storeUnavailable(err: unknown): AppError {
  const error = new AppError('SERVICE_UNAVAILABLE', 'The session store is unreachable right now; try again in a moment.');
  // Kept for the server log only; the page shows the message above.
  error.cause = err;
  return error;
}

/** Every Redis failure becomes one actionable 503 page instead of a stack trace. */
async function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw storeUnavailable(err);
  }
}

function parseStored(raw: string | null): StoredSession | null {
  if (!raw) return null;
  try {
    const value = JSON.parse(raw) as Partial<StoredSession>;
    if (typeof value.keyId !== 'string' || typeof value.accountId !== 'string' || typeof value.csrfToken !== 'string') return null;
    return { keyId: value.keyId, accountId: value.accountId, csrfToken: value.csrfToken, createdAt: String(value.createdAt ?? '') };
  } catch {
    return null;
  }
}

export function createSessionStore(redis: RedisClient, queuePrefix: string): SessionStore {
  const digest = (id: string) => createHash('sha256').update(id, 'utf8').digest('base64url');
  const sessionKey = (id: string) => `${queuePrefix}:dash:sess:${digest(id)}`;
  const flashKey = (id: string) => `${queuePrefix}:dash:flash:${digest(id)}`;

  return {
    async create({ keyId, accountId }) {
      const session: DashboardSession = { id: newToken(), keyId, accountId, csrfToken: newToken(), createdAt: new Date().toISOString() };
      const stored: StoredSession = { keyId, accountId, csrfToken: session.csrfToken, createdAt: session.createdAt };
      await guarded(() => redis.set(sessionKey(session.id), JSON.stringify(stored), 'EX', SESSION_TTL_SECONDS));
      return session;
    },
    async get(id) {
      if (!/^[A-Za-z0-9_-]{20,100}$/.test(id)) return null;
      const stored = parseStored(await guarded(() => redis.get(sessionKey(id))));
      return stored ? { id, ...stored } : null;
    },
    async destroy(id) {
      // One key per DEL: on a Redis Cluster the two keys may live in different slots.
      await guarded(() => Promise.all([redis.del(sessionKey(id)), redis.del(flashKey(id))]));
    },
    async setFlash(id, flash) {
      await guarded(() => redis.set(flashKey(id), JSON.stringify(flash), 'EX', FLASH_TTL_SECONDS));
    },
    async takeFlash(id) {
      const raw = await guarded(() => redis.getdel(flashKey(id)));
      if (!raw) return null;
      try {
        return JSON.parse(raw) as Flash;
      } catch {
        return null;
      }
    },
  };
}
