import { z } from 'zod';

// Custom headers of a webhook (docs/api.md, "Custom headers"): extra request
// headers sent with every callback, e.g. an Authorization token for a
// receiver behind an API gateway. Values may be credentials, so the API stores
// the whole map encrypted (the secret box) and the worker decrypts it at send
// time; the owner's own API key reads them back on the webhook object, and no
// log line ever carries them.
//
// What must stay true: a custom header can never replace or add to a header
// Hookline sets itself (the signatures, ids and timestamp a receiver verifies,
// the body's framing) nor steer a proxy or the connection (hop-by-hop). The API
// refuses such names, and the worker drops them again at send time (a row
// written before a name became reserved, or under another WEBHOOK_BRAND).

export const CUSTOM_HEADER_LIMITS = { entries: 10, nameLength: 64, valueLength: 1024 } as const;

/** An RFC 7230 token (`tchar`s): what a header name may be. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible ASCII and spaces: no CR, LF, NUL or other control character (no header injection), nothing Node would refuse to send. */
const HEADER_VALUE = /^[\x20-\x7e]*$/;

/** Headers Hookline writes on every callback, or that frame its body. */
const HOOKLINE_HEADERS = ['content-type', 'content-length', 'content-encoding', 'user-agent', 'host', 'x-webhook-secret', 'expect'];
/** Hop-by-hop headers (RFC 7230 §6.1) and their kin: they concern the connection or a proxy, never the receiver. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade'];

export type CustomHeaders = Record<string, string>;

/**
 * Why a header name may not be a custom header, or null when it may.
 * `brand` is WEBHOOK_BRAND: every `X-<brand>-*` name is Hookline's.
 */
export function reservedHeaderReason(name: string, brand: string | null): string | null {
  const lower = name.toLowerCase();
  if (HOOKLINE_HEADERS.includes(lower)) return `is set by Hookline itself and cannot be replaced`;
  if (lower.startsWith('webhook-')) return 'is reserved: webhook-* are the Standard Webhooks headers Hookline signs with';
  if (brand !== null && lower.startsWith(`x-${brand.toLowerCase()}-`)) return `is reserved: X-${brand}-* are Hookline's own callback headers`;
  if (HOP_BY_HOP.includes(lower)) return 'is a hop-by-hop header: it concerns the connection, not the receiver';
  if (lower.startsWith('proxy-')) return 'is reserved: proxy-* headers are for proxies, not the receiver';
  return null;
}

/** The checks on one entry that do not depend on WEBHOOK_BRAND. */
function entryProblem(name: string, value: unknown): { onName: boolean; message: string } | null {
  if (name.length === 0 || name.length > CUSTOM_HEADER_LIMITS.nameLength) return { onName: true, message: `must be a header name of 1 to ${CUSTOM_HEADER_LIMITS.nameLength} characters` };
  if (!HEADER_NAME.test(name)) return { onName: true, message: "is not a valid header name: letters, digits and !#$%&'*+.^_`|~- only (an RFC 7230 token)" };
  if (typeof value !== 'string') return { onName: false, message: 'must be a string' };
  if (value.length > CUSTOM_HEADER_LIMITS.valueLength) return { onName: false, message: `must be at most ${CUSTOM_HEADER_LIMITS.valueLength} characters` };
  if (!HEADER_VALUE.test(value)) return { onName: false, message: 'must be printable ASCII (no CR, LF or other control characters)' };
  return null;
}

/**
 * The `headers` of a webhook as a request gives it: an object of header names
 * to values. Issues name `headers` or `headers.<name>`; a name too long or
 * malformed to echo safely is reported on `headers`. `{}` is stored as none.
 * WEBHOOK_BRAND's `X-<brand>-*` names are refused by the API service, which
 * knows the brand (reservedHeaderReason); every other reserved name here.
 */
export const customHeadersInput = z
  .preprocess(
    (value, ctx) => {
      // zod copies a record key by key: assigning "__proto__" would set the copy's prototype (JSON.parse made it an ordinary key).
      if (value !== null && typeof value === 'object' && Object.hasOwn(value, '__proto__')) {
        ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'is not a valid header name' });
      }
      return value;
    },
    z.record(z.string(), z.unknown(), { error: 'must be a JSON object of header names to values, e.g. {"Authorization": "Bearer …"}, or null' }),
  )
  .superRefine((headers, ctx) => {
    const names = Object.keys(headers);
    if (names.length > CUSTOM_HEADER_LIMITS.entries) ctx.addIssue({ code: 'custom', message: `must have at most ${CUSTOM_HEADER_LIMITS.entries} headers (it has ${names.length})` });
    const seen = new Set<string>();
    for (const name of names) {
      const problem = entryProblem(name, headers[name]);
      if (problem?.onName && !(name.length <= CUSTOM_HEADER_LIMITS.nameLength && HEADER_NAME.test(name))) {
        // Not a token: echoing it as a path could carry anything; say so on `headers`.
        ctx.addIssue({ code: 'custom', message: `has an invalid header name: ${problem.message}` });
        continue;
      }
      if (problem) {
        ctx.addIssue({ code: 'custom', path: [name], message: problem.message });
        continue;
      }
      // X-<brand>-* is the service's to check: it knows WEBHOOK_BRAND.
      const reserved = reservedHeaderReason(name, null);
      if (reserved) ctx.addIssue({ code: 'custom', path: [name], message: reserved });
      const lower = name.toLowerCase();
      if (seen.has(lower)) ctx.addIssue({ code: 'custom', path: [name], message: 'is given twice (header names are case-insensitive)' });
      seen.add(lower);
    }
  })
  .transform((headers): CustomHeaders | null => (Object.keys(headers).length === 0 ? null : (headers as CustomHeaders)))
  .meta({
    description: `Extra request headers sent with every callback (at most ${CUSTOM_HEADER_LIMITS.entries}; names are RFC 7230 tokens; values printable ASCII, at most ${CUSTOM_HEADER_LIMITS.valueLength} characters). Hookline's own headers (content-type, content-length, user-agent, host, X-Webhook-Secret, X-<brand>-*, webhook-*) and hop-by-hop ones (connection, keep-alive, transfer-encoding, te, trailer, upgrade, proxy-*) are refused. Stored encrypted. null or {}: none.`,
    maxProperties: CUSTOM_HEADER_LIMITS.entries,
    example: { Authorization: 'Bearer 3f9c…', 'X-Tenant': 'acme' },
  });

/** Stored form: the map's JSON, encrypted; null when there is none. */
export function sealCustomHeaders(box: { encrypt(plain: string): string }, headers: CustomHeaders | null): string | null {
  return headers && Object.keys(headers).length > 0 ? box.encrypt(JSON.stringify(headers)) : null;
}

/** The stored map (an empty map for none). Anything that is not an object of strings reads as none. */
export function openCustomHeaders(box: { decrypt(stored: string): string }, stored: string | null): CustomHeaders {
  if (stored === null) return {};
  const parsed: unknown = JSON.parse(box.decrypt(stored));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
  return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

/** The headers the worker may send: reserved names (under this brand) dropped. */
export function sendableCustomHeaders(headers: CustomHeaders, brand: string): CustomHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name, value]) => HEADER_NAME.test(name) && HEADER_VALUE.test(value) && reservedHeaderReason(name, brand) === null));
}
