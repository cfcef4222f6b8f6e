import { randomBytes } from 'node:crypto';

// Type prefixes of every id (docs/api.md#conventions). Ids are opaque to clients; they never change meaning.
export const ID_PREFIX = {
  account: 'acct',
  apiKey: 'key',
  webhook: 'wh',
  event: 'evt',
  delivery: 'dlv',
  attempt: 'att',
  extraction: 'ext',
} as const;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// Random bytes are drawn from the CSPRNG 4 KiB at a time (one call per ~160
// ids instead of one per id: ids are made for every delivery and attempt).
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let used = 0;

function randomByte(): number {
  if (used >= pool.length) {
    pool = randomBytes(POOL_SIZE);
    used = 0;
  }
  return pool[used++];
}

/** `length` random base62 characters (rejection sampling keeps them uniform). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    if (byte >= 248) continue; // 248 = 62 * 4: keep the distribution uniform
    out += ALPHABET[byte % 62];
  }
  return out;
}

export function newId(kind: keyof typeof ID_PREFIX): string {
  return `${ID_PREFIX[kind]}_${randomBase62(24)}`;
}
