import { isKeyTaken, withPartitionNet, writeEventBatch, type EventBatchResult, type IdempotencyRecord, type NewEvent } from '@hookline/db';
import { AppError, createBatcher, unwrapSettled, type EventName, type Settled } from '@hookline/domain';
import { ATTR, context, endSpan, SpanKind, startSpan, type Context } from '@hookline/telemetry';
import type { ApiDeps } from '../deps';
import { IDEMPOTENCY_TTL_MS, keyReused, type IdempotencyContext } from '../middleware/idempotency';
import { enqueueCommitted, type EmittedEvent, type Written } from './outbox-enqueue';

// POST /internal/v1/events at volume. Concurrent requests share one batch:
// two SQL statements (match webhooks + check accounts; write events and
// deliveries atomically) and one BullMQ addBulk, however many requests the
// batch holds. Each request is still answered only after its own rows are
// committed (an answered 202 is durable in PostgreSQL) and its jobs were
// offered to Redis; a Redis failure leaves the rows pending for the relay.
//
// An Idempotency-Key costs no statement of its own: the first statement reads
// the key's row with the webhooks, the second takes it with the writes, and
// the row holds the 202's answer from the start.
//
// Tracing: a batch serves many requests, each with its own trace. Each
// request's span gets its own `hookline.outbox.write` and `hookline.enqueue`
// children, all of one batch starting and ending together
// (`hookline.batch.size` says how many shared it), so every trace reads whole
// on its own: no span is shared across traces, and no link has to be followed.

/** An event of the catalog, for the account's matching webhooks (no test events here). */
export type PublishedEvent = Omit<NewEvent, 'event' | 'onlyWebhookId' | 'idempotency'> & { event: EventName; key?: IdempotencyContext; trace?: Context };

/** The answer to give: the event written now, or the row of a key used before. */
export type Published = { event: EmittedEvent; keyTaken?: undefined } | { keyTaken: IdempotencyRecord | null };

export type EventPublisher = { publish(input: PublishedEvent): Promise<Published> };

/** The 202 body of POST /internal/v1/events, as sent and as stored for a replay. */
export const eventAccepted = (event: EmittedEvent) => ({ event: { id: event.id, event: event.event, deliveries: event.deliveries } });

export type EventPublisherOptions = {
  /**
   * Events per batch at most. It bounds one statement's size (100 bodies of at
   * most 256 KiB); under load batches hold ~20 events, so the bound rarely bites.
   */
  maxBatch?: number;
  /** Batches in flight at once: while they run, new requests queue up for the next one. */
  maxInFlight?: number;
};

// Two batches in flight let one wait on PostgreSQL or Redis while the next forms
// (measured on 2 cores, 64 concurrent publishers: ~2,800 events/s; 1 or 4 in flight ~2,550/s).
const DEFAULTS = { maxBatch: 100, maxInFlight: 2 } as const;

// Matching an event costs its account's filters (one test per entry, for every
// webhook), and everyone in a batch waits for the whole statement. So accounts
// whose filters list more than FILTERED_LANE_THRESHOLD values publish in a lane
// of their own: batches of at most 10, one at a time, never shared with an
// account below the threshold. An account's count is read once per
// FILTER_COST_TTL_MS (a filter just added may take that long to move it); the
// per-account cap MAX_FILTER_VALUES_PER_ACCOUNT bounds what one event costs in
// that lane. docs/security.md, "Filters", has the measurements.
export const FILTERED_LANE_THRESHOLD = 20;
const FILTERED_LANE = { maxBatch: 10, maxInFlight: 1 } as const;
const FILTER_COST_TTL_MS = 10_000;
const FILTER_COST_SQL = `
SELECT COALESCE(sum(CASE WHEN jsonb_typeof(f.value) = 'array' THEN jsonb_array_length(f.value) ELSE 1 END), 0)::int AS n
  FROM webhooks w
 CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(w.filter) = 'object' THEN w.filter ELSE '{}'::jsonb END) f
 WHERE w.account_id = $1 AND w.deleted_at IS NULL`;

/** The filter values of an account's webhooks, cached for FILTER_COST_TTL_MS; concurrent asks share one query. */
function filterCosts(deps: Pick<ApiDeps, 'db' | 'logger'>): (accountId: string) => Promise<number> {
  const cache = new Map<string, { until: number; cost: Promise<number> }>();
  return (accountId) => {
    const now = Date.now();
    const hit = cache.get(accountId);
    if (hit && hit.until > now) return hit.cost;
    if (cache.size >= 50_000) cache.clear();
    const cost = deps.db.sql.query<{ n: number }>(FILTER_COST_SQL, [accountId]).then(
      (rows) => rows[0]?.n ?? 0,
      (err: unknown) => {
        // Not cached: the publish itself will meet (and report) a database that is down.
        cache.delete(accountId);
        deps.logger.warn('could not read an account\'s filter cost; publishing in the shared lane', { err: err instanceof Error ? err.message : String(err) });
        return 0;
      },
    );
    cache.set(accountId, { until: now + FILTER_COST_TTL_MS, cost });
    return cost;
  };
}

// SQLSTATE classes that blame the statement's input, not the database: data
// exceptions (22: a NUL character, an unpaired surrogate), integrity (23) and
// program limits (54). PostgreSQL rolled the statement back, so writing its
// items one by one again cannot duplicate anything; any other failure (the
// database unreachable, a connection lost around a commit) fails the whole
// batch as it is, since a retry could write an event twice.
const ITEM_FAULT = /^(22|23|54)/;

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length === 5 ? code : undefined;
}

const unknownAccount = (accountId: string) =>
  new AppError('RESOURCE_NOT_FOUND', `No such account: ${accountId}. Create it first with POST /internal/v1/accounts.`);

function unstorable(err: unknown): unknown {
  if (!sqlState(err)?.startsWith('22')) return err;
  return new AppError(
    'INVALID_PAYLOAD',
    'The event contains text PostgreSQL cannot store (a NUL character or an unpaired UTF-16 surrogate); remove it and send the event again.',
  );
}

export function createEventPublisher(deps: Pick<ApiDeps, 'db' | 'queue' | 'logger' | 'metrics' | 'secretBox'>, options: EventPublisherOptions = {}): EventPublisher {
  const { maxBatch, maxInFlight } = { ...DEFAULTS, ...options };

  /** One statement pair for the batch; if an item's content made it fail, each item alone, so only that one fails. */
  async function write(published: PublishedEvent[]): Promise<Settled<EventBatchResult>[]> {
    const items = published.map(({ key, trace: _trace, ...item }): NewEvent => (key ? {
      ...item,
      idempotency: {
        scope: key.scope,
        requestHash: key.requestHash,
        ttlMs: IDEMPOTENCY_TTL_MS,
        // Kept as it is, not sealed: it holds no secret (an event's id, name and delivery count), and
        // sealing tripled it (about 100 bytes more per key; docs/scaling.md). A replay reads both forms.
        answer: (w) => ({ status: 202, body: eventAccepted({ id: w.eventId, event: item.event, deliveries: w.deliveryIds.length }) }),
      },
    } : item));
    try {
      // A partition missing (none made ahead: no worker ran for a while) is made at once and the batch written again.
      const results = await withPartitionNet(deps.db, () => writeEventBatch(deps.db.sql, items, deps.db));
      return results.map((value) => ({ ok: true, value }));
    } catch (err) {
      const state = sqlState(err);
      if (items.length === 1 || !state || !ITEM_FAULT.test(state)) throw err;
      return Promise.all(
        items.map((item) =>
          writeEventBatch(deps.db.sql, [item], deps.db).then(
            ([value]): Settled<EventBatchResult> => ({ ok: true, value }),
            (error: unknown): Settled<EventBatchResult> => ({ ok: false, error }),
          ),
        ),
      );
    }
  }

  async function runDistinct(items: PublishedEvent[]): Promise<Settled<Published>[]> {
    let outcomes: Settled<EventBatchResult>[];
    const spans = items.map((item) => startSpan('hookline.outbox.write', { kind: SpanKind.CLIENT, parent: item.trace, attributes: { [ATTR.batchSize]: items.length } }));
    try {
      outcomes = await write(items);
    } catch (err) {
      const error = unstorable(err);
      for (const span of spans) endSpan(span, error);
      return items.map(() => ({ ok: false, error }));
    }
    const written: Written[] = [];
    outcomes.forEach((outcome, i) => {
      if (outcome.ok && outcome.value && !isKeyTaken(outcome.value)) spans[i].setAttribute(ATTR.eventId, outcome.value.eventId);
      endSpan(spans[i], outcome.ok ? undefined : unstorable(outcome.error));
      if (outcome.ok && outcome.value && !isKeyTaken(outcome.value)) written.push({ ...outcome.value, event: items[i].event, trace: items[i].trace });
    });
    const emitted = written.length ? await enqueueCommitted(deps, written) : [];
    const byEventId = new Map(emitted.map((e) => [e.id, e]));
    return outcomes.map((outcome, i): Settled<Published> => {
      if (!outcome.ok) return { ok: false, error: unstorable(outcome.error) };
      if (!outcome.value) return { ok: false, error: unknownAccount(items[i].accountId) };
      if (isKeyTaken(outcome.value)) return { ok: true, value: outcome.value };
      return { ok: true, value: { event: byEventId.get(outcome.value.eventId)! } };
    });
  }

  /**
   * A batch holds each key once: a second request with a key already in the
   * batch (a client retrying before its first answer) waits for the first and
   * gets its answer as a replay, or 409 for another body.
   */
  async function run(items: PublishedEvent[]): Promise<Settled<Published>[]> {
    const firstOf = new Map<string, number>();
    const sameAs = items.map((item, i) => {
      if (!item.key) return i;
      const first = firstOf.get(item.key.scope);
      if (first === undefined) firstOf.set(item.key.scope, i);
      return first ?? i;
    });
    const distinct = items.filter((_, i) => sameAs[i] === i);
    if (distinct.length === items.length) return runDistinct(items);

    const settled = await runDistinct(distinct);
    const at = new Map(distinct.map((item, j) => [item, settled[j]]));
    return items.map((item, i): Settled<Published> => {
      const first = items[sameAs[i]];
      const outcome = at.get(first)!;
      if (first === item || !outcome.ok) return outcome;
      if (first.key!.requestHash !== item.key!.requestHash) return { ok: false, error: keyReused() };
      const value = outcome.value;
      if (value.keyTaken !== undefined) return outcome;
      return { ok: true, value: { keyTaken: { scope: item.key!.scope, requestHash: item.key!.requestHash, responseStatus: 202, responseBody: eventAccepted(value.event) } } };
    });
  }

  const shared = unwrapSettled(createBatcher<PublishedEvent, Settled<Published>>({ run, maxBatch, maxInFlight }));
  const filtered = unwrapSettled(createBatcher<PublishedEvent, Settled<Published>>({ run, ...FILTERED_LANE }));
  const costOf = filterCosts(deps);
  const publish = async (input: PublishedEvent) => {
    // The batch runs in whichever request's context formed it: keep this request's own.
    const item = { ...input, trace: context.active() };
    return ((await costOf(input.accountId)) > FILTERED_LANE_THRESHOLD ? filtered : shared)(item);
  };
  return { publish };
}
