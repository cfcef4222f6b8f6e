import { createHmac, randomBytes } from 'node:crypto';

export const SIGNING_SECRET_PREFIX = 'whsec_';

/** `whsec_` + base64 of 32 random bytes. */
export function generateSigningSecret(): string {
  return SIGNING_SECRET_PREFIX + randomBytes(32).toString('base64');
}

/**
 * The PerfectParser header: hex HMAC-SHA256 of the raw body keyed with the
 * whole `whsec_…` string as UTF-8, so PerfectParser's published verification snippets work unchanged.
 */
export function signHex(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body, 'utf8').digest('hex');
}

/** Standard Webhooks v1: base64 HMAC of "<id>.<timestamp>.<body>" keyed with the decoded secret. */
export function signStandard(secret: string, msgId: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.startsWith(SIGNING_SECRET_PREFIX) ? secret.slice(SIGNING_SECRET_PREFIX.length) : secret, 'base64');
  const mac = createHmac('sha256', key).update(`${msgId}.${timestampSeconds}.${body}`, 'utf8').digest('base64');
  return `v1,${mac}`;
}

export type SignatureHeaders = Record<string, string>;

/**
 * Every signature header of one callback. `secrets` lists the current secret
 * first, then a rotated-out one still inside its grace period.
 */
export function signatureHeaders(opts: {
  brand: string;
  secrets: string[];
  deliveryId: string;
  timestampSeconds: number;
  body: string;
}): SignatureHeaders {
  const { brand, secrets, deliveryId, timestampSeconds, body } = opts;
  return {
    [`X-${brand}-Signature`]: secrets.map((s) => signHex(s, body)).join(','),
    'webhook-id': deliveryId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((s) => signStandard(s, deliveryId, timestampSeconds, body)).join(' '),
  };
}
