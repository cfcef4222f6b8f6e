import { AppError, accountResource, apiKeyPrefix, apiKeyResource, generateApiKey, hashApiKey, newId, type ApiKeyMode, type Plan } from '@hookline/domain';
import type { ApiDeps } from '../deps';

// Accounts and API keys, as the platform API (docs/api.md#the-platform-api) drives them.

type Deps = Pick<ApiDeps, 'db'>;

// Ids arrive from URLs; anything else is unknown without asking the database
// (PostgreSQL would also refuse some bytes, e.g. NUL, with an error).
const ACCOUNT_ID_RE = /^acct_[0-9A-Za-z]{1,64}$/;
const API_KEY_ID_RE = /^key_[0-9A-Za-z]{1,64}$/;

export async function createAccount(deps: Deps, input: { name: string; plan: Plan; monthly_quota?: number | null }) {
  // PostgreSQL refuses NUL in text with an error: a validation failure, not a 500.
  if (input.name.includes('\u0000')) throw new AppError('INVALID_PAYLOAD', 'name: must not contain NUL characters', [{ path: 'name', message: 'must not contain NUL characters' }]);
  const row = await deps.db.prisma.account.create({
    data: { id: newId('account'), name: input.name, plan: input.plan, monthlyQuota: input.monthly_quota ?? null },
  });
  return accountResource(row);
}

/** The key itself is returned here and never again: only its hash and a short prefix are stored. */
export async function createApiKey(deps: Deps, accountId: string, mode: ApiKeyMode) {
  const account = ACCOUNT_ID_RE.test(accountId)
    ? await deps.db.prisma.account.findUnique({ where: { id: accountId }, select: { id: true } })
    : null;
  if (!account) throw new AppError('RESOURCE_NOT_FOUND', 'No such account; create it with POST /internal/v1/accounts first.');
  const key = generateApiKey(mode);
  const row = await deps.db.prisma.apiKey.create({
    data: { id: newId('apiKey'), accountId: account.id, mode, keyHash: hashApiKey(key), prefix: apiKeyPrefix(key) },
  });
  return apiKeyResource(row, key);
}

/**
 * Revocation takes effect on the next request: key lookups are not cached.
 * Revoking twice keeps the first revocation time.
 */
export async function revokeApiKey(deps: Deps, keyId: string): Promise<void> {
  if (!API_KEY_ID_RE.test(keyId)) throw new AppError('RESOURCE_NOT_FOUND', 'No such API key.');
  const prisma = deps.db.prisma;
  const { count } = await prisma.apiKey.updateMany({ where: { id: keyId, revokedAt: null }, data: { revokedAt: new Date() } });
  if (count > 0) return;
  const exists = await prisma.apiKey.findUnique({ where: { id: keyId }, select: { id: true } });
  if (!exists) throw new AppError('RESOURCE_NOT_FOUND', 'No such API key.');
}

/**
 * An API key that still works (not revoked, still the account's), with what the
 * dashboard shows of it; null otherwise. A primary-key lookup, not cached: the
 * dashboard asks on every request, so a revoked key ends its sessions at once.
 */
export async function activeApiKey(deps: Deps, keyId: string, accountId: string) {
  const key = await deps.db.prisma.apiKey.findFirst({
    where: { id: keyId, accountId, revokedAt: null },
    select: { mode: true, prefix: true, account: { select: { name: true, plan: true } } },
  });
  if (!key) return null;
  return { mode: key.mode === 'live' ? ('live' as const) : ('test' as const), prefix: key.prefix, accountName: key.account.name, plan: key.account.plan };
}
