import { ID_PREFIX, idTime, newId, randomBase62 } from '../src/ids';
import { apiKeyPrefix, generateApiKey, hashApiKey, looksLikeApiKey } from '../src/api-keys';
import { createHash } from 'node:crypto';

describe('ids', () => {
  it('carry the contract type prefixes and 22 base62 characters (8 of time, 14 random)', () => {
    expect(ID_PREFIX).toMatchObject({ account: 'acct', apiKey: 'key', webhook: 'wh', event: 'evt', delivery: 'dlv', attempt: 'att' });
    for (const kind of Object.keys(ID_PREFIX) as (keyof typeof ID_PREFIX)[]) {
      expect(newId(kind)).toMatch(new RegExp(`^${ID_PREFIX[kind]}_[0-9A-Za-z]{22}$`));
    }
  });

  it('carry their creation time to the millisecond', () => {
    const before = Date.now();
    const id = newId('delivery');
    const after = Date.now();
    const at = idTime(id)!.getTime();
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
    for (const ms of [0, 1, 61, 62, 1_700_000_000_000, Date.UTC(2026, 11, 7, 16, 0, 0, 123), 62 ** 8 - 1]) {
      expect(idTime(newId('event', ms))?.getTime()).toBe(ms);
      expect(idTime(newId('attempt', ms))?.getTime()).toBe(ms);
    }
    expect(() => newId('event', -1)).toThrow(RangeError);
    expect(() => newId('event', 62 ** 8)).toThrow(RangeError);
  });

  it('sort by creation time, byte-wise', () => {
    const times = [0, 61, 62, 3_843, 3_844, 1_700_000_000_000, 1_700_000_000_001, Date.now(), 62 ** 8 - 1];
    const ids = times.map((ms) => newId('delivery', ms));
    const bytewise = [...ids].reverse().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(bytewise).toEqual(ids);
  });

  it('issued before carry no time: they parse as unknown, as do other shapes', () => {
    // An id of before: 24 random characters.
    expect(idTime(`dlv_${randomBase62(24)}`)).toBeNull();
    expect(idTime('evt_7Hc2Nq9Lx4Wb1Tz8Km3Vr5Yd')).toBeNull();
    for (const id of ['', 'dlv_', 'dlv', '_0000000000000000000000', 'nope_0ujtsYcg00000000000000', 'dlv_0ujtsYcg0000000000000!', `dlv_${randomBase62(21)}`, `dlv_${randomBase62(23)}`]) {
      expect(idTime(id)).toBeNull();
    }
    // Extraction ids may be the platform's own: whatever their shape, their time is unknown.
    expect(idTime(newId('extraction'))).toBeNull();
  });

  it('are unique', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newId('delivery')));
    expect(ids.size).toBe(10_000);
  });

  it('randomBase62 gives the asked length over the whole alphabet, roughly uniformly', () => {
    expect(randomBase62(0)).toBe('');
    expect(randomBase62(1)).toMatch(/^[0-9A-Za-z]$/);
    const text = randomBase62(62_000);
    expect(text).toHaveLength(62_000);
    const counts = new Map<string, number>();
    for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // Expected 1000 each; a biased generator (e.g. byte % 62) skews the first characters by ~25%.
    for (const count of counts.values()) {
      expect(count).toBeGreaterThan(820);
      expect(count).toBeLessThan(1180);
    }
  });
});

describe('api keys', () => {
  it('look like hk_live_/hk_test_ + 32 base62 characters', () => {
    expect(generateApiKey('live')).toMatch(/^hk_live_[0-9A-Za-z]{32}$/);
    expect(generateApiKey('test')).toMatch(/^hk_test_[0-9A-Za-z]{32}$/);
    expect(looksLikeApiKey(generateApiKey('live'))).toBe(true);
    expect(looksLikeApiKey('hk_prod_' + 'a'.repeat(32))).toBe(false);
    expect(looksLikeApiKey('hk_live_short')).toBe(false);
  });

  it('hash to SHA-256 hex; the prefix is the first 12 characters', () => {
    const key = generateApiKey('test');
    expect(hashApiKey(key)).toBe(createHash('sha256').update(key).digest('hex'));
    expect(hashApiKey(key)).not.toContain(key.slice(8));
    expect(apiKeyPrefix(key)).toBe(key.slice(0, 12));
    expect(apiKeyPrefix(key).startsWith('hk_test_')).toBe(true);
  });
});
