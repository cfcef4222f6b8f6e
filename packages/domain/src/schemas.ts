import { z } from 'zod';
import { API_EVENT_NAMES, EVENT_NAMES, PLANS, type EventName } from './events';
import { API_KEY_MODES } from './api-keys';
import { DELIVERY_STATUSES } from './delivery-policy';
import { eventDataSchemas, OPERATIONAL_EVENT_NAMES } from './event-schemas';
import { customHeadersInput } from './custom-headers';

// One zod schema per request body / query: the source of truth for validation,
// for the TypeScript types (z.infer) and for the OpenAPI document.

const trimmedText = (max: number) => z.string().max(max, `must be at most ${max} characters`);

/** An unpaired UTF-16 surrogate: PostgreSQL's jsonb cannot store one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export const webhookUrl = z
  .string({ error: 'must be a string' })
  .min(1, 'is required')
  .max(2048, 'must be at most 2048 characters')
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname.length > 0;
    } catch {
      return false;
    }
  }, 'must be an absolute http(s) URL, e.g. https://example.com/hooks')
  // Credentials in a URL would show in every read of the webhook; the static secret is the place for them.
  .refine((value) => {
    try {
      const url = new URL(value);
      return url.username === '' && url.password === '';
    } catch {
      return true; // reported by the check above
    }
  }, 'must not contain a username or password; send a credential as the static `secret` (X-Webhook-Secret) instead');

const apiEvents = z
  .array(z.enum(API_EVENT_NAMES, { error: `must be one of ${API_EVENT_NAMES.join(', ')}` }), { error: 'must be an array of event names' })
  .min(1, 'must list at least one event')
  .max(API_EVENT_NAMES.length * 4, 'lists too many events')
  .transform((events) => [...new Set(events)]);

const staticSecret = z.string({ error: 'must be a string' }).min(8, 'must be at least 8 characters').max(256, 'must be at most 256 characters');
const parserId = z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(128, 'must be at most 128 characters');
const description = trimmedText(500);
const maxRetries = z.number({ error: 'must be an integer from 0 to 10' }).int('must be an integer from 0 to 10').min(0, 'must be 0 or more').max(10, 'must be 10 or less');

// Per-endpoint isolation. null means "no override": the worker then uses
// ENDPOINT_CONCURRENCY for in-flight deliveries and no per-second cap.
export const MAX_IN_FLIGHT_RANGE = { min: 1, max: 100 } as const;
export const RATE_LIMIT_PER_SECOND_RANGE = { min: 1, max: 1000 } as const;
const maxInFlight = z
  .number({ error: 'must be an integer from 1 to 100, or null for the service default' })
  .int('must be an integer from 1 to 100, or null for the service default')
  .min(MAX_IN_FLIGHT_RANGE.min, 'must be 1 or more (or null for the service default)')
  .max(MAX_IN_FLIGHT_RANGE.max, 'must be 100 or less')
  .nullable()
  .meta({ description: 'Deliveries in flight to this webhook at once, across every worker (1–100). null: the service default (ENDPOINT_CONCURRENCY).' });
const rateLimitPerSecond = z
  .number({ error: 'must be an integer from 1 to 1000, or null for no limit' })
  .int('must be an integer from 1 to 1000, or null for no limit')
  .min(RATE_LIMIT_PER_SECOND_RANGE.min, 'must be 1 or more (or null for no limit)')
  .max(RATE_LIMIT_PER_SECOND_RANGE.max, 'must be 1000 or less')
  .nullable()
  .meta({ description: 'At most this many attempts start per second for this webhook (1–1000). null: no limit.' });

// ---- payload filters (docs/api.md, "Filters") ----
//
// What this accepts is exactly what the outbox's MATCH_SQL (packages/db/src/outbox.ts)
// reads back: each key is split on "." into the path of jsonb_extract_path, and
// each value is compared by JSONB equality, an array as a list of alternatives.
// Segments are identifier-like, so a path never needs escaping (and a data key
// that itself contains a dot cannot be addressed).

export const FILTER_LIMITS = { entries: 20, pathLength: 200, depth: 10, values: 100, stringLength: 1024 } as const;

/** The values a filter lists (a scalar entry is one): what MAX_FILTER_VALUES_PER_ACCOUNT counts. */
export function filterValueCount(filter: WebhookFilter | null | undefined): number {
  if (!filter) return 0;
  return Object.values(filter).reduce<number>((sum, value) => sum + (Array.isArray(value) ? value.length : 1), 0);
}
const FILTER_SEGMENT = '[A-Za-z0-9_-]+';
/** One or more segments of letters, digits, `_` and `-`, joined by dots: `status`, `result.kind`, `items.0.sku`. */
export const FILTER_PATH = new RegExp(`^${FILTER_SEGMENT}(?:\\.${FILTER_SEGMENT})*$`);

export type FilterScalar = string | number | boolean | null;
export type WebhookFilter = Record<string, FilterScalar | FilterScalar[]>;

const FILTER_VALUE_MESSAGE = `must be a string, number, boolean or null, or a non-empty array of at most ${FILTER_LIMITS.values} of those`;
const filterString = z
  .string()
  .max(FILTER_LIMITS.stringLength, `must be at most ${FILTER_LIMITS.stringLength} characters`)
  // jsonb can hold neither, so no event's data could ever equal such a value.
  .refine((text) => !text.includes('\u0000') && !LONE_SURROGATE.test(text), 'must not contain a NUL character or an unpaired UTF-16 surrogate');
const filterScalar = z.union([filterString, z.number(), z.boolean(), z.null()], { error: FILTER_VALUE_MESSAGE });
// An array's length is checked with the paths below: inside the union, zod would
// report a too-long list as matching neither branch.
const filterValue = z.union([filterScalar, z.array(filterScalar, { error: FILTER_VALUE_MESSAGE })], { error: FILTER_VALUE_MESSAGE });

function filterPathProblem(path: string): string | null {
  if (!FILTER_PATH.test(path)) return 'must be a dotted path of letters, digits, _ and - (e.g. status or result.kind), with no empty segment';
  if (path.split('.').length > FILTER_LIMITS.depth) return `must have at most ${FILTER_LIMITS.depth} segments`;
  return null;
}

/**
 * A filter as a request gives it. Issues name `filter` itself or `filter.<path>`
 * (a path too long to echo is reported on `filter`). `{}` narrows nothing, so
 * it is stored as null: "no filter" has one representation.
 */
export const webhookFilterInput = z
  .preprocess(
    (value, ctx) => {
      // zod copies a record key by key, and assigning "__proto__" would set the
      // copy's prototype instead (JSON.parse made it an ordinary key): refused here.
      if (value !== null && typeof value === 'object' && Object.hasOwn(value, '__proto__')) {
        ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'is not a valid path: __proto__ is reserved' });
      }
      return value;
    },
    z.record(z.string(), filterValue, { error: 'must be a JSON object of dotted paths to values, e.g. {"status": ["failed", "partial"]}, or null' }),
  )
  .superRefine((filter, ctx) => {
    const paths = Object.keys(filter);
    if (paths.length > FILTER_LIMITS.entries) ctx.addIssue({ code: 'custom', message: `must have at most ${FILTER_LIMITS.entries} entries (it has ${paths.length})` });
    for (const path of paths) {
      if (path.length > FILTER_LIMITS.pathLength) {
        ctx.addIssue({ code: 'custom', message: `has a path longer than ${FILTER_LIMITS.pathLength} characters` });
        continue;
      }
      const problem = filterPathProblem(path);
      if (problem) ctx.addIssue({ code: 'custom', path: [path], message: `is not a valid path: ${problem}` });
      const value = filter[path];
      if (Array.isArray(value) && value.length === 0) ctx.addIssue({ code: 'custom', path: [path], message: 'must list at least one value (an empty list would match nothing)' });
      if (Array.isArray(value) && value.length > FILTER_LIMITS.values) ctx.addIssue({ code: 'custom', path: [path], message: `must list at most ${FILTER_LIMITS.values} values` });
    }
  })
  .transform((filter): WebhookFilter | null => (Object.keys(filter).length === 0 ? null : filter))
  .meta({
    description: `Deliver only events whose \`data\` has, at every dotted path, the given value or one of the listed values (JSON equality). At most ${FILTER_LIMITS.entries} entries. null: no filter.`,
    maxProperties: FILTER_LIMITS.entries,
    example: { status: ['failed', 'partial'], 'result.kind': 'invoice' },
  });

/** The per-field rules of a webhook, for callers that build the input themselves (the dashboard's form). */
export const webhookFieldSchemas = {
  url: webhookUrl,
  secret: staticSecret.nullable(),
  description: description.nullable(),
  parser_id: parserId.nullable(),
  max_retries: maxRetries,
  max_in_flight: maxInFlight,
  rate_limit_per_second: rateLimitPerSecond,
  filter: webhookFilterInput.nullable(),
  headers: customHeadersInput.nullable(),
} as const;

export const createWebhookBody = z.strictObject(
  {
    url: webhookUrl,
    events: apiEvents,
    secret: staticSecret.optional(),
    description: description.nullable().optional(),
    parser_id: parserId.nullable().optional(),
    is_active: z.boolean({ error: 'must be true or false' }).optional().default(true),
    retry_enabled: z.boolean({ error: 'must be true or false' }).optional().default(true),
    max_retries: maxRetries.optional().default(5),
    filter: webhookFilterInput.nullable().optional(),
    max_in_flight: maxInFlight.optional(),
    rate_limit_per_second: rateLimitPerSecond.optional(),
    headers: customHeadersInput.nullable().optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field` : 'must be a JSON object') },
);
export type CreateWebhookBody = z.infer<typeof createWebhookBody>;

export const updateWebhookBody = z.strictObject(
  {
    url: webhookUrl.optional(),
    events: apiEvents.optional(),
    is_active: z.boolean({ error: 'must be true or false' }).optional(),
    description: description.nullable().optional(),
    parser_id: parserId.nullable().optional(),
    secret: staticSecret.nullable().optional(),
    retry_enabled: z.boolean({ error: 'must be true or false' }).optional(),
    max_retries: maxRetries.optional(),
    filter: webhookFilterInput.nullable().optional(),
    max_in_flight: maxInFlight.optional(),
    rate_limit_per_second: rateLimitPerSecond.optional(),
    headers: customHeadersInput.nullable().optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field` : 'must be a JSON object') },
);
export type UpdateWebhookBody = z.infer<typeof updateWebhookBody>;

/** Query numbers arrive as strings. */
const limitParam = z
  .string({ error: 'must be given once, as an integer from 1 to 100' })
  .regex(/^\d+$/, 'must be an integer from 1 to 100')
  .transform(Number)
  .pipe(z.number().min(1, 'must be at least 1').max(100, 'must be at most 100'))
  .optional()
  .default(20);

export const listQuery = z.object({
  limit: limitParam,
  cursor: z.string({ error: 'must be given once: the next_cursor of a previous page' }).max(512, 'is not a valid cursor').optional(),
});

export const deliveryListQuery = listQuery.extend({
  status: z.enum(DELIVERY_STATUSES, { error: `must be one of ${DELIVERY_STATUSES.join(', ')}` }).optional(),
  event: z.enum(EVENT_NAMES, { error: `must be one of ${EVENT_NAMES.join(', ')}` }).optional(),
});

const isoTime = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z' });

export const recoverBody = z.strictObject({ since: isoTime, until: isoTime.optional() });

// Platform API (docs/api.md#the-platform-api)
export const createAccountBody = z.strictObject({
  name: z.string({ error: 'must be a string' }).min(1, 'is required').max(200, 'must be at most 200 characters'),
  plan: z.enum(PLANS, { error: `must be one of ${PLANS.join(', ')}` }).optional().default('pro'),
  monthly_quota: z.number({ error: 'must be a non-negative integer' }).int('must be an integer').min(0, 'must be 0 or more').max(2_000_000_000, 'is too large').nullable().optional(),
});

export const createApiKeyBody = z.strictObject({
  mode: z.enum(API_KEY_MODES, { error: `must be live or test` }).optional().default('live'),
});

const externalId = z
  .string({ error: 'must be a string' })
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9._:-]+$/, 'may contain only letters, digits and . _ : -');

export const createExtractionBody = z.strictObject({
  account_id: z.string({ error: 'is required' }).min(1, 'is required').max(64),
  extraction_id: externalId.optional(),
  parser_id: parserId.nullable().optional(),
  document_count: z.number({ error: 'must be an integer of 1 or more' }).int('must be an integer').min(1, 'must be 1 or more').max(100_000, 'must be at most 100000'),
});

/** A failed document's `error`, measured as its JSON text in UTF-8. */
export const DOCUMENT_ERROR_MAX_BYTES = 4096;

/** Whether every string (and key) in a JSON value is well-formed UTF-16: PostgreSQL's jsonb cannot store an unpaired surrogate. */
function wellFormedJson(value: unknown): boolean {
  if (typeof value === 'string') return !LONE_SURROGATE.test(value);
  if (Array.isArray(value)) return value.every(wellFormedJson);
  if (value && typeof value === 'object') return Object.entries(value).every(([key, item]) => !LONE_SURROGATE.test(key) && wellFormedJson(item));
  return true;
}
const UNSTORABLE_TEXT = 'must not contain an unpaired UTF-16 surrogate (e.g. \\ud800 alone)';

export const documentReportBody = z
  .strictObject({
    status: z.enum(['completed', 'failed'], { error: 'must be completed or failed' }),
    file_name: z.string({ error: 'must be a string' }).max(1024, 'must be at most 1024 characters').nullable().optional(),
    result: z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }).refine(wellFormedJson, UNSTORABLE_TEXT).nullable().optional(),
    // A string, or an object such as {"code","message"}: passed on unchanged in the callback's data.error.
    error: z
      .union([z.string(), z.record(z.string(), z.unknown())], { error: 'must be a string or a JSON object' })
      .refine((value) => new TextEncoder().encode(JSON.stringify(value)).length <= DOCUMENT_ERROR_MAX_BYTES, `must be at most ${DOCUMENT_ERROR_MAX_BYTES} bytes (4 KiB) as JSON`)
      .refine(wellFormedJson, UNSTORABLE_TEXT)
      .nullable()
      .optional(),
  })
  .superRefine((body, ctx) => {
    if (body.status === 'failed' && body.result) ctx.addIssue({ code: 'custom', path: ['result'], message: 'must be absent when status is failed' });
  });

/**
 * What the platform may publish: every catalog event but the operational ones,
 * which are Hookline's own account of its webhooks (a published one could name
 * any webhook, and would reach the very webhook it is about).
 */
const PUBLISHABLE_EVENT_NAMES = EVENT_NAMES.filter((name) => !(OPERATIONAL_EVENT_NAMES as readonly string[]).includes(name)) as [EventName, ...EventName[]];

export const publishEventBody = z
  .strictObject({
    account_id: z.string({ error: 'is required' }).min(1, 'is required').max(64),
    event: z.enum(PUBLISHABLE_EVENT_NAMES, {
      error: (issue) =>
        (OPERATIONAL_EVENT_NAMES as readonly unknown[]).includes(issue.input)
          ? `${String(issue.input)} is sent by Hookline itself, about the account's own webhooks; it cannot be published`
          : `must be one of ${PUBLISHABLE_EVENT_NAMES.join(', ')}`,
    }),
    data: z
      .record(z.string(), z.unknown(), { error: 'must be a JSON object' })
      .optional()
      .default({})
      .meta({ description: "The event's data, checked against its event type's schema (GET /v1/event-types; the *Data schemas below, e.g. QuotaWarningData)." }),
    parser_id: parserId.nullable().optional(),
  })
  // The data schema depends on the event: its issues are reported under `data.` (e.g. data.usage).
  .superRefine((body, ctx) => {
    const parsed = eventDataSchemas[body.event].safeParse(body.data);
    if (parsed.success) return;
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: ['data', ...issue.path] });
  });

export const externalIdParam = externalId;
