// Why a callback was refused. The codes are part of the package's API: a
// receiver may branch on them and Hookline shows the answer's body in the
// delivery log, so their values never change.

export const VERIFICATION_ERROR_STATUS = {
  /** Neither `webhook-signature` nor `X-<brand>-Signature`, or `webhook-id` / `webhook-timestamp` missing beside `webhook-signature`. */
  missing_headers: 400,
  /** `webhook-timestamp` is not Unix seconds. */
  invalid_timestamp: 400,
  /** `webhook-timestamp` is older than the tolerance: a replay, or a clock far behind. */
  timestamp_too_old: 400,
  /** `webhook-timestamp` is further ahead than the tolerance. */
  timestamp_in_future: 400,
  /** No signature in the header matches the secret (wrong secret, changed body or headers, or a forgery). */
  invalid_signature: 400,
  /** `staticSecret` was given and `X-Webhook-Secret` is missing or differs. */
  invalid_static_secret: 400,
  /** The signature matched but the body is not a Hookline event envelope. */
  invalid_payload: 400,
  /** The middleware read more than its `limit`. */
  payload_too_large: 413,
  /** The receiver's own configuration: the secret is not a `whsec_…` signing secret. */
  invalid_secret: 500,
} as const;

export type WebhookVerificationErrorCode = keyof typeof VERIFICATION_ERROR_STATUS;

export class WebhookVerificationError extends Error {
  readonly code: WebhookVerificationErrorCode;
  /** The HTTP status a receiver answers with (what verifyMiddleware sends). */
  readonly status: number;

  constructor(code: WebhookVerificationErrorCode, message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.code = code;
    this.status = VERIFICATION_ERROR_STATUS[code];
  }
}
