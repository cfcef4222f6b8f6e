// How an attempt failed without a usable answer: the codes the worker's sender
// records as an attempt's `error` (and a delivery's, a webhook.failing's or a
// delivery.exhausted's `last_error`), written once. The sender's type, the
// dashboard's words for each (apps/api/src/dashboard/webhook-views.ts, a test
// checks each code has them) and the API's descriptions are built from this list.

export const SEND_ERROR_CODES = [
  'timeout',
  'connection_refused',
  'connection_reset',
  'dns_failure',
  /** The target resolved to a private or loopback address (ALLOW_PRIVATE_TARGETS off). */
  'blocked_address',
  'tls_error',
  /** A 3xx: redirects are not followed. */
  'redirect',
  'invalid_url',
  /** Any other failure before an answer arrived. */
  'network_error',
  /** The egress proxy failed (unreachable, or CONNECT refused): nothing reached the endpoint. */
  'proxy_error',
] as const;

export type SendErrorCode = (typeof SEND_ERROR_CODES)[number];

/** For the API's descriptions of an `error` or `last_error` field. */
export const SEND_ERRORS_TEXT = `null when an answer arrived, or how the attempt failed: ${SEND_ERROR_CODES.join(', ')}`;
