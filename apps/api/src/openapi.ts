import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  API_EVENT_NAMES,
  EVENT_NAMES,
  accountSchema,
  apiKeySchema,
  attemptSchema,
  callbackSchema,
  deliveryPageSchema,
  deliverySchema,
  documentResultSchema,
  emittedEventSchema,
  errorEnvelopeSchema,
  eventDataComponentName,
  eventDataSchemas,
  eventTypeSchema,
  listenSessionSchema,
  extractionSchema,
  webhookPageSchema,
  webhookSchema,
  webhookWithSecretSchema,
} from '@hookline/domain';
import type { ErrorCode } from '@hookline/domain';
import type { Access, ApiRoute } from './routes/define';
import { DocumentReportAccepted } from './routes/ingest';
import { PROBE_SCHEMAS } from './routes/ops';

// The OpenAPI 3.1 description of the integrator and platform APIs of docs/api.md (and the operations
// endpoints), generated from the route declarations themselves (routes/*.ts,
// defineRoute): the paths the app mounts, the zod schemas that validate each
// request (packages/domain/src/schemas.ts) and the response schemas the
// serializers are typed by (packages/domain/src/resources.ts). Nothing is
// restated here but what concerns the whole document: security schemes, the
// error responses each kind of operation can give, and the callback.

const idempotencyHeader = z.object({
  'idempotency-key': z.string().min(1).max(255).optional().meta({
    description: 'Makes a retried POST safe: the first answer is replayed for 24 h for the same body; another body gets 409 IDEMPOTENCY_CONFLICT.',
    example: '5f0c7a0e-4a0e-4f59-9a55-3c1b3f0f2d1e',
  }),
});

type ErrorExample = { code: ErrorCode; message: string; details?: { path: string; message: string }[] };

/** Each error response: what it means, and an example of its own (the messages the app really sends). */
const ERROR_RESPONSES: Record<string, { description: string; example: ErrorExample }> = {
  InvalidPayload: {
    description: 'INVALID_PAYLOAD: validation failed (bad JSON, unknown field or event, non-HTTPS URL with a live key, limit > 100, bad cursor…).',
    example: { code: 'INVALID_PAYLOAD', message: 'url: must be an https URL (live keys may register only https:// URLs; use a test key for http://)', details: [{ path: 'url', message: 'must be an https URL (live keys may register only https:// URLs; use a test key for http://)' }] },
  },
  Unauthorized: {
    description: 'UNAUTHORIZED: missing, unknown or revoked key or token.',
    example: { code: 'UNAUTHORIZED', message: 'Invalid or revoked API key.' },
  },
  PlanRequired: {
    description: 'PLAN_REQUIRED: the account is on the free plan; webhooks need pro or enterprise.',
    example: { code: 'PLAN_REQUIRED', message: 'Webhooks need the pro or enterprise plan; upgrade the account to use them.' },
  },
  PlanRequiredOrForbidden: {
    description: 'PLAN_REQUIRED: the account is on the free plan; webhooks need pro or enterprise. FORBIDDEN: a live-mode key, and this Hookline lets only test-mode keys open listen sessions (LISTEN_ALLOW_LIVE_KEYS).',
    example: { code: 'FORBIDDEN', message: 'Listen sessions need a test-mode API key (hk_test_…): this Hookline does not let live keys open them (LISTEN_ALLOW_LIVE_KEYS).' },
  },
  NotFound: {
    description: 'RESOURCE_NOT_FOUND: no such resource, deleted, or another account\'s.',
    example: { code: 'RESOURCE_NOT_FOUND', message: 'No such webhook.' },
  },
  Conflict: {
    description: 'DUPLICATE_WEBHOOK (same URL and scope already registered), LIMIT_REACHED (the account already has MAX_WEBHOOKS_PER_ACCOUNT webhooks, or the filter would take its filter values over MAX_FILTER_VALUES_PER_ACCOUNT) or IDEMPOTENCY_CONFLICT (Idempotency-Key reused with another body).',
    example: {
      code: 'DUPLICATE_WEBHOOK',
      message: 'This account already has a webhook (wh_3kTMd9e2Rz8wLq5vN1bXc7Ya) for this URL and scope; update that one, or use another URL or parser_id.',
      details: [{ path: 'url', message: 'is already registered for this scope' }],
    },
  },
  PayloadTooLarge: {
    description: 'PAYLOAD_TOO_LARGE: the request body is over 256 KiB.',
    example: { code: 'PAYLOAD_TOO_LARGE', message: 'Request body is larger than 256 KiB.' },
  },
  RateLimited: {
    description: 'RATE_LIMITED: too many requests for this key, or (platform token) too many wrong tokens from this address; Retry-After says when to try again.',
    example: { code: 'RATE_LIMITED', message: 'Too many requests for this API key; retry in 12 s.' },
  },
  ServiceUnavailable: {
    description: 'SERVICE_UNAVAILABLE: the database is unreachable; try again shortly.',
    example: { code: 'SERVICE_UNAVAILABLE', message: 'The database is unreachable; try again shortly.' },
  },
  InternalError: {
    description: 'INTERNAL_ERROR: anything else; the message reveals nothing internal.',
    example: { code: 'INTERNAL_ERROR', message: 'Something went wrong on our side; try again, and contact support if it persists.' },
  },
};
const ref = (name: keyof typeof ERROR_RESPONSES) => ({ $ref: `#/components/responses/${name}` });

const SECURITY: Record<Access, RouteConfig['security']> = {
  api_key: [{ ApiKeyBearer: [] }, { ApiKeyHeader: [] }],
  platform: [{ PlatformToken: [] }],
  public: [],
};

/** The error responses every operation of a kind can give, by the table of docs/api.md#errors. */
function errorResponses(access: Access, opts: { body?: boolean; notFound?: boolean; conflict?: boolean; plan?: boolean; forbidden?: boolean }) {
  if (access === 'public') return {};
  return {
    ...(opts.body ? { 400: ref('InvalidPayload') } : {}),
    401: ref('Unauthorized'),
    ...(opts.plan ? { 403: ref(opts.forbidden ? 'PlanRequiredOrForbidden' : 'PlanRequired') } : {}),
    ...(opts.notFound ? { 404: ref('NotFound') } : {}),
    ...(opts.conflict ? { 409: ref('Conflict') } : {}),
    ...(opts.body ? { 413: ref('PayloadTooLarge') } : {}),
    429: ref('RateLimited'),
    500: ref('InternalError'),
    503: ref('ServiceUnavailable'),
  };
}

/** `/v1/webhooks/:id` → `/v1/webhooks/{id}` */
export const toOpenApiPath = (expressPath: string) => expressPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');

/** The document of `routes`: every operation the app mounts. */
export function buildOpenApiDocument(routes: readonly ApiRoute[]) {
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
  for (const [name, { description, example }] of Object.entries(ERROR_RESPONSES)) {
    registry.registerComponent('responses', name, {
      description,
      ...(name === 'RateLimited' ? { headers: { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } } } : {}),
      // The example here, not only the Error schema's: the schema's one example would show under every status.
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' }, example: { error: example } } },
    });
  }

  for (const op of routes) {
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
      responses: { ...op.responses, ...errorResponses(op.access, { body: Boolean(op.body || op.query || op.upgrade), notFound: op.notFound, conflict: op.conflict || Boolean(op.idempotent), plan: op.plan, forbidden: op.forbidden }) },
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
      body: { required: true, content: { 'application/json': { schema: callbackSchema } } },
    },
    responses: { 200: { description: 'Any 2xx acknowledges the callback.' }, 410: { description: 'Gone: disables the webhook at once.' } },
  });

  // The Error component (named by its .meta id) is reached only through the $refs of the error responses above.
  // Each catalog event's data schema is a component of its own (QuotaWarningData…): the schemas that
  // GET /v1/event-types serves as JSON Schema and that POST /internal/v1/events checks `data` against.
  const eventData = EVENT_NAMES.map((name) => ({ type: 'schema' as const, schema: eventDataSchemas[name].meta({ ...eventDataSchemas[name].meta(), id: eventDataComponentName(name) }) }));
  const generator = new OpenApiGeneratorV31([...registry.definitions, { type: 'schema', schema: errorEnvelopeSchema }, ...eventData]);
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
      { name: 'Listen', description: '`hookline listen` sessions: the account\'s callbacks forwarded to a local URL by the command-line tool (docs/listen.md).' },
      { name: 'Platform', description: 'How the extraction platform drives Hookline.' },
      { name: 'Operations', description: 'Probes, metrics and this document.' },
    ],
  });
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;

/** The named response schemas, for tests that hold real answers (and the examples) to the document. */
export const RESPONSE_SCHEMAS = {
  Webhook: webhookSchema, WebhookWithSecret: webhookWithSecretSchema, Attempt: attemptSchema, Delivery: deliverySchema, Account: accountSchema,
  ApiKey: apiKeySchema, Extraction: extractionSchema, DocumentResult: documentResultSchema, EmittedEvent: emittedEventSchema,
  DocumentReportAccepted, EventType: eventTypeSchema, ListenSession: listenSessionSchema, WebhookPage: webhookPageSchema, DeliveryPage: deliveryPageSchema,
  Error: errorEnvelopeSchema, Readiness: PROBE_SCHEMAS.Readiness, NotReady: PROBE_SCHEMAS.NotReady, Callback: callbackSchema,
} as const;
