import {
  AppError,
  API_EVENT_NAMES,
  EVENT_NAMES,
  attemptResource,
  eventDataSchemas,
  decodeCursor,
  encodeCursor,
  filterValueCount,
  listenSessionOf,
  generateSigningSecret,
  newId,
  nonPublicHostReason,
  reservedHeaderReason,
  sealCustomHeaders,
  type CustomHeaders,
  randomBase62,
  WAITING_STATUSES,
  webhookResource,
  webhookWithSecret,
  webhookFieldSchemas,
  type ErrorDetail,
  type EventName,
  type UpdateWebhookBody,
  type WebhookFilter,
} from '@hookline/domain';
import { createdAtWhere, DbNull, isUniqueViolation, writeEvent } from '@hookline/db';
import type { ApiDeps } from '../deps';
import { ATTEMPT_EVENT, attemptRow, attemptRowOf, attemptsOfWhere } from './history-rows';
import { enqueueWithin, queueDown } from './outbox-enqueue';

// Webhook logic shared by the integrator API (/v1) and the dashboard: both
// enforce the same rules (https for live keys, one webhook per URL and scope,
// secrets encrypted at rest, public targets, the per-account limit) because
// both call these functions.

type DbDeps = Pick<ApiDeps, 'db'>;
type SecretDeps = Pick<ApiDeps, 'db' | 'secretBox'>;
type WriteDeps = Pick<ApiDeps, 'db' | 'secretBox' | 'config'>;
export type WebhookAuth = { accountId: string; mode: 'live' | 'test' };
export type WebhookResource = ReturnType<typeof webhookResource>;

export type CreateWebhookInput = {
  url: string;
  events: string[];
  secret?: string | null;
  description?: string | null;
  parser_id?: string | null;
  is_active?: boolean;
  retry_enabled?: boolean;
  max_retries?: number;
  filter?: WebhookFilter | null;
  max_in_flight?: number | null;
  rate_limit_per_second?: number | null;
  headers?: CustomHeaders | null;
};

/** How long a rotated-out secret keeps signing: for 24 h callbacks carry both signatures. */
export const ROTATION_GRACE_MS = 24 * 3_600_000;
export const TEST_WAIT_MS = 30_000;
const TEST_POLL_MS = 50;
const RECENT_ATTEMPTS = 10;
const WEBHOOK_ID_RE = /^wh_[0-9A-Za-z]{1,64}$/;
/** MAX_WEBHOOKS_PER_ACCOUNT when the config leaves it out. */
export const DEFAULT_MAX_WEBHOOKS_PER_ACCOUNT = 100;
/** MAX_FILTER_VALUES_PER_ACCOUNT when the config leaves it out: one filter at its largest (20 entries × 100 values). */
export const DEFAULT_MAX_FILTER_VALUES_PER_ACCOUNT = 2_000;

const invalid = (path: string, message: string) => new AppError('INVALID_PAYLOAD', `${path}: ${message}`, [{ path, message }]);
const notFound = () => new AppError('RESOURCE_NOT_FOUND', 'No such webhook.');
const DEFAULT_BRAND = 'PerfectParser';

/** The webhook object, its custom headers opened with the secret box. */
export const view = (deps: Pick<ApiDeps, 'secretBox'>) => (row: Parameters<typeof webhookResource>[0]) => webhookResource(row, deps.secretBox);

// ---- validation the route schemas cannot see (or the dashboard's form skips) ----

/**
 * PostgreSQL refuses NUL in text columns with an error; refuse it up front as
 * a validation failure instead. The dashboard gets the same field checks as the API.
 */
function checkFields(input: Partial<CreateWebhookInput>): void {
  const details: ErrorDetail[] = [];
  for (const [path, value] of Object.entries(input)) {
    const texts = Array.isArray(value) ? value : [value];
    if (texts.some((text) => typeof text === 'string' && text.includes('\u0000'))) details.push({ path, message: 'must not contain NUL characters' });
  }
  // The same zod rules as the request schemas, field by field.
  for (const [path, schema] of Object.entries(webhookFieldSchemas)) {
    const value = input[path as keyof typeof webhookFieldSchemas];
    if (value === undefined) continue;
    const parsed = schema.safeParse(value);
    // A filter's issue names the entry it is about (filter.<path>), as the request schemas do.
    const issue = parsed.error?.issues[0];
    if (!parsed.success) details.push({ path: [path, ...(issue?.path ?? []).map(String)].join('.'), message: issue?.message ?? 'is not valid' });
  }
  if (details.length) throw new AppError('INVALID_PAYLOAD', `${details[0].path}: ${details[0].message}`, details);
}

/**
 * The filter to store, in the schema's normal form ({} is no filter). Callers
 * other than the routes (the dashboard) pass values that did not go through
 * the request schemas; checkFields has refused anything invalid by now.
 */
function storedFilter(filter: WebhookFilter | null): WebhookFilter | typeof DbNull {
  return webhookFieldSchemas.filter.parse(filter) ?? DbNull;
}

/**
 * The custom headers to store, encrypted (their values may be credentials).
 * checkFields has applied the schema's rules; this adds the one it cannot
 * know: X-<WEBHOOK_BRAND>-* names are Hookline's own.
 */
function sealedHeaders(deps: WriteDeps, headers: CustomHeaders | null): string | null {
  const normal = webhookFieldSchemas.headers.parse(headers);
  const brand = deps.config.WEBHOOK_BRAND ?? DEFAULT_BRAND;
  for (const name of Object.keys(normal ?? {})) {
    const reason = reservedHeaderReason(name, brand);
    if (reason) throw invalid(`headers.${name}`, reason);
  }
  return sealCustomHeaders(deps.secretBox, normal);
}

export function checkEvents(events: string[], source: 'api' | 'dashboard'): string[] {
  const allowed: readonly string[] = source === 'api' ? API_EVENT_NAMES : EVENT_NAMES;
  if (events.length === 0) throw invalid('events', 'must list at least one event');
  const unknown = events.find((name) => !allowed.includes(name));
  if (unknown !== undefined) throw invalid('events', `must be one of ${allowed.join(', ')}`);
  return [...new Set(events)];
}

/** A live key may register only https:// URLs; a test key may also use http://. */
function checkUrlForMode(url: string, mode: 'live' | 'test'): void {
  if (mode === 'live' && !url.toLowerCase().startsWith('https://')) {
    throw invalid('url', 'must be an https URL (live keys may register only https:// URLs; use a test key for http://)');
  }
}

/**
 * Unless ALLOW_PRIVATE_TARGETS, a URL on localhost or on an IP literal that is
 * not public (in any notation the URL parser accepts: 127.1, 0x7f000001,
 * [::ffff:10.0.0.1]) is refused now, instead of every delivery failing with
 * blocked_address later. A hostname passes: what it resolves to can change,
 * and the worker checks the address it connects to at send time.
 */
function checkPublicTarget(config: WriteDeps['config'], url: string): void {
  if (config.ALLOW_PRIVATE_TARGETS) return;
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    return; // not a URL at all: the field rules have said so already
  }
  const reason = nonPublicHostReason(hostname);
  if (reason) throw invalid('url', `must be a public address: ${reason}, and deliveries only go to public addresses (ALLOW_PRIVATE_TARGETS=true allows private ones, for development)`);
}

export function limitError(max: number): AppError {
  return new AppError(
    'LIMIT_REACHED',
    `This account already has ${max} webhooks, the most allowed (MAX_WEBHOOKS_PER_ACCOUNT); delete one first.`,
  );
}

// Every publish of an account compares its data with every filter value of the
// account's webhooks, in a statement batched with other accounts' publishes
// (event-publisher.ts): the total is capped per account, so one account's
// filters cannot slow everyone's publishing (docs/security.md, "Filters").
export type Tx = Parameters<Parameters<ApiDeps['db']['prisma']['$transaction']>[0]>[0];

/** Takes the account's webhook lock (to the end of the transaction): counts checked under it cannot race. */
export const lockAccountWebhooks = (tx: Tx, accountId: string) =>
  tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('webhooks_per_account'), hashtext(${accountId}))`;

/** Refuses a filter of `adding` values that would take the account over MAX_FILTER_VALUES_PER_ACCOUNT. Under the account's lock. */
async function checkFilterBudget(tx: Tx, config: WriteDeps['config'], accountId: string, adding: number, exceptWebhookId: string | null): Promise<void> {
  if (adding === 0) return;
  const max = config.MAX_FILTER_VALUES_PER_ACCOUNT ?? DEFAULT_MAX_FILTER_VALUES_PER_ACCOUNT;
  const [{ n }] = await tx.$queryRaw<{ n: number }[]>`
    SELECT COALESCE(sum(CASE WHEN jsonb_typeof(f.value) = 'array' THEN jsonb_array_length(f.value) ELSE 1 END), 0)::int AS n
      FROM webhooks w
     CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(w.filter) = 'object' THEN w.filter ELSE '{}'::jsonb END) f
     WHERE w.account_id = ${accountId} AND w.deleted_at IS NULL AND w.id IS DISTINCT FROM ${exceptWebhookId}`;
  if (n + adding <= max) return;
  const message = `would bring this account's webhook filters to ${n + adding} values in all, over the ${max} allowed (MAX_FILTER_VALUES_PER_ACCOUNT); list fewer values, or remove a filter from another webhook`;
  throw new AppError('LIMIT_REACHED', `filter: ${message}.`, [{ path: 'filter', message }]);
}

function duplicateError(existingId?: string): AppError {
  const which = existingId ? ` (${existingId})` : '';
  return new AppError(
    'DUPLICATE_WEBHOOK',
    `This account already has a webhook${which} for this URL and scope; update that one, or use another URL or parser_id.`,
    [{ path: 'url', message: 'is already registered for this scope' }],
  );
}

/** The friendly pre-check; the partial unique index "webhooks_account_url_scope_live_key" settles races. */
async function checkNotDuplicate(deps: DbDeps, accountId: string, url: string, parserId: string | null, exceptId?: string): Promise<void> {
  const existing = await deps.db.prisma.webhook.findFirst({
    where: { accountId, url, parserId, deletedAt: null, ...(exceptId ? { id: { not: exceptId } } : {}) },
    select: { id: true },
  });
  if (existing) throw duplicateError(existing.id);
}

// ---- the operations ----

export async function createWebhook(
  deps: WriteDeps,
  auth: WebhookAuth,
  input: CreateWebhookInput,
  source: 'api' | 'dashboard' = 'api',
): Promise<{ webhook: WebhookResource; signingSecret: string }> {
  checkFields(input);
  const events = checkEvents(input.events, source);
  checkUrlForMode(input.url, auth.mode);
  checkPublicTarget(deps.config, input.url);
  const parserId = input.parser_id ?? null;
  const customHeadersEnc = sealedHeaders(deps, input.headers ?? null);
  await checkNotDuplicate(deps, auth.accountId, input.url, parserId);

  const signingSecret = generateSigningSecret();
  const max = deps.config.MAX_WEBHOOKS_PER_ACCOUNT ?? DEFAULT_MAX_WEBHOOKS_PER_ACCOUNT;
  try {
    // Count and insert under a per-account lock (held to the end of the transaction), so
    // concurrent creates cannot both see room for one more. Plain SQL: PGlite runs it too.
    const row = await deps.db.prisma.$transaction(async (tx) => {
      await lockAccountWebhooks(tx, auth.accountId);
      const count = await tx.webhook.count({ where: { accountId: auth.accountId, deletedAt: null } });
      if (count >= max) throw limitError(max);
      await checkFilterBudget(tx, deps.config, auth.accountId, filterValueCount(input.filter), null);
      return tx.webhook.create({
        data: {
          id: newId('webhook'),
          accountId: auth.accountId,
          url: input.url,
          events,
          description: input.description ?? null,
          parserId,
          source,
          isActive: input.is_active ?? true,
          retryEnabled: input.retry_enabled ?? true,
          maxRetries: input.max_retries ?? 5,
          filter: storedFilter(input.filter ?? null),
          maxInFlight: input.max_in_flight ?? null,
          rateLimitPerSecond: input.rate_limit_per_second ?? null,
          signingSecretEnc: deps.secretBox.encrypt(signingSecret),
          staticSecretEnc: input.secret ? deps.secretBox.encrypt(input.secret) : null,
          customHeadersEnc,
        },
      });
    });
    return { webhook: view(deps)(row), signingSecret };
  } catch (err) {
    if (isUniqueViolation(err, 'webhooks_account_url_scope_live_key')) throw duplicateError();
    throw err;
  }
}

/** Newest first, keyset-paginated on (created_at desc, id desc): no duplicates or gaps while rows are inserted. */
export async function listWebhooks(
  deps: SecretDeps,
  accountId: string,
  page: { limit: number; cursor?: string | null },
): Promise<{ data: WebhookResource[]; has_more: boolean; next_cursor: string | null }> {
  const after = page.cursor ? decodeCursor(page.cursor) : null;
  if (page.cursor && !after) throw invalid('cursor', 'is not a valid cursor; pass the next_cursor of a previous page');
  const rows = await deps.db.prisma.webhook.findMany({
    where: {
      accountId,
      deletedAt: null,
      ...(after
        ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] }
        : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: page.limit + 1,
  });
  const hasMore = rows.length > page.limit;
  const data = rows.slice(0, page.limit);
  const last = data[data.length - 1];
  return {
    data: data.map(view(deps)),
    has_more: hasMore,
    next_cursor: hasMore && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null,
  };
}

/** The account's own, not deleted webhook; anything else (another account's, deleted, malformed id) is a 404. */
export async function getWebhookRow(deps: DbDeps, accountId: string, id: string) {
  if (!WEBHOOK_ID_RE.test(id)) throw notFound();
  const row = await deps.db.prisma.webhook.findFirst({ where: { id, accountId, deletedAt: null } });
  if (!row) throw notFound();
  return row;
}

export async function getWebhook(deps: SecretDeps, accountId: string, id: string) {
  const row = await getWebhookRow(deps, accountId, id);
  const attempts = await deps.db.prisma.attempt.findMany({
    where: { webhookId: row.id },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: RECENT_ATTEMPTS,
    include: ATTEMPT_EVENT,
  });
  return { webhook: view(deps)(row), recent_attempts: attempts.map((a) => attemptResource(attemptRowOf(a))) };
}

export async function updateWebhook(deps: WriteDeps, auth: WebhookAuth, id: string, patch: UpdateWebhookBody): Promise<WebhookResource> {
  const row = await getWebhookRow(deps, auth.accountId, id);
  checkFields(patch);
  // Dashboard webhooks always get the three batch.* events: their events are not theirs to change.
  if (patch.events !== undefined && row.source === 'dashboard') throw invalid('events', 'cannot be changed on a dashboard webhook');
  const events = patch.events !== undefined ? checkEvents(patch.events, 'api') : undefined;
  const customHeadersEnc = patch.headers !== undefined ? sealedHeaders(deps, patch.headers) : undefined;
  // A listen session's URL names its session (services/listen-sessions.ts): it is not an endpoint to move.
  if (patch.url !== undefined && patch.url !== row.url && listenSessionOf(row.url) !== null) throw invalid('url', 'cannot be changed on a hookline listen session');
  if (patch.url !== undefined) {
    checkUrlForMode(patch.url, auth.mode);
    checkPublicTarget(deps.config, patch.url);
  }

  const url = patch.url ?? row.url;
  const parserId = patch.parser_id !== undefined ? patch.parser_id : row.parserId;
  if (url !== row.url || parserId !== row.parserId) await checkNotDuplicate(deps, auth.accountId, url, parserId, row.id);

  // Re-enabling a webhook the service disabled starts it afresh, circuit
  // breaker included: the operator says the endpoint is fixed, so its
  // deliveries flow at once instead of waiting out an old cooldown, and a
  // later failure streak starts from the base cooldown again. Pausing and
  // resuming a webhook that was never disabled leaves the circuit to the worker.
  const reenable = patch.is_active === true && row.disabledReason !== null;
  try {
    const adding = patch.filter !== undefined ? filterValueCount(patch.filter) : 0;
    const { count } = await deps.db.prisma.$transaction(async (tx) => {
      // A filter that grows is checked against the account's budget under its lock.
      if (adding > 0) {
        await lockAccountWebhooks(tx, auth.accountId);
        await checkFilterBudget(tx, deps.config, auth.accountId, adding, row.id);
      }
      return tx.webhook.updateMany({
        where: { id: row.id, deletedAt: null },
        data: {
          url,
          parserId,
          ...(events !== undefined ? { events } : {}),
          ...(patch.is_active !== undefined ? { isActive: patch.is_active } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(patch.retry_enabled !== undefined ? { retryEnabled: patch.retry_enabled } : {}),
          ...(patch.max_retries !== undefined ? { maxRetries: patch.max_retries } : {}),
          ...(patch.filter !== undefined ? { filter: storedFilter(patch.filter) } : {}),
          ...(patch.max_in_flight !== undefined ? { maxInFlight: patch.max_in_flight } : {}),
          ...(patch.rate_limit_per_second !== undefined ? { rateLimitPerSecond: patch.rate_limit_per_second } : {}),
          ...(customHeadersEnc !== undefined ? { customHeadersEnc } : {}),
          ...(patch.secret !== undefined ? { staticSecretEnc: patch.secret === null ? null : deps.secretBox.encrypt(patch.secret) } : {}),
          ...(reenable
            ? { disabledReason: null, disabledAt: null, failingSince: null, failingAnnounced: false, circuit: 'closed', circuitRetryAt: null, circuitCooldownMs: null }
            : {}),
        },
      });
    });
    if (count === 0) throw notFound();
  } catch (err) {
    if (isUniqueViolation(err, 'webhooks_account_url_scope_live_key')) throw duplicateError();
    throw err;
  }
  return view(deps)(await getWebhookRow(deps, auth.accountId, row.id));
}

/**
 * Soft delete. The worker skips deliveries of a deleted webhook; its waiting
 * deliveries are also marked cancelled here so the log says why nothing was sent.
 */
export async function deleteWebhook(deps: DbDeps, accountId: string, id: string): Promise<void> {
  if (!WEBHOOK_ID_RE.test(id)) throw notFound();
  const now = new Date();
  const deleted = await deps.db.prisma.$transaction(async (tx) => {
    const { count } = await tx.webhook.updateMany({ where: { id, accountId, deletedAt: null }, data: { deletedAt: now } });
    if (count === 0) return false;
    await tx.delivery.updateMany({
      where: { webhookId: id, status: { in: [...WAITING_STATUSES] } },
      data: { status: 'cancelled', completedAt: now },
    });
    return true;
  });
  if (!deleted) throw notFound();
}

/** Only dashboard webhooks can show their signing secret again; an API webhook's is shown once, at creation. */
export async function revealSigningSecret(deps: SecretDeps, accountId: string, id: string): Promise<string> {
  const row = await getWebhookRow(deps, accountId, id);
  if (row.source !== 'dashboard') {
    throw new AppError(
      'RESOURCE_NOT_FOUND',
      'The signing secret of an API webhook is shown once, when it is created; rotate the secret to get a new one.',
    );
  }
  return deps.secretBox.decrypt(row.signingSecretEnc);
}

// ---- the signing secret and test sends ----

/**
 * A new signing secret; the old one stays (encrypted) as the previous secret
 * for 24 h, during which the worker signs with both. The update is conditional
 * on the secret it replaces, so two racing rotations cannot lose a secret.
 */
export async function rotateSecret(deps: Pick<ApiDeps, 'db' | 'secretBox'>, accountId: string, webhookId: string) {
  for (let tries = 0; tries < 5; tries++) {
    const current = await getWebhookRow(deps, accountId, webhookId);
    const signingSecret = generateSigningSecret();
    const rotated = await deps.db.prisma.webhook.updateMany({
      where: { id: current.id, signingSecretEnc: current.signingSecretEnc, deletedAt: null },
      data: {
        signingSecretEnc: deps.secretBox.encrypt(signingSecret),
        previousSecretEnc: current.signingSecretEnc,
        previousSecretExpires: new Date(Date.now() + ROTATION_GRACE_MS),
      },
    });
    if (rotated.count === 0) continue;
    const row = await deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: current.id } });
    return { webhook: webhookWithSecret(row, deps.secretBox, signingSecret) };
  }
  throw new AppError('SERVICE_UNAVAILABLE', 'The secret is being rotated by another request; try again.');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The event a test sends: one the webhook is subscribed to (the first of its
 * events in catalog order), so a receiver that routes by event sees one it
 * handles — a dashboard webhook's batch.* as much as an API one's.
 */
export function testEventName(events: readonly string[]): EventName {
  return EVENT_NAMES.find((name) => events.includes(name)) ?? 'extraction.job_completed';
}

/** Synthetic data for a test of `event`, valid by its schema: a fresh ext_test_ id, the webhook's parser. */
export function testEventData(event: EventName, parserId: string | null): Record<string, unknown> {
  const extraction_id = `ext_test_${randomBase62(20)}`;
  const summary = (status: 'completed' | 'failed' | 'partial') => ({
    extraction_id,
    parser_id: parserId,
    status,
    document_count: status === 'partial' ? 2 : 1,
    completed_count: status === 'failed' ? 0 : 1,
    failed_count: status === 'completed' ? 0 : 1,
  });
  switch (event) {
    case 'extraction.job_completed':
    case 'batch.completed':
      return summary('completed');
    case 'batch.failed':
      return summary('failed');
    case 'batch.partial':
      return summary('partial');
    case 'extraction.document_completed':
      return { extraction_id, document_id: 'doc_test', parser_id: parserId, status: 'completed', file_name: 'test.pdf', result: { test: true } };
    default: {
      // The catalog's own example of the event's data (quota.*, the operational events).
      const [example] = (eventDataSchemas[event].meta()?.examples ?? []) as Record<string, unknown>[];
      return { ...example };
    }
  }
}

/**
 * Writes a synthetic event (`test: true`, testEventName unless `opts.event` names one) for this webhook only, enqueues it and waits for the worker to record its first
 * attempt. The worker never retries a test, so one attempt is the answer.
 */
export async function sendTest(
  deps: Pick<ApiDeps, 'db' | 'queue' | 'logger'>,
  accountId: string,
  webhookId: string,
  opts: { waitMs?: number; pollMs?: number; signal?: AbortSignal; event?: EventName } = {},
) {
  // A paused or disabled webhook is tested too: the worker lets explicit user actions through,
  // so an integrator can check a fixed endpoint before resuming it.
  const webhook = await getWebhookRow(deps, accountId, webhookId);
  const event = opts.event ?? testEventName(webhook.events);
  const written = await deps.db.prisma.$transaction((tx) =>
    writeEvent(tx, {
      accountId,
      event,
      parserId: webhook.parserId,
      test: true,
      onlyWebhookId: webhook.id,
      data: testEventData(event, webhook.parserId) as Parameters<typeof writeEvent>[1]['data'],
    }, deps.db),
  );
  const [deliveryId] = written.deliveryIds;
  // Deleted between the lookup and the write: the outbox writes nothing for a deleted webhook.
  if (deliveryId === undefined) throw notFound();
  const giveUp = () =>
    // The caller is told the test failed: it must not be delivered by the relay later.
    deps.db.prisma.delivery.updateMany({ where: { id: deliveryId, ...createdAtWhere(deliveryId), status: 'pending' }, data: { status: 'cancelled', completedAt: new Date() } });

  try {
    await enqueueWithin(deps, [{ id: deliveryId, webhookId: webhook.id }]);
  } catch {
    await giveUp();
    throw queueDown();
  }

  const deadline = Date.now() + (opts.waitMs ?? TEST_WAIT_MS);
  while (!opts.signal?.aborted) {
    // The delivery and its attempts on the partitions of its id's time (and after, for the attempt).
    const row = await deps.db.prisma.delivery.findFirst({
      where: { id: deliveryId, ...createdAtWhere(deliveryId) },
      select: { status: true, attempts: { where: { createdAt: attemptsOfWhere(deliveryId).createdAt }, orderBy: { attemptNumber: 'asc' }, take: 1 } },
    });
    const [attempt] = row?.attempts ?? [];
    if (attempt) return { attempt: attemptResource(attemptRow(attempt, { eventId: written.eventId, event })) };
    // The worker cancels a test only when the webhook was deleted meanwhile.
    if (row?.status === 'cancelled') throw notFound();
    if (Date.now() >= deadline) break;
    await sleep(opts.pollMs ?? TEST_POLL_MS);
  }
  if (opts.signal?.aborted) return null;
  await giveUp();
  deps.logger.warn('test delivery not picked up in time', { webhook_id: webhook.id, delivery_id: deliveryId });
  throw new AppError('SERVICE_UNAVAILABLE', 'The delivery worker did not pick up the test in time; is a worker running?');
}
