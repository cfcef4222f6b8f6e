import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from '@hookline/queue';
import { createAccount, createApiKey, createSignInLink } from '@hookline/api';
import type { Db } from '@hookline/db';
import { apiKeyPrefix } from '@hookline/domain';

// The demo account of a first `npm start` (development, embedded database
// only): a pro account with a test-mode API key, so the printed sign-in link
// opens a dashboard that can add http:// webhooks at once. Its ids are kept in
// the data folder, so later starts reuse it instead of making another.
// The key itself is printed once, on the start that creates it: like every
// key, only its hash is stored. Each start prints a fresh one-time sign-in
// link, which needs only the key's id.

export const DEMO_ACCOUNT_FILE = 'demo-account.json';
const DEMO_NAME = 'Demo';

type Recorded = { account_id: string; api_key_id: string };

export type DemoAccount = {
  accountId: string;
  keyId: string;
  keyPrefix: string;
  /** The API key, on the start that created it; null afterwards. */
  key: string | null;
  /** True when this start created the account. */
  created: boolean;
  /** Path and query of a one-time dashboard sign-in link. */
  signInPath: string;
};

function readRecorded(file: string): Recorded | null {
  if (!existsSync(file)) return null;
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<Recorded>;
    return typeof value.account_id === 'string' && typeof value.api_key_id === 'string' ? { account_id: value.account_id, api_key_id: value.api_key_id } : null;
  } catch {
    return null;
  }
}

export async function ensureDemoAccount(deps: { db: Db; redis: RedisClient; queuePrefix: string }, dataDir: string): Promise<DemoAccount> {
  const file = join(dataDir, DEMO_ACCOUNT_FILE);
  const recorded = readRecorded(file);
  const prisma = deps.db.prisma;

  // The folder's account, if the database still has it (a deleted pglite folder starts over).
  const existing = recorded ? await prisma.account.findUnique({ where: { id: recorded.account_id }, select: { id: true } }) : null;
  const created = !existing;
  const accountId = existing?.id ?? (await createAccount(deps, { name: DEMO_NAME, plan: 'pro' })).id;

  const liveKey = existing && recorded
    ? await prisma.apiKey.findFirst({ where: { id: recorded.api_key_id, accountId, revokedAt: null }, select: { id: true, prefix: true } })
    : null;
  let key: string | null = null;
  let keyId: string;
  let keyPrefix: string;
  if (liveKey) {
    ({ id: keyId, prefix: keyPrefix } = liveKey);
  } else {
    // First start, or the demo key was revoked: a new test key for the same account.
    const made = await createApiKey(deps, accountId, 'test');
    key = made.key;
    keyId = made.id;
    keyPrefix = apiKeyPrefix(made.key);
    writeFileSync(file, JSON.stringify({ account_id: accountId, api_key_id: keyId } satisfies Recorded, null, 2) + '\n', { mode: 0o600 });
  }

  const signInPath = await createSignInLink(deps.redis, deps.queuePrefix, { keyId, accountId });
  return { accountId, keyId, keyPrefix, key, created, signInPath };
}
