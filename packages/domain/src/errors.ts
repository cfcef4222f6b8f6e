// The API's error codes (docs/api.md#errors) and the HTTP status each maps to.
export const ERROR_STATUS = {
  INVALID_PAYLOAD: 400,
  UNAUTHORIZED: 401,
  PLAN_REQUIRED: 403,
  // Dashboard only: a form posted without its CSRF token.
  FORBIDDEN: 403,
  RESOURCE_NOT_FOUND: 404,
  DUPLICATE_WEBHOOK: 409,
  IDEMPOTENCY_CONFLICT: 409,
  // The account already has MAX_WEBHOOKS_PER_ACCOUNT webhooks (not deleted).
  LIMIT_REACHED: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export type ErrorDetail = { path: string; message: string };

export type ErrorEnvelope = {
  error: { code: ErrorCode; message: string; details?: ErrorDetail[] };
};

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = ERROR_STATUS[code];
  }
}

export function toEnvelope(err: AppError): ErrorEnvelope {
  return {
    error: { code: err.code, message: err.message, ...(err.details?.length ? { details: err.details } : {}) },
  };
}
