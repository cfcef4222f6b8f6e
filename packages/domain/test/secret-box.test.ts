import { randomBytes } from 'node:crypto';
import { createSecretBox, parseEncryptionKey } from '../src/secret-box';

describe('secret box (AES-256-GCM)', () => {
  const key = randomBytes(32);
  const box = createSecretBox(key);

  it('round-trips, including unicode and empty text', () => {
    for (const plain of ['whsec_abc', '', 'ünïcödé 😀', 'x'.repeat(10_000)]) expect(box.decrypt(box.encrypt(plain))).toBe(plain);
  });

  it('stores "v1:<iv>:<tag>:<data>" that does not contain the plaintext', () => {
    const plain = 'my-static-secret';
    const stored = box.encrypt(plain);
    expect(stored).toMatch(/^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]*$/);
    expect(stored).not.toContain(plain);
    expect(stored).not.toContain(Buffer.from(plain).toString('base64'));
    const [, iv, tag] = stored.split(':');
    expect(Buffer.from(iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(tag, 'base64')).toHaveLength(16);
  });

  it('uses a fresh IV: the same plaintext encrypts differently each time', () => {
    const a = box.encrypt('same');
    const b = box.encrypt('same');
    expect(a).not.toBe(b);
    expect(box.decrypt(a)).toBe(box.decrypt(b));
  });

  it('refuses another key, a tampered ciphertext or tag, and an unknown format', () => {
    const stored = box.encrypt('secret value');
    expect(() => createSecretBox(randomBytes(32)).decrypt(stored)).toThrow();
    const [v, iv, tag, data] = stored.split(':');
    const flipped = Buffer.from(data, 'base64');
    flipped[0] ^= 1;
    expect(() => box.decrypt([v, iv, tag, flipped.toString('base64')].join(':'))).toThrow();
    const badTag = Buffer.from(tag, 'base64');
    badTag[0] ^= 1;
    expect(() => box.decrypt([v, iv, badTag.toString('base64'), data].join(':'))).toThrow();
    expect(() => box.decrypt(`v2:${iv}:${tag}:${data}`)).toThrow(/unrecognised/);
    expect(() => box.decrypt('plaintext')).toThrow(/unrecognised/);
  });

  it('refuses a truncated tag: GCM would otherwise check only its first bytes', () => {
    const stored = box.encrypt('secret value');
    const [v, iv, tag, data] = stored.split(':');
    const short = Buffer.from(tag, 'base64').subarray(0, 4).toString('base64');
    expect(() => box.decrypt([v, iv, short, data].join(':'))).toThrow();
  });

  it('needs a 32-byte key', () => {
    expect(() => createSecretBox(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('parseEncryptionKey', () => {
  it('accepts base64 of exactly 32 bytes', () => {
    const key = randomBytes(32);
    expect(parseEncryptionKey(key.toString('base64'))?.equals(key)).toBe(true);
    expect(parseEncryptionKey(randomBytes(31).toString('base64'))).toBeNull();
    expect(parseEncryptionKey(randomBytes(33).toString('base64'))).toBeNull();
    expect(parseEncryptionKey('')).toBeNull();
  });
});
