import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi, type ResponseConfig, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  API_EVENT_NAMES,
  API_KEY_MODES,
  CIRCUIT_STATES,
  DELIVERY_STATUSES,
  ERROR_STATUS,
  EVENT_NAMES,
  MAX_IN_FLIGHT_RANGE,
  PLANS,
  RATE_LIMIT_PER_SECOND_RANGE,
  createAccountBody,
  createApiKeyBody,
  createExtractionBody,
  createWebhookBody,
  deliveryListQuery,
  documentReportBody,
  listQuery,
  publishEventBody,
  recoverBody,
  updateWebhookBody,
  type ErrorCode,
} from '@hookline/domain';

// The OpenAPI 3.1 description of the integrator and platform APIs of docs/api.md (and the operations
// endpoints). Request bodies and queries are THE zod schemas the routes
// validate with (packages/domain/src/schemas.ts): never restate them here.
// Responses are declared below because the routes build them with the
// serializers of packages/domain/src/resources.ts, which have no schema.
//
// tests/ops/openapi.test.ts compares these paths with the routes the app
// actually serves, both ways: a route added without its spec fails the suite.

extendZodWithOpenApi(z);

const EXAMPLE_TIME = '2026-11-23T10:00:00.000Z';
const isoTime = z.string().meta({ format: 'date-time', example: EXAMPLE_TIME });
const nullableTime = isoTime.nullable();

// ---- response schemas ----

const webhookFields = {
  id: z.string().meta({ example: 'wh_3kTMd9e2Rz8wLq5vN1bXc7Ya' }),
  url: z.string().meta({ example: 'https://example.com/hooks' }),
  events: z.array(z.enum(EVENT_NAMES)).meta({ example: ['extraction.document_completed'] }),
  description: z.string().nullable(),
  parser_id: z.string().nullable().meta({ description: 'The scope: null means every parser.' }),
  source: z.enum(['api', 'dashboard']),
  is_active: z.boolean(),
  status: z.enum(['active', 'paused', 'failing', 'disabled']).meta({
    description: '`paused`: is_active false; `failing`: the last delivery used up its retries and nothing succeeded since; `disabled`: by the service (see disabled_reason).',
  }),
  retry_enabled: z.boolean(),
  max_retries: z.number().int().min(0).max(10),
  has_static_secret: z.boolean().meta({ description: 'Whether an X-Webhook-Secret is sent; the secret itself is never returned.' }),
  disabled_reason: z.enum(['failing_too_long', 'gone']).nullable(),
  failing_since: nullableTime,
  max_in_flight: z.number().int().min(MAX_IN_FLIGHT_RANGE.min).max(MAX_IN_FLIGHT_RANGE.max).nullable().meta({ description: 'Deliveries in flight to this webhook at once, across every worker. null: the service default (ENDPOINT_CONCURRENCY).' }),
  rate_limit_per_second: z.number().int().min(RATE_LIMIT_PER_SECOND_RANGE.min).max(RATE_LIMIT_PER_SECOND_RANGE.max).nullable().meta({ description: 'At most this many attempts start per second. null: no limit.' }),
  circuit: z.enum(CIRCUIT_STATES).meta({
    description: '`closed`: deliveries flow; `open`: after consecutive failed attempts, deliveries are held (no attempt is used up) until circuit_retry_at; `half_open`: one probe attempt is in flight, and its outcome closes or reopens the circuit.',
  }),
  circuit_retry_at: nullableTime.meta({ description: 'While the circuit is open: when one probe attempt is let through. null when closed.' }),
  created_at: isoTime,
  updated_at: isoTime,
};

const webhookExample = {
  id: 'wh_3kTMd9e2Rz8wLq5vN1bXc7Ya', url: 'https://example.com/hooks', events: ['extraction.document_completed'],
  description: null, parser_id: null, source: 'api', is_active: true, status: 'active', retry_enabled: true, max_retries: 5,
  has_static_secret: true, disabled_reason: null, failing_since: null, max_in_flight: null, rate_limit_per_second: null,
  circuit: 'closed', circuit_retry_at: null, created_at: EXAMPLE_TIME, updated_at: EXAMPLE_TIME,
};

const Webhook = z.object(webhookFields).openapi('Webhook', { example: webhookExample });

const WebhookWithSecret = z
  .object({
    ...webhookFields,
    signing_secret: z.string().meta({ description: 'Shown in this answer only: store it now. Verifies X-PerfectParser-Signature and webhook-signature.', example: 'whsec_MfKQ9r4GKSqqKHtWg9wTbYzHmqHC8Lw0gB3m3jLNkKc=' }),
  })
  .openapi('WebhookWithSecret', { example: { ...webhookExample, signing_secret: 'whsec_MfKQ9r4GKSqqKHtWg9wTbYzHmqHC8Lw0gB3m3jLNkKc=' } });

const Attempt = z
  .object({
    id: z.string(),
    delivery_id: z.string(),
    event_id: z.string(),
    event: z.enum(EVENT_NAMES),
    attempt_number: z.number().int().min(1),
    status: z.enum(['succeeded', 'failed']),
    response_status: z.number().int().nullable(),
    response_body: z.string().nullable().meta({ description: 'The first 2 KiB of the answer.' }),
    error: z.string().nullable().meta({ description: 'null, or timeout, connection_refused, dns_failure, blocked_address, tls_error, redirect, …' }),
    duration_ms: z.number().int(),
    created_at: isoTime,
    next_retry_at: nullableTime,
  })
  .openapi('Attempt', {
    example: {
      id: 'att_8Qb2cNn4x0Lr6TzW1kVyH3sJ', delivery_id: 'dlv_5Rm1aKp7Yc2Lw9Xq4Tz6Bn8V', event_id: 'evt_2Jd8sWq5Lm3Kx7Vb1Nc9Tz4R',
      event: 'extraction.document_completed', attempt_number: 1, status: 'failed', response_status: 503,
      response_body: 'Service Unavailable', error: null, duration_ms: 212, created_at: EXAMPLE_TIME, next_retry_at: '2026-11-23T10:05:00.000Z',
    },
  });

const Delivery = z
  .object({
    id: z.string(),
    webhook_id: z.string(),
    event_id: z.string(),
    event: z.enum(EVENT_NAMES),
    status: z.enum(DELIVERY_STATUSES),
    attempt_count: z.number().int(),
    next_attempt_at: nullableTime,
    last_attempt_at: nullableTime,
    created_at: isoTime,
  })
  .openapi('Delivery', {
    example: {
      id: 'dlv_5Rm1aKp7Yc2Lw9Xq4Tz6Bn8V', webhook_id: 'wh_3kTMd9e2Rz8wLq5vN1bXc7Ya', event_id: 'evt_2Jd8sWq5Lm3Kx7Vb1Nc9Tz4R',
      event: 'extraction.document_completed', status: 'pending_retry', attempt_count: 1,
      next_attempt_at: '2026-11-23T10:05:00.000Z', last_attempt_at: EXAMPLE_TIME, created_at: EXAMPLE_TIME,
    },
  });

const Account = z
  .object({ id: z.string(), name: z.string(), plan: z.enum(PLANS), monthly_quota: z.number().int().nullable(), created_at: isoTime })
  .openapi('Account', { example: { id: 'acct_7Hc2Nq9Lx4Wb1Tz8Km3Vr5Yd', name: 'Acme', plan: 'pro', monthly_quota: 10_000, created_at: EXAMPLE_TIME } });

const ApiKey = z
  .object({
    id: z.string(),
    key: z.string().meta({ description: 'Shown in this answer only; Hookline keeps a hash.' }),
    mode: z.enum(API_KEY_MODES),
    created_at: isoTime,
  })
  .openapi('ApiKey', { example: { id: 'key_1Xb7Lq3Nc9Tz5Wm2Kr8Vd4Hy', key: 'hk_test_4fQ8nW2xLc7Rb1Tz9Km3Vy5Hd6Jp0Sa', mode: 'test', created_at: EXAMPLE_TIME } });

const Extraction = z
  .object({
    extraction_id: z.string(),
    account_id: z.string(),
    parser_id: z.string().nullable(),
    document_count: z.number().int(),
    completed_count: z.number().int(),
    failed_count: z.number().int(),
    status: z.string().meta({ description: 'processing, then completed, failed or partial once every document is terminal.' }),
    completed_at: nullableTime,
    created_at: isoTime,
  })
  .openapi('Extraction', {
    example: {
      extraction_id: 'ext_9Lq2Wb7Nc4Tz1Km8Vr3Yd5Hx', account_id: 'acct_7Hc2Nq9Lx4Wb1Tz8Km3Vr5Yd', parser_id: 'invoices',
      document_count: 2, completed_count: 0, failed_count: 0, status: 'processing', completed_at: null, created_at: EXAMPLE_TIME,
    },
  });

const DocumentResult = z
  .object({
    extraction_id: z.string(),
    document_id: z.string(),
    parser_id: z.string().nullable(),
    status: z.enum(['completed', 'failed']),
    file_name: z.string().nullable(),
    result: z.record(z.string(), z.unknown()).nullable(),
    error: z.union([z.string(), z.record(z.string(), z.unknown())]).nullable().meta({ description: 'For a failed document: the error the platform reported, a string or an object, unchanged.' }),
    reported_at: isoTime,
  })
  .openapi('DocumentResult', {
    description: 'The last result the platform reported for a document: the fallback when a callback was missed.',
    example: {
      extraction_id: 'ext_9Lq2Wb7Nc4Tz1Km8Vr3Yd5Hx', document_id: 'doc-1', parser_id: 'invoices', status: 'completed',
      file_name: 'a.pdf', result: { total: 42.5 }, error: null, reported_at: EXAMPLE_TIME,
    },
  });

const EmittedEvent = z
  .object({ id: z.string(), event: z.enum(EVENT_NAMES), deliveries: z.number().int().min(0).meta({ description: 'Deliveries written: one per matching webhook.' }) })
  .openapi('EmittedEvent', { example: { id: 'evt_2Jd8sWq5Lm3Kx7Vb1Nc9Tz4R', event: 'extraction.document_completed', deliveries: 1 } });

const DocumentReportAccepted = z
  .object({
    accepted: z.literal(true),
    duplicate: z.boolean().meta({ description: 'true when this document was already reported: nothing new was emitted.' }),
    extraction: Extraction,
    events: z.array(EmittedEvent),
  })
  .openapi('DocumentReportAccepted');

const EventType = z
  .object({ name: z.enum(EVENT_NAMES), description: z.string(), source: z.enum(['api', 'dashboard']) })
  .openapi('EventType', { example: { name: 'extraction.document_completed', description: 'One document of an extraction reached completed or failed.', source: 'api' } });

const page = <T extends z.ZodType>(name: string, item: T) =>
  z
    .object({
      data: z.array(item),
      has_more: z.boolean(),
      next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` to get the next page; null on the last page.' }),
    })
    .openapi(name);

const WebhookPage = page('WebhookPage', Webhook);
const DeliveryPage = page('DeliveryPage', Delivery);

const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

const errorBody = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string().meta({ description: 'What went wrong and, where you can act on it, what to do.' }),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

const ErrorEnvelope = z
  .object({ error: errorBody })
  .openapi('Error', { example: { error: { code: 'INVALID_PAYLOAD', message: 'url: must be an https URL', details: [{ path: 'url', message: 'must be an https URL' }] } } });

const readinessChecks = z.object({ postgres: z.enum(['up', 'down']), redis: z.enum(['up', 'down']) });

const Readiness = z
  .object({ status: z.literal('ready'), checks: readinessChecks })
  .openapi('Readiness', { example: { status: 'ready', checks: { postgres: 'up', redis: 'up' } } });

const NotReady = z
  .object({ error: errorBody, checks: readinessChecks })
  .openapi('NotReady', { example: { error: { code: 'SERVICE_UNAVAILABLE', message: 'Redis is unreachable; the service is not ready to take traffic.' }, checks: { postgres: 'up', redis: 'down' } } });

// ---- the callback (docs/api.md#callbacks), described as an OpenAPI webhook ----

const CallbackBody = z
  .object({
    id: z.string().meta({ description: 'The event id (evt_…).' }),
    event: z.enum(EVENT_NAMES),
    created_at: isoTime,
    test: z.boolean(),
    data: z.record(z.string(), z.unknown()),
  })
  .openapi('Callback', {
    example: {
      id: 'evt_2Jd8sWq5Lm3Kx7Vb1Nc9Tz4R', event: 'extraction.document_completed', created_at: EXAMPLE_TIME, test: false,
      data: { extraction_id: 'ext_9Lq2Wb7Nc4Tz1Km8Vr3Yd5Hx', document_id: 'doc-1', parser_id: 'invoices', status: 'completed', file_name: 'a.pdf', result: { total: 42.5 } },
    },
  });

// ---- shared pieces ----

const idParam = (example: string) => z.object({ id: z.string().meta({ example }) });
const documentParams = z.object({
  extraction_id: z.string().meta({ example: 'ext_9Lq2Wb7Nc4Tz1Km8Vr3Yd5Hx' }),
  document_id: z.string().meta({ example: 'doc-1' }),
});
const idempotencyHeader = z.object({
  'idempotency-key': z.string().min(1).max(255).optional().meta({
    description: 'Makes a retried POST safe: the first answer is replayed for 24 h for the same body; another body gets 409 IDEMPOTENCY_CONFLICT.',
    example: '5f0c7a0e-4a0e-4f59-9a55-3c1b3f0f2d1e',
  }),
});

const json = (schema: z.ZodType, description: string): ResponseConfig => ({ description, content: { 'application/json': { schema } } });

const ERROR_DESCRIPTIONS: Record<string, string> = {
  InvalidPayload: 'INVALID_PAYLOAD: validation failed (bad JSON, unknown field or event, non-HTTPS URL with a live key, limit > 100, bad cursor…).',
  Unauthorized: 'UNAUTHORIZED: missing, unknown or revoked key or token.',
  PlanRequired: 'PLAN_REQUIRED: the account is on the free plan; webhooks need pro or enterprise.',
  NotFound: 'RESOURCE_NOT_FOUND: no such resource, deleted, or another account\'s.',
  Conflict: 'DUPLICATE_WEBHOOK (same URL and scope already registered) or IDEMPOTENCY_CONFLICT (Idempotency-Key reused with another body).',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE: the request body is over 256 KiB.',
  RateLimited: 'RATE_LIMITED: too many requests for this key; Retry-After says when to try again.',
  ServiceUnavailable: 'SERVICE_UNAVAILABLE: the database is unreachable; try again shortly.',
  InternalError: 'INTERNAL_ERROR: anything else; the message reveals nothing internal.',
};
const ref = (name: keyof typeof ERROR_DESCRIPTIONS) => ({ $ref: `#/components/responses/${name}` });

type Access = 'api_key' | 'platform' | 'public';

const SECURITY: Record<Access, RouteConfig['security']> = {
  api_key: [{ ApiKeyBearer: [] }, { ApiKeyHeader: [] }],
  platform: [{ PlatformToken: [] }],
  public: [],
};

/** The error responses every operation of a kind can give, by the table of docs/api.md#errors. */
function errorResponses(access: Access, opts: { body?: boolean; notFound?: boolean; conflict?: boolean; plan?: boolean }) {
  if (access === 'public') return {};
  return {
    ...(opts.body ? { 400: ref('InvalidPayload') } : {}),
    401: ref('Unauthorized'),
    ...(opts.plan ? { 403: ref('PlanRequired') } : {}),
    ...(opts.notFound ? { 404: ref('NotFound') } : {}),
    ...(opts.conflict ? { 409: ref('Conflict') } : {}),
    ...(opts.body ? { 413: ref('PayloadTooLarge') } : {}),
    ...(access === 'api_key' ? { 429: ref('RateLimited') } : {}),
    500: ref('InternalError'),
    503: ref('ServiceUnavailable'),
  };
}

type Operation = {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** Express syntax (`:id`): the route table the app is checked against. */
  path: string;
  access: Access;
  tag: string;
  operationId: string;
  summary: string;
  description?: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  idempotent?: boolean;
  notFound?: boolean;
  conflict?: boolean;
  plan?: boolean;
  responses: Record<number, ResponseConfig>;
};

const noContent = (description: string): ResponseConfig => ({ description });

/** Every route of the integrator and platform APIs, plus the operations endpoints. */
export const API_OPERATIONS: Operation[] = [
  // ---- integrator API (/v1) ----
  {
    method: 'get', path: '/v1/webhooks', access: 'api_key', tag: 'Webhooks', operationId: 'listWebhooks', plan: true,
    summary: 'List webhooks', description: 'The account\'s webhooks, newest first, deleted ones left out.',
    query: listQuery, responses: { 200: json(WebhookPage, 'A page of webhooks.') },
  },
  {
    method: 'post', path: '/v1/webhooks', access: 'api_key', tag: 'Webhooks', operationId: 'createWebhook', plan: true, conflict: true, idempotent: true,
    summary: 'Create a webhook', description: 'A live key may register only https:// URLs; a test key may also register http://. The signing secret is in this answer only.',
    body: createWebhookBody, responses: { 201: json(z.object({ webhook: WebhookWithSecret }), 'The new webhook with its signing secret.') },
  },
  {
    method: 'get', path: '/v1/webhooks/:id', access: 'api_key', tag: 'Webhooks', operationId: 'getWebhook', plan: true, notFound: true,
    summary: 'Get a webhook', description: 'With its last 10 attempts, newest first.',
    params: idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya'), responses: { 200: json(z.object({ webhook: Webhook, recent_attempts: z.array(Attempt) }), 'The webhook.') },
  },
  {
    method: 'patch', path: '/v1/webhooks/:id', access: 'api_key', tag: 'Webhooks', operationId: 'updateWebhook', plan: true, notFound: true, conflict: true,
    summary: 'Update a webhook', description: '`secret: null` removes the static secret; `max_in_flight: null` and `rate_limit_per_second: null` go back to the defaults; `is_active: true` on a disabled webhook re-enables it and closes its circuit.',
    params: idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya'), body: updateWebhookBody, responses: { 200: json(z.object({ webhook: Webhook }), 'The updated webhook.') },
  },
  {
    method: 'delete', path: '/v1/webhooks/:id', access: 'api_key', tag: 'Webhooks', operationId: 'deleteWebhook', plan: true, notFound: true,
    summary: 'Delete a webhook', description: 'Soft delete: gone from every read; no further callback is sent, retries included.',
    params: idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya'), responses: { 204: noContent('Deleted.') },
  },
  {
    method: 'post', path: '/v1/webhooks/:id/test', access: 'api_key', tag: 'Webhooks', operationId: 'testWebhook', plan: true, notFound: true,
    summary: 'Send a test callback', description: 'A synthetic, signed extraction.job_completed callback with `"test": true`, tried once (no retries); answers once it was tried.',
    params: idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya'), responses: { 200: json(z.object({ attempt: Attempt }), 'The attempt.') },
  },
  {
    method: 'post', path: '/v1/webhooks/:id/rotate-secret', access: 'api_key', tag: 'Webhooks', operationId: 'rotateWebhookSecret', plan: true, notFound: true,
    summary: 'Rotate the signing secret', description: 'For 24 h, callbacks carry signatures by both the old and the new secret.',
    params: idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya'), responses: { 200: json(z.object({ webhook: WebhookWithSecret }), 'The webhook with its new signing secret.') },
  },
  {
    method: 'get', path: '/v1/webhooks/:id/deliveries', access: 'api_key', tag: 'Deliveries', operationId: 'listWebhookDeliveries', plan: true, notFound: true,
    summary: 'List a webhook\'s deliveries', params: idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya'), query: deliveryListQuery,
    responses: { 200: json(DeliveryPage, 'A page of deliveries, newest first.') },
  },
  {
    method: 'post', path: '/v1/webhooks/:id/recover', access: 'api_key', tag: 'Deliveries', operationId: 'recoverWebhook', plan: true, notFound: true,
    summary: 'Retry failed deliveries of a time window', params: idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya'), body: recoverBody,
    responses: { 202: json(z.object({ requeued: z.number().int().min(0) }), 'How many failed deliveries were queued again.') },
  },
  {
    method: 'get', path: '/v1/deliveries/:id', access: 'api_key', tag: 'Deliveries', operationId: 'getDelivery', plan: true, notFound: true,
    summary: 'Get a delivery with its attempts', params: idParam('dlv_5Rm1aKp7Yc2Lw9Xq4Tz6Bn8V'),
    responses: { 200: json(z.object({ delivery: Delivery, attempts: z.array(Attempt) }), 'The delivery.') },
  },
  {
    method: 'post', path: '/v1/deliveries/:id/retry', access: 'api_key', tag: 'Deliveries', operationId: 'retryDelivery', plan: true, notFound: true, conflict: true, idempotent: true,
    summary: 'Retry a delivery now', description: 'One more attempt now, whatever its state.', params: idParam('dlv_5Rm1aKp7Yc2Lw9Xq4Tz6Bn8V'),
    responses: { 202: json(z.object({ delivery: Delivery }), 'The delivery, queued for one more attempt.') },
  },
  {
    method: 'get', path: '/v1/event-types', access: 'api_key', tag: 'Events', operationId: 'listEventTypes',
    summary: 'List event types', responses: { 200: json(z.object({ data: z.array(EventType) }), 'The event catalog.') },
  },
  {
    method: 'get', path: '/v1/extractions/:extraction_id/documents/:document_id', access: 'api_key', tag: 'Events', operationId: 'getDocumentResult', notFound: true,
    summary: 'Get a document\'s last reported result', description: 'The fallback for a missed callback.', params: documentParams,
    responses: { 200: json(DocumentResult, 'The document\'s last result.') },
  },
  // ---- platform API (/internal/v1) ----
  {
    method: 'post', path: '/internal/v1/accounts', access: 'platform', tag: 'Platform', operationId: 'createAccount', idempotent: true,
    summary: 'Create an account', body: createAccountBody, responses: { 201: json(z.object({ account: Account }), 'The new account.') },
  },
  {
    method: 'post', path: '/internal/v1/accounts/:id/api-keys', access: 'platform', tag: 'Platform', operationId: 'createApiKey', idempotent: true, notFound: true,
    summary: 'Create an API key', description: 'The key is in this answer only.', params: idParam('acct_7Hc2Nq9Lx4Wb1Tz8Km3Vr5Yd'), body: createApiKeyBody,
    responses: { 201: json(z.object({ api_key: ApiKey }), 'The new key.') },
  },
  {
    method: 'delete', path: '/internal/v1/api-keys/:id', access: 'platform', tag: 'Platform', operationId: 'revokeApiKey', notFound: true,
    summary: 'Revoke an API key', description: 'The key stops working at once.', params: idParam('key_1Xb7Lq3Nc9Tz5Wm2Kr8Vd4Hy'),
    responses: { 204: noContent('Revoked.') },
  },
  {
    method: 'post', path: '/internal/v1/extractions', access: 'platform', tag: 'Platform', operationId: 'createExtraction', idempotent: true, notFound: true, conflict: true,
    summary: 'Start an extraction', description: 'Creating an extraction_id that exists answers 200 with the existing extraction.',
    body: createExtractionBody,
    responses: { 201: json(z.object({ extraction: Extraction }), 'The new extraction.'), 200: json(z.object({ extraction: Extraction }), 'The extraction already existed.') },
  },
  {
    method: 'post', path: '/internal/v1/extractions/:extraction_id/documents/:document_id', access: 'platform', tag: 'Platform', operationId: 'reportDocument', idempotent: true, notFound: true,
    summary: 'Report a document result',
    description: 'Emits extraction.document_completed; the report that makes the extraction terminal also emits extraction.job_completed and one batch.* event, exactly once even when reports race. Reporting a document twice emits nothing new.',
    params: documentParams, body: documentReportBody, responses: { 202: json(DocumentReportAccepted, 'Accepted, with the events it emitted.') },
  },
  {
    method: 'post', path: '/internal/v1/events', access: 'platform', tag: 'Platform', operationId: 'publishEvent', idempotent: true, notFound: true,
    summary: 'Publish an event', body: publishEventBody,
    responses: { 202: json(z.object({ event: EmittedEvent }), 'The event and how many deliveries it made.') },
  },
  // ---- operations (probes, metrics, this document) ----
  {
    method: 'get', path: '/healthz', access: 'public', tag: 'Operations', operationId: 'healthz',
    summary: 'Liveness', responses: { 200: json(z.object({ status: z.literal('ok') }), 'The process lives.') },
  },
  {
    method: 'get', path: '/readyz', access: 'public', tag: 'Operations', operationId: 'readyz',
    summary: 'Readiness: PostgreSQL and Redis answer',
    responses: {
      200: json(Readiness, 'Ready.'),
      503: json(NotReady, 'SERVICE_UNAVAILABLE: the message names what is down; `checks` has each dependency.'),
    },
  },
  {
    method: 'get', path: '/metrics', access: 'public', tag: 'Operations', operationId: 'metrics',
    summary: 'Prometheus metrics', responses: { 200: { description: 'Prometheus text exposition (hookline_* and process metrics).', content: { 'text/plain': { schema: z.string() } } } },
  },
  {
    method: 'get', path: '/openapi.json', access: 'public', tag: 'Operations', operationId: 'openapi',
    summary: 'This document', responses: { 200: { description: 'The OpenAPI 3.1 document.', content: { 'application/json': { schema: z.looseObject({}) } } } },
  },
];

/** `/v1/webhooks/:id` → `/v1/webhooks/{id}` */
export const toOpenApiPath = (expressPath: string) => expressPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');

export function buildOpenApiDocument() {
  const registry = new OpenAPIRegistry();

  registry.registerComponent('securitySchemes', 'ApiKeyBearer', {
    type: 'http', scheme: 'bearer', bearerFormat: 'hk_live_… / hk_test_…',
    description: 'An API key as `Authorization: Bearer <key>`.',
  });
  registry.registerComponent('securitySchemes', 'ApiKeyHeader', {
    type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key as `X-API-Key: <key>`.',
  });
  registry.registerComponent('securitySchemes', 'PlatformToken', {
    type: 'http', scheme: 'bearer', description: 'The platform API: `Authorization: Bearer $PLATFORM_TOKEN`.',
  });
  registry.register('Error', ErrorEnvelope);
  for (const [name, description] of Object.entries(ERROR_DESCRIPTIONS)) {
    registry.registerComponent('responses', name, {
      description,
      ...(name === 'RateLimited' ? { headers: { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } } } : {}),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    });
  }

  for (const op of API_OPERATIONS) {
    registry.registerPath({
      method: op.method,
      path: toOpenApiPath(op.path),
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      tags: [op.tag],
      security: SECURITY[op.access],
      request: {
        ...(op.params ? { params: op.params } : {}),
        ...(op.query ? { query: op.query } : {}),
        ...(op.idempotent ? { headers: idempotencyHeader } : {}),
        ...(op.body ? { body: { required: true, content: { 'application/json': { schema: op.body } } } } : {}),
      },
      responses: { ...op.responses, ...errorResponses(op.access, { body: Boolean(op.body || op.query), notFound: op.notFound, conflict: op.conflict || op.idempotent, plan: op.plan }) },
    });
  }

  registry.registerWebhook({
    method: 'post',
    path: 'callback',
    operationId: 'callback',
    summary: 'A callback Hookline sends to a webhook URL',
    description: 'Verify it before trusting it: see docs/verifying-webhooks.md. Answer 2xx within DELIVERY_TIMEOUT; anything else (redirects included) is retried by RETRY_SCHEDULE; 410 disables the webhook.',
    request: {
      headers: z.object({
        'x-perfectparser-signature': z.string().meta({ description: 'Hex HMAC-SHA256 of the raw body keyed with the whole whsec_ secret; two, comma-separated, during a rotation. (`PerfectParser` is WEBHOOK_BRAND.)' }),
        'x-perfectparser-event': z.enum(EVENT_NAMES),
        'x-perfectparser-delivery': z.string().meta({ description: 'The delivery id: the same on every retry; deduplicate on it.' }),
        'x-webhook-secret': z.string().optional().meta({ description: 'The static secret, verbatim, where one is set.' }),
        'webhook-id': z.string(),
        'webhook-timestamp': z.string().meta({ description: 'Unix seconds; reject a callback more than 5 minutes off.' }),
        'webhook-signature': z.string().meta({ description: 'Standard Webhooks: `v1,<base64>` per secret, space-separated.' }),
      }),
      body: { required: true, content: { 'application/json': { schema: CallbackBody } } },
    },
    responses: { 200: { description: 'Any 2xx acknowledges the callback.' }, 410: { description: 'Gone: disables the webhook at once.' } },
  });

  const generator = new OpenApiGeneratorV31(registry.definitions);
  return generator.generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Hookline API',
      version: '1.0.0',
      description: [
        'Hookline signs, delivers, retries and logs webhook callbacks for the document-extraction platform.',
        '',
        `Integrators call \`/v1\` with an API key; the platform calls \`/internal/v1\` with its token. Every error has the shape of the \`Error\` schema. API events: ${API_EVENT_NAMES.join(', ')}.`,
      ].join('\n'),
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'Webhooks', description: 'Subscriptions of the integrator\'s account.' },
      { name: 'Deliveries', description: 'Delivery log, retries and recovery.' },
      { name: 'Events', description: 'The event catalog and document results.' },
      { name: 'Platform', description: 'How the extraction platform drives Hookline.' },
      { name: 'Operations', description: 'Probes, metrics and this document.' },
    ],
  });
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;

/** The named response schemas, for tests that hold real answers (and the examples) to the document. */
export const RESPONSE_SCHEMAS = {
  Webhook, WebhookWithSecret, Attempt, Delivery, Account, ApiKey, Extraction, DocumentResult, EmittedEvent, DocumentReportAccepted, EventType,
  WebhookPage, DeliveryPage, Error: ErrorEnvelope, Readiness, NotReady, Callback: CallbackBody,
} as const;

let cached: OpenApiDocument | undefined;

/** Built once, on first use: generation walks every schema and takes a few milliseconds. */
export function getOpenApiDocument(): OpenApiDocument {
  cached ??= buildOpenApiDocument();
  return cached;
}
