// @hookline/verify: checks that a callback came from Hookline, unchanged and
// recent, before a receiver trusts it. Node's crypto only, no dependencies.
export { verify, createVerifier, DEFAULT_BRAND, DEFAULT_TOLERANCE_SECONDS } from './verify';
export type { VerifyOptions, Verifier, HeadersInput, RawBody, WebhookEvent, DocumentCompletedData, ExtractionSummaryData } from './verify';
export { WebhookVerificationError, VERIFICATION_ERROR_STATUS } from './errors';
export type { WebhookVerificationErrorCode } from './errors';
export { verifyMiddleware, readRawBody, DEFAULT_BODY_LIMIT } from './middleware';
export type { VerifyMiddleware, VerifyMiddlewareOptions, WebhookRequest } from './middleware';
