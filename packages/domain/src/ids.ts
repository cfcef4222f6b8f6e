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

// Ids carry their creation time (docs/scaling.md, "Ids and creation time"):
// `<prefix>_` + 8 base62 characters of milliseconds since the Unix epoch, fixed
// width, + 14 random base62 characters (83 bits). The alphabet is in ASCII
// order, so ids of one kind sort by creation time byte-wise (C collation), like
// a ULID or UUIDv7; a later partitioning by creation time can find an id's
// partition from the id alone.
//
// Ids issued before carry 24 random characters: 22 characters is what tells a
// time-carrying id from an old one, whose time is unknown (idTime answers null
// and a lookup falls back to searching every partition). 8 characters of
// base62 hold 62^8 ms (~6,900 years), so the width never changes.
const TIME_CHARS = 8;
const RANDOM_CHARS = 14;
export const TIMED_ID_LENGTH = TIME_CHARS + RANDOM_CHARS;
const TIME_SPAN = 62 ** TIME_CHARS;

function base62Time(ms: number): string {
  let out = '';
  let rest = Math.floor(ms);
  for (let i = 0; i < TIME_CHARS; i++) {
    out = ALPHABET[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

export function newId(kind: keyof typeof ID_PREFIX, at: number = Date.now()): string {
  if (!Number.isFinite(at) || at < 0 || at >= TIME_SPAN) throw new RangeError(`newId: time ${at} out of range`);
  return `${ID_PREFIX[kind]}_${base62Time(at)}${randomBase62(RANDOM_CHARS)}`;
}

const DIGIT = new Map([...ALPHABET].map((c, i) => [c, i]));
const PREFIXES = new Set<string>(Object.values(ID_PREFIX));

/**
 * The creation time an id carries, or null when it carries none: an id issued
 * before ids carried time (24 random characters), an id of another shape, or of
 * a kind the service does not always mint itself (extraction ids may be the
 * platform's own, so their characters say nothing reliable).
 */
export function idTime(id: string): Date | null {
  const sep = id.indexOf('_');
  if (sep <= 0) return null;
  const prefix = id.slice(0, sep);
  if (!PREFIXES.has(prefix) || prefix === ID_PREFIX.extraction) return null;
  const body = id.slice(sep + 1);
  if (body.length !== TIMED_ID_LENGTH) return null;
  let ms = 0;
  for (let i = 0; i < body.length; i++) {
    const digit = DIGIT.get(body[i]);
    if (digit === undefined) return null;
    if (i < TIME_CHARS) ms = ms * 62 + digit;
  }
  return new Date(ms);
}
