import { z } from 'zod';
import { API_KEY_MODES } from './api-keys';
import { CIRCUIT_STATES, DELIVERY_STATUSES, isWaiting, type CircuitState } from './delivery-policy';
import { SEND_ERRORS_TEXT } from './send-errors';
import { ERROR_STATUS, type ErrorCode, type ErrorEnvelope } from './errors';
import { EVENT_NAMES, PLANS } from './events';
import { JSON_SCHEMA_DIALECT, eventDataJsonSchema } from './event-schemas';
import { openCustomHeaders, type CustomHeaders } from './custom-headers';
import type { SecretBox } from './secret-box';
import { MAX_IN_FLIGHT_RANGE, RATE_LIMIT_PER_SECOND_RANGE, type WebhookFilter } from './schemas';

// The JSON objects of docs/api.md#objects: one zod schema per object, declared
// once. The serializers below return exactly the schema's type (so a field
// added to one and not the other fails the type check), and /openapi.json
// renders these same schemas (the `id` in .meta() names the component).
//
// The row types name only the fields read here, so Prisma's generated types
// satisfy them structurally. Prisma types enum-like columns as text; the
// serializers narrow them to the values the API writes there.

const EXAMPLE_TIME = '2026-11-23T10:00:00.000Z';
const isoTime = z.string().meta({ format: 'date-time', example: EXAMPLE_TIME });
const nullableTime = isoTime.nullable();
const iso = (date: Date) => date.toISOString();
const isoOrNull = (date: Date | null) => date?.toISOString() ?? null;
const eventName = z.enum(EVENT_NAMES);
type EventName = z.infer<typeof eventName>;

// ---- webhook ----

export const WEBHOOK_STATUSES = ['active', 'paused', 'failing', 'disabled'] as const;
export type WebhookStatus = (typeof WEBHOOK_STATUSES)[number];
const WEBHOOK_SOURCES = ['api', 'dashboard'] as const;
const DISABLED_REASONS = ['failing_too_long', 'gone'] as const;

const filterScalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const webhookFields = {
  id: z.string().meta({ example: 'wh_3kTMd9e2Rz8wLq5vN1bXc7Ya' }),
  url: z.string().meta({ example: 'https://example.com/hooks' }),
  events: z.array(eventName).meta({ example: ['extraction.document_completed'] }),
  description: z.string().nullable(),
  parser_id: z.string().nullable().meta({ description: 'The scope: null means every parser.' }),
  source: z.enum(WEBHOOK_SOURCES),
  is_active: z.boolean(),
  status: z.enum(WEBHOOK_STATUSES).meta({
    description: '`paused`: is_active false; `failing`: the last delivery used up its retries and nothing succeeded since; `disabled`: by the service (see disabled_reason).',
  }),
  retry_enabled: z.boolean(),
  max_retries: z.number().int().min(0).max(10),
  has_static_secret: z.boolean().meta({ description: 'Whether an X-Webhook-Secret is sent; the secret itself is never returned.' }),
  disabled_reason: z.enum(DISABLED_REASONS).nullable(),
  failing_since: nullableTime,
  filter: z
    .record(z.string(), z.union([filterScalar, z.array(filterScalar)]))
    .nullable()
    .meta({
      description: 'Conditions on the event\'s `data` (dotted path → value, or list of values), all of which must hold for an event to be delivered. null: every event the webhook subscribes to. Test sends ignore it.',
      example: { status: ['failed', 'partial'] },
    }),
  max_in_flight: z.number().int().min(MAX_IN_FLIGHT_RANGE.min).max(MAX_IN_FLIGHT_RANGE.max).nullable().meta({ description: 'Deliveries in flight to this webhook at once, across every worker. null: the service default (ENDPOINT_CONCURRENCY).' }),
  rate_limit_per_second: z.number().int().min(RATE_LIMIT_PER_SECOND_RANGE.min).max(RATE_LIMIT_PER_SECOND_RANGE.max).nullable().meta({ description: 'At most this many attempts start per second. null: no limit.' }),
  headers: z.record(z.string(), z.string()).meta({
    description: 'Extra request headers sent with every callback ({} for none). Shown only to the account\'s own API key and dashboard; stored encrypted, never logged.',
    example: { Authorization: 'Bearer 3f9c…' },
  }),
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
  has_static_secret: true, disabled_reason: null, failing_since: null, filter: null, max_in_flight: null, rate_limit_per_second: null,
  headers: {}, circuit: 'closed', circuit_retry_at: null, created_at: EXAMPLE_TIME, updated_at: EXAMPLE_TIME,
};

export const webhookSchema = z.object(webhookFields).meta({ id: 'Webhook', example: webhookExample });
export type Webhook = z.infer<typeof webhookSchema>;

const SIGNING_SECRET_EXAMPLE = 'whsec_MfKQ9r4GKSqqKHtWg9wTbYzHmqHC8Lw0gB3m3jLNkKc=';
export const webhookWithSecretSchema = z
  .object({
    ...webhookFields,
    signing_secret: z.string().meta({ description: 'Shown in this answer only: store it now. Verifies X-PerfectParser-Signature and webhook-signature.', example: SIGNING_SECRET_EXAMPLE }),
  })
  .meta({ id: 'WebhookWithSecret', example: { ...webhookExample, signing_secret: SIGNING_SECRET_EXAMPLE } });
export type WebhookWithSecret = z.infer<typeof webhookWithSecretSchema>;

export type WebhookRow = {
  id: string; url: string; events: string[]; description: string | null; parserId: string | null; source: string;
  isActive: boolean; retryEnabled: boolean; maxRetries: number; staticSecretEnc: string | null;
  disabledReason: string | null; failingSince: Date | null; createdAt: Date; updatedAt: Date;
  maxInFlight: number | null; rateLimitPerSecond: number | null; circuit: string; circuitRetryAt: Date | null;
  /** JSONB, written only through the filter schema (schemas.ts); SQL NULL when there is none. */
  filter: unknown;
  /** The custom headers' JSON, encrypted (custom-headers.ts); null when there are none. */
  customHeadersEnc: string | null;
  // circuit_cooldown_ms is the worker's own bookkeeping (the next open period): never shown, so not named here.
};

/** The column is free text; anything unexpected reads as closed rather than leaking an unknown value. */
export function circuitState(value: string): CircuitState {
  return (CIRCUIT_STATES as readonly string[]).includes(value) ? (value as CircuitState) : 'closed';
}

/** The stored filter; anything but an object (JSON null included) reads as none, which is also how MATCH_SQL treats it. */
function filterOf(value: unknown): WebhookFilter | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0 ? (value as WebhookFilter) : null;
}

export function webhookStatus(row: Pick<WebhookRow, 'isActive' | 'disabledReason' | 'failingSince'>): WebhookStatus {
  if (row.disabledReason) return 'disabled';
  if (!row.isActive) return 'paused';
  if (row.failingSince) return 'failing';
  return 'active';
}

/**
 * The webhook object. `box` opens its custom headers: the owner sees the
 * values it set (they are its own credentials), so every caller that shows a
 * webhook must hold the key.
 */
export function webhookResource(row: WebhookRow, box: Pick<SecretBox, 'decrypt'>): Webhook {
  const headers: CustomHeaders = openCustomHeaders(box, row.customHeadersEnc);
  const circuit = circuitState(row.circuit);
  return {
    id: row.id,
    url: row.url,
    events: row.events as EventName[],
    description: row.description,
    parser_id: row.parserId,
    source: row.source as Webhook['source'],
    is_active: row.isActive && !row.disabledReason,
    status: webhookStatus(row),
    retry_enabled: row.retryEnabled,
    max_retries: row.maxRetries,
    has_static_secret: row.staticSecretEnc !== null,
    disabled_reason: row.disabledReason as Webhook['disabled_reason'],
    failing_since: isoOrNull(row.failingSince),
    filter: filterOf(row.filter),
    max_in_flight: row.maxInFlight,
    rate_limit_per_second: row.rateLimitPerSecond,
    headers,
    circuit,
    // A closed circuit holds nothing back, so a time left over from its last opening means nothing.
    circuit_retry_at: circuit === 'closed' ? null : isoOrNull(row.circuitRetryAt),
    created_at: iso(row.createdAt),
    updated_at: iso(row.updatedAt),
  };
}

/** The webhook with its signing secret: the answer of create and rotate-secret only. */
export const webhookWithSecret = (row: WebhookRow, box: Pick<SecretBox, 'decrypt'>, signingSecret: string): WebhookWithSecret => ({ ...webhookResource(row, box), signing_secret: signingSecret });

// ---- delivery and attempt ----

export const deliverySchema = z
  .object({
    id: z.string(),
    webhook_id: z.string(),
    event_id: z.string(),
    event: eventName,
    status: z.enum(DELIVERY_STATUSES),
    attempt_count: z.number().int(),
    next_attempt_at: nullableTime,
    last_attempt_at: nullableTime,
    created_at: isoTime,
  })
  .meta({
    id: 'Delivery',
    example: {
      id: 'dlv_5Rm1aKp7Yc2Lw9Xq4Tz6Bn8V', webhook_id: 'wh_3kTMd9e2Rz8wLq5vN1bXc7Ya', event_id: 'evt_2Jd8sWq5Lm3Kx7Vb1Nc9Tz4R',
      event: 'extraction.document_completed', status: 'pending_retry', attempt_count: 1,
      next_attempt_at: '2026-11-23T10:05:00.000Z', last_attempt_at: EXAMPLE_TIME, created_at: EXAMPLE_TIME,
    },
  });
export type Delivery = z.infer<typeof deliverySchema>;

export type DeliveryRow = {
  id: string; webhookId: string; eventId: string; event: string; status: string; attemptCount: number;
  nextAttemptAt: Date | null; lastAttemptAt: Date | null; createdAt: Date;
};

export function deliveryResource(row: DeliveryRow): Delivery {
  const waiting = isWaiting(row.status);
  return {
    id: row.id,
    webhook_id: row.webhookId,
    event_id: row.eventId,
    event: row.event as EventName,
    status: row.status as Delivery['status'],
    attempt_count: row.attemptCount,
    next_attempt_at: waiting ? isoOrNull(row.nextAttemptAt) : null,
    last_attempt_at: isoOrNull(row.lastAttemptAt),
    created_at: iso(row.createdAt),
  };
}

export const attemptSchema = z
  .object({
    id: z.string(),
    delivery_id: z.string(),
    event_id: z.string(),
    event: eventName,
    attempt_number: z.number().int().min(1),
    status: z.enum(['succeeded', 'failed']),
    response_status: z.number().int().nullable(),
    response_body: z.string().nullable().meta({ description: 'The first 2 KiB of the answer.' }),
    error: z.string().nullable().meta({ description: `${SEND_ERRORS_TEXT}.` }),
    duration_ms: z.number().int(),
    created_at: isoTime,
    next_retry_at: nullableTime,
  })
  .meta({
    id: 'Attempt',
    example: {
      id: 'att_8Qb2cNn4x0Lr6TzW1kVyH3sJ', delivery_id: 'dlv_5Rm1aKp7Yc2Lw9Xq4Tz6Bn8V', event_id: 'evt_2Jd8sWq5Lm3Kx7Vb1Nc9Tz4R',
      event: 'extraction.document_completed', attempt_number: 1, status: 'failed', response_status: 503,
      response_body: 'Service Unavailable', error: null, duration_ms: 212, created_at: EXAMPLE_TIME, next_retry_at: '2026-11-23T10:05:00.000Z',
    },
  });
export type Attempt = z.infer<typeof attemptSchema>;

export type AttemptRow = {
  id: string; deliveryId: string; eventId: string; event: string; attemptNumber: number; status: string;
  responseStatus: number | null; responseBody: string | null; error: string | null; durationMs: number;
  createdAt: Date; nextRetryAt: Date | null;
};

export function attemptResource(row: AttemptRow): Attempt {
  return {
    id: row.id,
    delivery_id: row.deliveryId,
    event_id: row.eventId,
    event: row.event as EventName,
    attempt_number: row.attemptNumber,
    status: row.status as Attempt['status'],
    response_status: row.responseStatus,
    response_body: row.responseBody,
    error: row.error,
    duration_ms: row.durationMs,
    created_at: iso(row.createdAt),
    next_retry_at: isoOrNull(row.nextRetryAt),
  };
}

// ---- account and API key ----

export const accountSchema = z
  .object({ id: z.string(), name: z.string(), plan: z.enum(PLANS), monthly_quota: z.number().int().nullable(), created_at: isoTime })
  .meta({ id: 'Account', example: { id: 'acct_7Hc2Nq9Lx4Wb1Tz8Km3Vr5Yd', name: 'Acme', plan: 'pro', monthly_quota: 10_000, created_at: EXAMPLE_TIME } });
export type Account = z.infer<typeof accountSchema>;

export type AccountRow = { id: string; name: string; plan: string; monthlyQuota: number | null; createdAt: Date };

export function accountResource(row: AccountRow): Account {
  return { id: row.id, name: row.name, plan: row.plan as Account['plan'], monthly_quota: row.monthlyQuota, created_at: iso(row.createdAt) };
}

export const apiKeySchema = z
  .object({
    id: z.string(),
    key: z.string().meta({ description: 'Shown in this answer only; Hookline keeps a hash.' }),
    mode: z.enum(API_KEY_MODES),
    created_at: isoTime,
  })
  .meta({ id: 'ApiKey', example: { id: 'key_1Xb7Lq3Nc9Tz5Wm2Kr8Vd4Hy', key: 'hk_test_4fQ8nW2xLc7Rb1Tz9Km3Vy5Hd6Jp0Sa', mode: 'test', created_at: EXAMPLE_TIME } });
export type ApiKey = z.infer<typeof apiKeySchema>;

/** The new key with the key itself: the one answer that shows it. */
export function apiKeyResource(row: { id: string; mode: string; createdAt: Date }, key: string): ApiKey {
  return { id: row.id, key, mode: row.mode as ApiKey['mode'], created_at: iso(row.createdAt) };
}

// ---- extraction, document result, emitted event ----

export const extractionSchema = z
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
  .meta({
    id: 'Extraction',
    example: {
      extraction_id: 'ext_9Lq2Wb7Nc4Tz1Km8Vr3Yd5Hx', account_id: 'acct_7Hc2Nq9Lx4Wb1Tz8Km3Vr5Yd', parser_id: 'invoices',
      document_count: 2, completed_count: 0, failed_count: 0, status: 'processing', completed_at: null, created_at: EXAMPLE_TIME,
    },
  });
export type Extraction = z.infer<typeof extractionSchema>;

export type ExtractionRow = {
  id: string; accountId: string; parserId: string | null; documentCount: number; completedCount: number;
  failedCount: number; status: string; completedAt: Date | null; createdAt: Date;
};

export function extractionResource(row: ExtractionRow): Extraction {
  return {
    extraction_id: row.id,
    account_id: row.accountId,
    parser_id: row.parserId,
    document_count: row.documentCount,
    completed_count: row.completedCount,
    failed_count: row.failedCount,
    status: row.status,
    completed_at: isoOrNull(row.completedAt),
    created_at: iso(row.createdAt),
  };
}

const jsonObject = z.record(z.string(), z.unknown());

export const documentResultSchema = z
  .object({
    extraction_id: z.string(),
    document_id: z.string(),
    parser_id: z.string().nullable(),
    status: z.enum(['completed', 'failed']),
    file_name: z.string().nullable(),
    result: jsonObject.nullable(),
    error: z.union([z.string(), jsonObject]).nullable().meta({ description: 'For a failed document: the error the platform reported, a string or an object, unchanged.' }),
    reported_at: isoTime,
  })
  .meta({
    id: 'DocumentResult',
    description: 'The last result the platform reported for a document: the fallback when a callback was missed.',
    example: {
      extraction_id: 'ext_9Lq2Wb7Nc4Tz1Km8Vr3Yd5Hx', document_id: 'doc-1', parser_id: 'invoices', status: 'completed',
      file_name: 'a.pdf', result: { total: 42.5 }, error: null, reported_at: EXAMPLE_TIME,
    },
  });
export type DocumentResult = z.infer<typeof documentResultSchema>;

export type DocumentRow = { documentId: string; status: string; fileName: string | null; result: unknown; error: unknown; createdAt: Date };

/** A stored report; `result` and `error` are JSONB written from a validated report (an object; a string or an object). */
export function documentResultResource(extraction: { id: string; parserId: string | null }, doc: DocumentRow): DocumentResult {
  return {
    extraction_id: extraction.id,
    document_id: doc.documentId,
    parser_id: extraction.parserId,
    status: doc.status as DocumentResult['status'],
    file_name: doc.fileName,
    result: (doc.result ?? null) as DocumentResult['result'],
    error: (doc.error ?? null) as DocumentResult['error'],
    reported_at: iso(doc.createdAt),
  };
}

export const emittedEventSchema = z
  .object({ id: z.string(), event: eventName, deliveries: z.number().int().min(0).meta({ description: 'Deliveries written: one per matching webhook.' }) })
  .meta({ id: 'EmittedEvent', example: { id: 'evt_2Jd8sWq5Lm3Kx7Vb1Nc9Tz4R', event: 'extraction.document_completed', deliveries: 1 } });
export type EmittedEvent = z.infer<typeof emittedEventSchema>;

// ---- the event catalog ----

export const eventTypeSchema = z
  .object({
    name: eventName,
    description: z.string(),
    source: z.enum(WEBHOOK_SOURCES),
    schema: z
      .looseObject({ $schema: z.literal(JSON_SCHEMA_DIALECT) })
      .meta({ description: "The JSON Schema (draft 2020-12) of the event's `data`: the same schema as this document's component of the event's name (e.g. QuotaWarningData for quota.warning)." }),
  })
  .meta({
    id: 'EventType',
    example: {
      name: 'quota.warning', description: 'Usage reached 80% of the monthly quota.', source: 'api',
      schema: eventDataJsonSchema('quota.warning'),
    },
  });
export type EventType = z.infer<typeof eventTypeSchema>;

/** A catalog entry as GET /v1/event-types answers it: with the JSON Schema of its data. */
export const eventTypeResource = ({ name, description, source }: { name: EventName; description: string; source: EventType['source'] }): EventType => ({
  name, description, source, schema: eventDataJsonSchema(name),
});

// ---- pages and errors ----

/** A keyset-paginated list (webhooks, deliveries). */
export const pageSchema = <T extends z.ZodType>(id: string, item: T) =>
  z
    .object({
      data: z.array(item),
      has_more: z.boolean(),
      next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` to get the next page; null on the last page.' }),
    })
    .meta({ id });

export const webhookPageSchema = pageSchema('WebhookPage', webhookSchema);
export type WebhookPage = z.infer<typeof webhookPageSchema>;
export const deliveryPageSchema = pageSchema('DeliveryPage', deliverySchema);
export type DeliveryPage = z.infer<typeof deliveryPageSchema>;

const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

/** The `error` member of the envelope (also part of the readiness probe's 503). */
export const errorBodySchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string().meta({ description: 'What went wrong and, where you can act on it, what to do.' }),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

export const errorEnvelopeSchema = z
  .object({ error: errorBodySchema })
  .meta({ id: 'Error', example: { error: { code: 'INVALID_PAYLOAD', message: 'url: must be an https URL', details: [{ path: 'url', message: 'must be an https URL' }] } } }) satisfies z.ZodType<ErrorEnvelope>;

// ---- the callback (docs/api.md#callbacks) ----

export const callbackSchema = z
  .object({
    id: z.string().meta({ description: 'The event id (evt_…).' }),
    event: eventName,
    created_at: isoTime,
    test: z.boolean(),
    data: jsonObject.meta({ description: "The event's data: its schema is the event type's (GET /v1/event-types; the *Data schemas, e.g. ExtractionDocumentCompletedData)." }),
  })
  .meta({
    id: 'Callback',
    example: {
      id: 'evt_2Jd8sWq5Lm3Kx7Vb1Nc9Tz4R', event: 'extraction.document_completed', created_at: EXAMPLE_TIME, test: false,
      data: { extraction_id: 'ext_9Lq2Wb7Nc4Tz1Km8Vr3Yd5Hx', document_id: 'doc-1', parser_id: 'invoices', status: 'completed', file_name: 'a.pdf', result: { total: 42.5 } },
    },
  });
export type Callback = z.infer<typeof callbackSchema>;

/** The callback body. Its serialised bytes are what is signed. */
export function callbackBody(event: { id: string; event: string; createdAt: Date; test: boolean; data: unknown }): string {
  const body: Callback = { id: event.id, event: event.event as EventName, created_at: iso(event.createdAt), test: event.test, data: event.data as Callback['data'] };
  return JSON.stringify(body);
}
