import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Webhook } from 'standardwebhooks';

// INDEPENDENT verification of a received callback, as an integrator would do
// it: the `standardwebhooks` reference library for the Standard Webhooks
// headers, and PerfectParser's plain Node snippet for X-<brand>-Signature. Nothing
// here may import @hookline/domain's signing: a test that verified with the
// signer's own code would prove nothing.

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Standard Webhooks v1 with the reference library; true when any signature in the header matches `secret`. */
export function verifyStandardWebhook(secret: string, body: string, headers: IncomingHttpHeaders): boolean {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signature = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signature) return false;
  try {
    new Webhook(secret).verify(body, { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature });
    return true;
  } catch {
    return false;
  }
}

/**
 * PerfectParser's snippet: hex HMAC-SHA256 of the raw body keyed with the whole
 * `whsec_…` string, compared in constant time. During a rotation the header
 * holds several comma-separated signatures; any match is enough.
 */
export function verifyBrandSignature(secret: string, body: string, headers: IncomingHttpHeaders, brand = 'PerfectParser'): boolean {
  const value = header(headers, `x-${brand}-signature`);
  if (!value) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(body, 'utf8').digest('hex'));
  return value.split(',').some((candidate) => {
    const given = Buffer.from(candidate.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** Both schemes at once. */
export function verifyCallback(secret: string, body: string, headers: IncomingHttpHeaders, brand = 'PerfectParser'): { standard: boolean; brand: boolean } {
  return { standard: verifyStandardWebhook(secret, body, headers), brand: verifyBrandSignature(secret, body, headers, brand) };
}
