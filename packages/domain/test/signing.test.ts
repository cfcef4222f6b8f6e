import { createHmac } from 'node:crypto';
import { SIGNING_SECRET_PREFIX, generateSigningSecret, signHex, signStandard, signatureHeaders } from '../src/signing';

// Each signature is checked against an HMAC computed here, independently, as a
// receiver following docs/api.md#callback-headers would compute it.

const body = JSON.stringify({ id: 'evt_1', event: 'extraction.document_completed', created_at: '2026-11-23T10:00:00.000Z', test: false, data: { a: 'ü' } });

describe('generateSigningSecret', () => {
  it('is whsec_ + base64 of 32 random bytes, different every time', () => {
    const secrets = new Set(Array.from({ length: 50 }, generateSigningSecret));
    expect(secrets.size).toBe(50);
    for (const secret of secrets) {
      expect(secret.startsWith(SIGNING_SECRET_PREFIX)).toBe(true);
      expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    }
  });
});

describe('signHex (X-<brand>-Signature)', () => {
  it('is the hex HMAC-SHA256 of the raw body keyed with the whole whsec_ string', () => {
    const secret = generateSigningSecret();
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('hex');
    expect(signHex(secret, body)).toBe(expected);
    expect(signHex(secret, body)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('matches a known vector', () => {
    // echo -n 'hello' | openssl dgst -sha256 -hmac 'whsec_test'
    const expected = createHmac('sha256', 'whsec_test').update('hello').digest('hex');
    expect(signHex('whsec_test', 'hello')).toBe(expected);
    expect(signHex('key', 'The quick brown fox jumps over the lazy dog')).toBe('f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8');
  });

  it('changes with any byte of the body or the secret', () => {
    const secret = generateSigningSecret();
    expect(signHex(secret, body)).not.toBe(signHex(secret, `${body} `));
    expect(signHex(secret, body)).not.toBe(signHex(generateSigningSecret(), body));
  });
});

describe('signStandard (Standard Webhooks v1)', () => {
  it('is v1,<base64 HMAC of "id.timestamp.body"> keyed with the decoded secret', () => {
    const secret = generateSigningSecret();
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key).update(`dlv_1.1700000000.${body}`, 'utf8').digest('base64');
    expect(signStandard(secret, 'dlv_1', 1_700_000_000, body)).toBe(`v1,${expected}`);
  });

  it('matches the Standard Webhooks reference vector', () => {
    // From the standard-webhooks specification's test vectors.
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const signature = signStandard(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(signature).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });
});

describe('signatureHeaders', () => {
  it('signs with every secret during a rotation: hex joined by ",", Standard Webhooks by " "', () => {
    const current = generateSigningSecret();
    const previous = generateSigningSecret();
    const headers = signatureHeaders({ brand: 'PerfectParser', secrets: [current, previous], deliveryId: 'dlv_9', timestampSeconds: 1_800_000_000, body });
    const hex = (s: string) => createHmac('sha256', s).update(body).digest('hex');
    const std = (s: string) => `v1,${createHmac('sha256', Buffer.from(s.slice(6), 'base64')).update(`dlv_9.1800000000.${body}`).digest('base64')}`;
    expect(headers).toEqual({
      'X-PerfectParser-Signature': `${hex(current)},${hex(previous)}`,
      'webhook-id': 'dlv_9',
      'webhook-timestamp': '1800000000',
      'webhook-signature': `${std(current)} ${std(previous)}`,
    });
  });

  it('uses the brand in the header name', () => {
    const headers = signatureHeaders({ brand: 'Acme', secrets: [generateSigningSecret()], deliveryId: 'dlv_1', timestampSeconds: 1, body: '{}' });
    expect(Object.keys(headers)).toContain('X-Acme-Signature');
    expect(headers['X-Acme-Signature']).not.toContain(',');
  });
});
