import { createHash } from 'node:crypto';
import { randomBase62 } from './ids';

export const API_KEY_MODES = ['live', 'test'] as const;
export type ApiKeyMode = (typeof API_KEY_MODES)[number];
const KEY_RE = /^hk_(live|test)_[0-9A-Za-z]{32}$/;

export function generateApiKey(mode: ApiKeyMode): string {
  return `hk_${mode}_${randomBase62(32)}`;
}

/** Only this hash is stored; a lookup hashes the presented key the same way. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export const apiKeyPrefix = (key: string) => key.slice(0, 12);
export const looksLikeApiKey = (key: string) => KEY_RE.test(key);
