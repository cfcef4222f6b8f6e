import { newId } from '@hookline/domain';
import type { Prisma, SqlRunner } from './client';
import { packPayload } from './payload';
import { readIdempotencyRecords, takeSql, type IdempotencyRecord } from './idempotency';

// The outbox (step 1 of "One delivery, from request to callback" in ARCHITECTURE.md):
// an event and one `pending` delivery row per matching webhook, written
// atomically. Jobs are enqueued only after commit; a delivery whose job never
// reached Redis stays `pending` and the worker's relay enqueues it later.
//
// One writer, writeEventBatch, in plain SQL: many events (one per concurrent
// request on the ingest hot path) and their deliveries in two statements,
// whatever the batch size. writeEvent runs the same two statements inside a
// caller's Prisma transaction (document reports, test sends), so which
// webhooks get an event is decided by MATCH_SQL alone.
//
// Portable SQL only (no extensions, no server-side ids): `npm start` runs it
// on PGlite. Items are passed as one JSON parameter and unpacked with
// jsonb_to_recordset, which pg, PGlite and Prisma's raw queries all take as a
// plain text parameter.

export type Tx = Prisma.TransactionClient;

export type NewEvent = {
  accountId: string;
  event: string;
  parserId: string | null;
  data: Prisma.InputJsonValue;
  test?: boolean;
  /** Deliver to this webhook of the account only (test sends), whatever its subscriptions or state. */
  onlyWebhookId?: string;
  /** Never deliver to this webhook (an operational event about it: a webhook never hears about itself). */
  exceptWebhookId?: string;
  /**
   * The request's Idempotency-Key, recorded by the statement that writes the
   * event (no round trip of its own): the event is written only if the key's
   * row could be taken, and the row holds `answer(...)` from the start.
   */
  idempotency?: {
    scope: string;
    requestHash: string;
    ttlMs: number;
    /** The answer to store (the API seals it), from the event as it will be written. */
    answer(written: WrittenEvent): { status: number; body: unknown };
  };
};

/** An event written without an Idempotency-Key (its result is never KeyTaken). */
export type UnkeyedEvent = NewEvent & { idempotency?: undefined };

/** `webhookIds[i]` is the webhook of `deliveryIds[i]` (it picks the delivery's queue shard). */
export type WrittenEvent = { eventId: string; createdAt: Date; deliveryIds: string[]; webhookIds: string[] };

/** The key was taken already (by an earlier request, or a racing one): nothing was written; this is its row. */
export type KeyTaken = { keyTaken: IdempotencyRecord | null };

/**
 * One result per item, in order: the written event; null when its account does
 * not exist (nothing is written for it); or, for an item with an Idempotency-Key
 * whose row is live, that row (null if it expired in between, so rare that the
 * caller just asks for a retry).
 */
export type EventBatchResult = WrittenEvent | null | KeyTaken;

export const isKeyTaken = (result: EventBatchResult): result is KeyTaken => result !== null && 'keyTaken' in result;

/** What the writer needs of a connection: one parameterised statement at a time. */
export type OutboxSql = Pick<SqlRunner, 'query'>;

/**
 * How rows are written (docs/operations.md, "Rolling upgrades and the compact
 * history"). compact: a large payload compressed, and a delivery's copies of its
 * event's name and its webhook's account left NULL (COMPACT_HISTORY; only once
 * no process of a version before it runs, which reads those columns).
 */
export type WriteFormat = { compact: boolean };
const LEGACY: WriteFormat = { compact: false };

// THE rule of which webhooks get an event. A webhook of the event's account
// that is not deleted, and:
// - for a test event (only_webhook_id), that webhook alone, paused or disabled
//   included (an integrator checks a fixed endpoint before resuming it);
// - otherwise active, not disabled by the service, subscribed to the event
//   (dashboard webhooks are stored subscribed to the batch.* events and cannot
//   change that), in scope (a scoped webhook gets only its parser's events,
//   while an account-level event (no parser) reaches every scope), and its
//   filter holds: for every entry, the value at that dotted path of the
//   event's data equals the entry's scalar or one of its array's values (JSONB
//   equality, so 1 = 1.0 and "1" <> 1; JSON null matches a present null, and a
//   missing path matches nothing). Test events ignore filters.
//   The filter's values are scalars (the schema allows nothing else), so
//   "one of the values" is JSONB containment of [value]: one C-level scan of
//   the array per entry, the path extracted once, where expanding the array
//   row by row cost ~1 µs per value (docs/security.md, "Filters");
// - never the webhook an operational event is about (except_webhook_id).
// The LEFT JOIN on accounts keeps one row (webhook_id null) for an item with
// no matching webhook, and tells an unknown account from an account with none.
// The same statement reads the live idempotency row of an item's key: such an
// item is a replay, matched to no webhook.
const MATCH_SQL = `
SELECT i.ord, a.id IS NOT NULL AS account_found, w.id AS webhook_id,
       r.scope AS key_scope, r.request_hash AS key_hash, r.response_status AS key_status, r.response_body AS key_body
  FROM jsonb_to_recordset($1::jsonb) AS i(ord int, account_id text, event text, parser_id text, only_webhook_id text, except_webhook_id text, key_scope text, data jsonb)
  LEFT JOIN idempotency_records r ON r.scope = i.key_scope AND r.expires_at > now()
  LEFT JOIN accounts a ON a.id = i.account_id
  LEFT JOIN webhooks w
         ON w.account_id = a.id
        AND r.scope IS NULL
        AND w.deleted_at IS NULL
        AND w.id IS DISTINCT FROM i.except_webhook_id
        AND CASE WHEN i.only_webhook_id IS NOT NULL THEN w.id = i.only_webhook_id
                 ELSE w.is_active
                  AND w.disabled_reason IS NULL
                  AND i.event = ANY (w.events)
                  AND (i.parser_id IS NULL OR w.parser_id IS NULL OR w.parser_id = i.parser_id)
                  AND CASE WHEN jsonb_typeof(w.filter) = 'object' THEN NOT EXISTS (
                        SELECT 1 FROM jsonb_each(w.filter) f
                         CROSS JOIN LATERAL (SELECT jsonb_extract_path(i.data, VARIADIC string_to_array(f.key, '.')) AS value) d
                         WHERE d.value IS NULL
                            OR NOT (CASE WHEN jsonb_typeof(f.value) = 'array' THEN f.value ELSE jsonb_build_array(f.value) END) @> jsonb_build_array(d.value))
                           ELSE true END
            END`;

// One statement, so no explicit transaction is needed on the batch path: the
// idempotency rows, the events and their deliveries commit together or not at
// all. An event with a key is written only if its key's row was taken here (a
// racing request with the same key that committed first wins; this statement
// waits for it on the row's unique index, then writes nothing for that item).
// The deliveries' foreign key to events is checked at the end of the statement,
// when every CTE has run. It answers the ids of the events written.
const INSERT_SQL = `
WITH taken AS (${takeSql('$3')}
), new_events AS (
  INSERT INTO events (id, account_id, event, parser_id, data, data_z, test, created_at)
  SELECT e.id, e.account_id, e.event, e.parser_id, e.data, decode(e.data_z, 'base64'), e.test, e.created_at
    FROM jsonb_to_recordset($1::jsonb) AS e(id text, account_id text, event text, parser_id text, data jsonb, data_z text, test boolean, created_at timestamptz, key_scope text)
   WHERE e.key_scope IS NULL OR e.key_scope IN (SELECT scope FROM taken)
  RETURNING id
), new_deliveries AS (
  INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, status, attempt_count, next_attempt_at, created_at, updated_at)
  SELECT d.id, d.account_id, d.webhook_id, d.event_id, d.event, 'pending', 0, d.created_at, d.created_at, d.updated_at
    FROM jsonb_to_recordset($2::jsonb) AS d(id text, account_id text, webhook_id text, event_id text, event text, created_at timestamptz, updated_at timestamptz)
   WHERE d.event_id IN (SELECT id FROM new_events)
)
SELECT id FROM new_events`;

type MatchRow = {
  ord: number;
  account_found: boolean;
  webhook_id: string | null;
  key_scope: string | null;
  key_hash: string | null;
  key_status: number | null;
  key_body: unknown;
};

/**
 * Writes each item's event and one `pending` delivery per matching webhook,
 * all of them in one atomic statement. Throws when the statement fails (one
 * bad item fails the batch: callers that batch unrelated requests retry the
 * items one by one to isolate it).
 */
export async function writeEventBatch(sql: OutboxSql, items: UnkeyedEvent[], format?: WriteFormat): Promise<(WrittenEvent | null)[]>;
export async function writeEventBatch(sql: OutboxSql, items: NewEvent[], format?: WriteFormat): Promise<EventBatchResult[]>;
export async function writeEventBatch(sql: OutboxSql, items: NewEvent[], format: WriteFormat = LEGACY): Promise<EventBatchResult[]> {
  if (items.length === 0) return [];
  const scopes = items.map((item) => item.idempotency?.scope ?? null);
  if (new Set(scopes.filter((s) => s !== null)).size !== scopes.filter((s) => s !== null).length) {
    throw new Error('outbox: one batch holds one Idempotency-Key scope at most once');
  }
  const wanted = items.map((item, ord) => ({ ord, account_id: item.accountId, event: item.event, parser_id: item.parserId, only_webhook_id: item.onlyWebhookId ?? null, except_webhook_id: item.exceptWebhookId ?? null, key_scope: scopes[ord], data: item.data }));
  const matches = await sql.query<MatchRow>(MATCH_SQL, [JSON.stringify(wanted)]);

  const found = new Array<boolean>(items.length).fill(false);
  const webhooksOf: string[][] = items.map(() => []);
  const replays = new Map<number, IdempotencyRecord>();
  for (const row of matches) {
    found[row.ord] = row.account_found;
    if (row.webhook_id) webhooksOf[row.ord].push(row.webhook_id);
    if (row.key_scope !== null) {
      replays.set(row.ord, { scope: row.key_scope, requestHash: row.key_hash!, responseStatus: row.key_status!, responseBody: row.key_body });
    }
  }

  const createdAt = new Date();
  const at = createdAt.toISOString();
  const results: EventBatchResult[] = [];
  const events: object[] = [];
  const deliveries: object[] = [];
  const keys: object[] = [];
  items.forEach((item, ord) => {
    const replay = replays.get(ord);
    if (replay) return void results.push({ keyTaken: replay });
    if (!found[ord]) return void results.push(null);
    const eventId = newId('event', createdAt.getTime());
    const payload = packPayload(item.data, format.compact);
    events.push({
      id: eventId, account_id: item.accountId, event: item.event, parser_id: item.parserId, data: payload.data, data_z: payload.dataZ?.toString('base64') ?? null,
      test: item.test ?? false, created_at: at, key_scope: scopes[ord],
    });
    const deliveryIds = webhooksOf[ord].map((webhookId) => {
      const id = newId('delivery', createdAt.getTime());
      deliveries.push(format.compact
        ? { id, account_id: null, webhook_id: webhookId, event_id: eventId, event: null, created_at: at, updated_at: null }
        : { id, account_id: item.accountId, webhook_id: webhookId, event_id: eventId, event: item.event, created_at: at, updated_at: at });
      return id;
    });
    const written = { eventId, createdAt, deliveryIds, webhookIds: webhooksOf[ord] };
    if (item.idempotency) {
      const { status, body } = item.idempotency.answer(written);
      keys.push({ scope: item.idempotency.scope, request_hash: item.idempotency.requestHash, response_status: status, response_body: body, ttl_ms: item.idempotency.ttlMs });
    }
    results.push(written);
  });
  if (events.length === 0) return results;

  const rows = await sql.query<{ id: string }>(INSERT_SQL, [JSON.stringify(events), JSON.stringify(deliveries), JSON.stringify(keys)]);
  if (rows.length === events.length) return results;
  // A racing request took a key between the two statements: its item wrote nothing; answer that request's row.
  const writtenIds = new Set(rows.map((row) => row.id));
  const lost = items.flatMap((item, ord) => {
    const result = results[ord];
    return result && !isKeyTaken(result) && !writtenIds.has(result.eventId) ? [ord] : [];
  });
  const records = await readIdempotencyRecords(sql, lost.map((ord) => scopes[ord]!));
  for (const ord of lost) results[ord] = { keyTaken: records.get(scopes[ord]!) ?? null };
  return results;
}

/** A Prisma interactive transaction as the writer's connection: its rows commit or roll back with the caller's. */
export function transactionSql(tx: Tx): OutboxSql {
  return { query: <T>(text: string, params: unknown[] = []) => tx.$queryRawUnsafe<T[]>(text, ...params) };
}

/** writeEventBatch for one event, in the caller's transaction. The account must exist. */
export async function writeEvent(tx: Tx, input: UnkeyedEvent, format?: WriteFormat): Promise<WrittenEvent> {
  const [written] = await writeEventBatch(transactionSql(tx), [input], format);
  if (!written) throw new Error(`outbox: no such account ${input.accountId}`);
  return written;
}
