import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { WebhookVerificationError } from './errors';

// Verification of a Hookline callback, Node's crypto only. A callback carries
// two signatures over the same raw bytes:
//   webhook-id / webhook-timestamp / webhook-signature  Standard Webhooks v1: space-separated
//     `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the base64-decoded part after `whsec_`;
//   X-<brand>-Signature  comma-separated hex HMAC-SHA256 of the body, keyed with the whole `whsec_…` string.
// The first is checked whenever it is present (it signs a timestamp, so replays
// are caught); the second only where it is absent.

export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;
export const DEFAULT_BRAND = 'PerfectParser';
const SECRET_PREFIX = 'whsec_';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BRAND = /^[A-Za-z0-9-]+$/;

/** A plain header object in any case (Node's `req.headers`, a literal) or a Fetch `Headers`. */
export type HeadersInput = Readonly<Record<string, string | readonly string[] | number | undefined>> | { get(name: string): string | null | undefined };

/** The exact bytes received. A string is taken as UTF-8. */
export type RawBody = string | Uint8Array;

export type VerifyOptions = {
  /** Seconds `webhook-timestamp` may be off from this machine's clock, either way. Default 300. */
  tolerance?: number;
  /** `WEBHOOK_BRAND` of the Hookline deployment: names the hex header `X-<brand>-Signature`. Default `PerfectParser`. */
  brand?: string;
  /** The webhook's static secret, if one is set: then `X-Webhook-Secret` must equal it. */
  staticSecret?: string;
  /**
   * Accept a callback that carries only `X-<brand>-Signature` (no `webhook-signature`). Default true.
   * That header signs no timestamp, so a captured callback stripped of its Standard Webhooks headers
   * can be replayed at any time: set false when every sender you accept is Hookline.
   */
  hexFallback?: boolean;
};

/** The envelope of every Hookline callback. */
export type WebhookEvent<TData = Record<string, unknown>> = {
  id: string;
  event: string;
  created_at: string;
  test: boolean;
  data: TData;
};

/** `data` of `extraction.document_completed`. */
export type DocumentCompletedData = {
  extraction_id: string;
  document_id: string;
  parser_id: string | null;
  status: 'completed' | 'failed';
  file_name: string | null;
  result?: Record<string, unknown>;
  error?: string | Record<string, unknown>;
};

/** `data` of `extraction.job_completed`, `batch.completed`, `batch.failed` and `batch.partial`. */
export type ExtractionSummaryData = {
  extraction_id: string;
  parser_id: string | null;
  status: 'completed' | 'failed' | 'partial';
  document_count: number;
  completed_count: number;
  failed_count: number;
};

/** A signing secret in both key forms, prepared once. */
type SigningKey = { whole: Buffer; decoded: Buffer };

/** verify() with its secret and options bound and checked: what verifyMiddleware keeps between requests. */
export type Verifier = (rawBody: RawBody, headers: HeadersInput) => WebhookEvent;

/**
 * Checks a callback and returns its parsed event, or throws WebhookVerificationError.
 * `secret` is the webhook's `signing_secret` (`whsec_…`); a list of them is accepted too,
 * for a receiver that holds the old and the new one while it rotates.
 */
export function verify<TData = Record<string, unknown>>(
  rawBody: RawBody,
  headers: HeadersInput,
  secret: string | readonly string[],
  options: VerifyOptions = {},
): WebhookEvent<TData> {
  return createVerifier(secret, options)(rawBody, headers) as WebhookEvent<TData>;
}

/** Validates the secret and options once (throwing at start-up rather than per request) and returns the check. */
export function createVerifier(secret: string | readonly string[], options: VerifyOptions = {}): Verifier {
  const keys = signingKeys(secret);
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE_SECONDS;
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
    throw new TypeError('tolerance must be a number of seconds, 0 or more');
  }
  const brand = options.brand ?? DEFAULT_BRAND;
  if (typeof brand !== 'string' || !BRAND.test(brand)) throw new TypeError('brand must be letters, digits and dashes (the WEBHOOK_BRAND of the deployment)');
  const hexHeader = `x-${brand.toLowerCase()}-signature`;
  const staticSecret = options.staticSecret;
  if (staticSecret !== undefined && (typeof staticSecret !== 'string' || staticSecret === '')) throw new TypeError('staticSecret must be a non-empty string');
  const hexFallback = options.hexFallback ?? true;

  return (rawBody, headers) => {
    const body = bodyBytes(rawBody);
    const header = headerReader(headers);
    const standard = header('webhook-signature');
    if (standard !== undefined) {
      checkStandard(keys, body, header('webhook-id'), header('webhook-timestamp'), standard, tolerance);
    } else {
      const hex = header(hexHeader);
      if (hex === undefined || !hexFallback) {
        throw new WebhookVerificationError(
          'missing_headers',
          hexFallback ? `neither webhook-signature nor X-${brand}-Signature is present` : 'webhook-signature is missing',
        );
      }
      checkHex(keys, body, hex, brand);
    }
    if (staticSecret !== undefined && !sameSecret(header('x-webhook-secret') ?? '', staticSecret)) {
      throw new WebhookVerificationError('invalid_static_secret', 'X-Webhook-Secret is missing or does not match');
    }
    return parseEvent(body);
  };
}

function signingKeys(secret: string | readonly string[]): SigningKey[] {
  const list: readonly unknown[] = Array.isArray(secret) ? secret : [secret];
  if (list.length === 0) throw new WebhookVerificationError('invalid_secret', 'no signing secret given');
  return list.map((s, i) => {
    const which = list.length > 1 ? `secret ${i + 1}` : 'the secret';
    if (typeof s !== 'string' || !s.startsWith(SECRET_PREFIX)) {
      throw new WebhookVerificationError('invalid_secret', `${which} must be the webhook's whole signing_secret, starting with ${SECRET_PREFIX}`);
    }
    const encoded = s.slice(SECRET_PREFIX.length);
    if (!encoded || !BASE64.test(encoded)) {
      throw new WebhookVerificationError('invalid_secret', `${which} is not ${SECRET_PREFIX} followed by base64: was it copied whole?`);
    }
    return { whole: Buffer.from(s, 'utf8'), decoded: Buffer.from(encoded, 'base64') };
  });
}

function bodyBytes(rawBody: RawBody): Buffer {
  if (typeof rawBody === 'string') return Buffer.from(rawBody, 'utf8');
  if (rawBody instanceof Uint8Array) return Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
  throw new TypeError('verify needs the raw body as received (a Buffer or string), not parsed JSON: use express.raw() or verifyMiddleware()');
}

function headerReader(headers: HeadersInput): (name: string) => string | undefined {
  if (typeof headers.get === 'function') {
    const fetchHeaders = headers as { get(name: string): string | null | undefined };
    return (name) => fetchHeaders.get(name) ?? undefined;
  }
  const byName = new Map<string, string>();
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    // Node joins repeated headers into one string (arrays are for set-cookie); a literal may hold an array: its first value counts.
    const first: unknown = Array.isArray(value) ? value[0] : value;
    if (typeof first !== 'string' && typeof first !== 'number') continue;
    const key = name.toLowerCase();
    if (!byName.has(key)) byName.set(key, String(first));
  }
  return (name) => byName.get(name);
}

/** Constant time for equal lengths; a signature's length is public (fixed by its algorithm). */
function sameSignature(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Any two strings in constant time: hashing first hides the expected length too. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Every candidate against every key, without stopping at a match: the time does not tell which one matched. */
function anyMatch(candidates: string[], expected: string[]): boolean {
  let matched = false;
  for (const candidate of candidates) for (const e of expected) matched = sameSignature(candidate, e) || matched;
  return matched;
}

function checkStandard(keys: SigningKey[], body: Buffer, id: string | undefined, timestamp: string | undefined, header: string, tolerance: number): void {
  if (!id || !timestamp) throw new WebhookVerificationError('missing_headers', 'webhook-signature needs webhook-id and webhook-timestamp beside it');
  if (!/^\d{1,15}$/.test(timestamp)) throw new WebhookVerificationError('invalid_timestamp', 'webhook-timestamp is not Unix seconds');
  const now = Math.floor(Date.now() / 1000);
  const sent = Number(timestamp);
  if (now - sent > tolerance) throw new WebhookVerificationError('timestamp_too_old', `webhook-timestamp is more than ${tolerance} s old`);
  if (sent - now > tolerance) throw new WebhookVerificationError('timestamp_in_future', `webhook-timestamp is more than ${tolerance} s ahead of this clock`);

  const candidates: string[] = [];
  for (const entry of header.split(/\s+/)) {
    const comma = entry.indexOf(',');
    if (comma > 0 && entry.slice(0, comma) === 'v1') candidates.push(entry.slice(comma + 1));
  }
  const expected = keys.map((key) => createHmac('sha256', key.decoded).update(`${id}.${timestamp}.`, 'utf8').update(body).digest('base64'));
  if (!anyMatch(candidates, expected)) throw new WebhookVerificationError('invalid_signature', 'no webhook-signature matches the secret');
}

function checkHex(keys: SigningKey[], body: Buffer, header: string, brand: string): void {
  const candidates = header.split(',').map((s) => s.trim().toLowerCase());
  const expected = keys.map((key) => createHmac('sha256', key.whole).update(body).digest('hex'));
  if (!anyMatch(candidates, expected)) throw new WebhookVerificationError('invalid_signature', `no X-${brand}-Signature matches the secret`);
}

function parseEvent(body: Buffer): WebhookEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new WebhookVerificationError('invalid_payload', 'the body is not JSON');
  }
  const e = parsed as Partial<WebhookEvent> | null;
  const envelope =
    typeof e === 'object' && e !== null && !Array.isArray(e) &&
    typeof e.id === 'string' && typeof e.event === 'string' && typeof e.created_at === 'string' &&
    typeof e.test === 'boolean' && typeof e.data === 'object' && e.data !== null && !Array.isArray(e.data);
  if (!envelope) throw new WebhookVerificationError('invalid_payload', 'the body is not a Hookline event (id, event, created_at, test, data)');
  return e as WebhookEvent;
}
