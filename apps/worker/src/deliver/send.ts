import { callbackBody, openCustomHeaders, sendableCustomHeaders, signatureHeaders, type CustomHeaders, type SecretBox } from '@hookline/domain';
import type { LoadedDelivery } from '../delivery-store';
import type { SendResult } from '../sender';
import { hostOf, type DeliverContext, type DeliverResult } from './context';

// Send: the callback's body and headers (signed), the request itself, and what
// follows when the egress proxy failed rather than the endpoint.

/** DELIVERY_PROXY_RETRY when the config leaves it out. */
const DEFAULT_PROXY_RETRY_MS = 30_000;
/** Entries each cache keeps before it starts over. */
const MAX_CACHED = 10_000;

export type SecretCache = {
  /** A stored secret, decrypted. */
  decrypt(stored: string): string;
  /** A webhook's custom headers, reserved names dropped. */
  customHeaders(stored: string | null): CustomHeaders;
};

/**
 * Decrypting is cheap but not free at thousands per second; ciphertexts are
 * immutable (a new secret, or new custom headers, is a new ciphertext), so
 * caching by them is safe.
 */
export function createSecretCache(secretBox: SecretBox, brand: string): SecretCache {
  const plainByCipher = new Map<string, string>();
  const headersByCipher = new Map<string, CustomHeaders>();
  function decrypt(stored: string): string {
    const hit = plainByCipher.get(stored);
    if (hit !== undefined) return hit;
    let plain: string;
    try {
      plain = secretBox.decrypt(stored);
    } catch {
      throw new Error('cannot decrypt a webhook secret: ENCRYPTION_KEY must be the same for the API and every worker');
    }
    if (plainByCipher.size >= MAX_CACHED) plainByCipher.clear();
    plainByCipher.set(stored, plain);
    return plain;
  }
  function customHeaders(stored: string | null): CustomHeaders {
    if (stored === null) return {};
    const hit = headersByCipher.get(stored);
    if (hit !== undefined) return hit;
    const headers = sendableCustomHeaders(openCustomHeaders({ decrypt }, stored), brand);
    if (headersByCipher.size >= MAX_CACHED) headersByCipher.clear();
    headersByCipher.set(stored, headers);
    return headers;
  }
  return { decrypt, customHeaders };
}

export function buildHeaders(ctx: DeliverContext, row: LoadedDelivery, body: string): Record<string, string> {
  const { secrets } = ctx;
  const brand = ctx.config.WEBHOOK_BRAND;
  const signing = [secrets.decrypt(row.signing_secret_enc)];
  if (row.previous_secret_enc && row.previous_valid) signing.push(secrets.decrypt(row.previous_secret_enc));
  // User-Agent is set by the sender (one value for every callback). Custom
  // headers first: none can name a header below (the API refuses such names
  // and customHeaders drops them), and Hookline's own come last regardless.
  const headers: Record<string, string> = {
    ...secrets.customHeaders(row.custom_headers_enc),
    'Content-Type': 'application/json',
    [`X-${brand}-Event`]: row.event,
    [`X-${brand}-Delivery`]: row.id,
    ...signatureHeaders({ brand, secrets: signing, deliveryId: row.id, timestampSeconds: Math.floor(Date.now() / 1000), body }),
  };
  if (row.static_secret_enc) headers['X-Webhook-Secret'] = secrets.decrypt(row.static_secret_enc);
  return headers;
}

export function send(ctx: DeliverContext, row: LoadedDelivery): Promise<SendResult> {
  const body = callbackBody({ id: row.event_id, event: row.event, createdAt: row.event_created_at, test: row.test, data: row.data });
  return ctx.sender.send({ url: row.url, headers: buildHeaders(ctx, row, body), body, deliveryId: row.id, event: row.event });
}

/**
 * The egress proxy failed: nothing reached the endpoint, so nothing is held
 * against it — no attempt recorded, no retry used up, no circuit failure, no
 * failing_since. The job comes back after DELIVERY_PROXY_RETRY (± half, so a
 * backlog does not return at once), for as long as the proxy is down.
 */
export function proxyFailed(ctx: DeliverContext, row: LoadedDelivery, result: SendResult): DeliverResult {
  const reason = result.proxyFailure ?? 'error';
  ctx.metrics.proxyFailures.inc({ reason });
  ctx.metrics.held.inc({ reason: 'proxy' });
  const base = ctx.config.DELIVERY_PROXY_RETRY ?? DEFAULT_PROXY_RETRY_MS;
  const delayMs = Math.max(1, Math.round(base * (0.5 + Math.random())));
  ctx.logger.warn('egress proxy failed; the delivery waits for it, not counted against the endpoint', {
    delivery_id: row.id, webhook_id: row.webhook_id, proxy_failure: reason, retry_in_ms: delayMs, host: hostOf(row.url),
  });
  return { outcome: 'held', delayMs, next: { kind: 'later', delayMs } };
}
