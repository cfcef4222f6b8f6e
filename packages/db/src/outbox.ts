import { newId } from '@hookline/domain';
import type { Prisma, SqlRunner } from './client';

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
};

export type WrittenEvent = { eventId: string; createdAt: Date; deliveryIds: string[] };

/** One result per item, in order: the written event, or null when its account does not exist (nothing is written for it). */
export type EventBatchResult = WrittenEvent | null;

/** What the writer needs of a connection: one parameterised statement at a time. */
export type OutboxSql = Pick<SqlRunner, 'query'>;

// THE rule of which webhooks get an event. A webhook of the event's account
// that is not deleted, and:
// - for a test event (only_webhook_id), that webhook alone, paused or disabled
//   included (an integrator checks a fixed endpoint before resuming it);
// - otherwise active, not disabled by the service, subscribed to the event
//   (dashboard webhooks are stored subscribed to the batch.* events and cannot
//   change that), and in scope: a scoped webhook gets only its parser's events,
//   while an account-level event (no parser) reaches every scope.
// The LEFT JOIN on accounts keeps one row (webhook_id null) for an item with
// no matching webhook, and tells an unknown account from an account with none.
const MATCH_SQL = `
SELECT i.ord, a.id IS NOT NULL AS account_found, w.id AS webhook_id
  FROM jsonb_to_recordset($1::jsonb) AS i(ord int, account_id text, event text, parser_id text, only_webhook_id text)
  LEFT JOIN accounts a ON a.id = i.account_id
  LEFT JOIN webhooks w
         ON w.account_id = a.id
        AND w.deleted_at IS NULL
        AND CASE WHEN i.only_webhook_id IS NOT NULL THEN w.id = i.only_webhook_id
                 ELSE w.is_active
                  AND w.disabled_reason IS NULL
                  AND i.event = ANY (w.events)
                  AND (i.parser_id IS NULL OR w.parser_id IS NULL OR w.parser_id = i.parser_id)
            END`;

// One statement, so no explicit transaction is needed on the batch path: the
// events and their deliveries commit together or not at all. The deliveries'
// foreign key to events is checked at the end of the statement, when both CTEs have run.
const INSERT_SQL = `
WITH new_events AS (
  INSERT INTO events (id, account_id, event, parser_id, data, test, created_at)
  SELECT e.id, e.account_id, e.event, e.parser_id, e.data, e.test, e.created_at
    FROM jsonb_to_recordset($1::jsonb) AS e(id text, account_id text, event text, parser_id text, data jsonb, test boolean, created_at timestamptz)
  RETURNING id
)
INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, status, attempt_count, next_attempt_at, created_at, updated_at)
SELECT d.id, d.account_id, d.webhook_id, d.event_id, d.event, 'pending', 0, d.created_at, d.created_at, d.created_at
  FROM jsonb_to_recordset($2::jsonb) AS d(id text, account_id text, webhook_id text, event_id text, event text, created_at timestamptz)`;

type MatchRow = { ord: number; account_found: boolean; webhook_id: string | null };

/**
 * Writes each item's event and one `pending` delivery per matching webhook,
 * all of them in one atomic statement. Throws when the statement fails (one
 * bad item fails the batch: callers that batch unrelated requests retry the
 * items one by one to isolate it).
 */
export async function writeEventBatch(sql: OutboxSql, items: NewEvent[]): Promise<EventBatchResult[]> {
  if (items.length === 0) return [];
  const wanted = items.map((item, ord) => ({ ord, account_id: item.accountId, event: item.event, parser_id: item.parserId, only_webhook_id: item.onlyWebhookId ?? null }));
  const matches = await sql.query<MatchRow>(MATCH_SQL, [JSON.stringify(wanted)]);

  const found = new Array<boolean>(items.length).fill(false);
  const webhooksOf: string[][] = items.map(() => []);
  for (const row of matches) {
    found[row.ord] = row.account_found;
    if (row.webhook_id) webhooksOf[row.ord].push(row.webhook_id);
  }

  const createdAt = new Date();
  const at = createdAt.toISOString();
  const results: EventBatchResult[] = [];
  const events: object[] = [];
  const deliveries: object[] = [];
  items.forEach((item, ord) => {
    if (!found[ord]) return void results.push(null);
    const eventId = newId('event');
    events.push({ id: eventId, account_id: item.accountId, event: item.event, parser_id: item.parserId, data: item.data, test: item.test ?? false, created_at: at });
    const deliveryIds = webhooksOf[ord].map((webhookId) => {
      const id = newId('delivery');
      deliveries.push({ id, account_id: item.accountId, webhook_id: webhookId, event_id: eventId, event: item.event, created_at: at });
      return id;
    });
    results.push({ eventId, createdAt, deliveryIds });
  });
  if (events.length) await sql.query(INSERT_SQL, [JSON.stringify(events), JSON.stringify(deliveries)]);
  return results;
}

/** A Prisma interactive transaction as the writer's connection: its rows commit or roll back with the caller's. */
export function transactionSql(tx: Tx): OutboxSql {
  return { query: <T>(text: string, params: unknown[] = []) => tx.$queryRawUnsafe<T[]>(text, ...params) };
}

/** writeEventBatch for one event, in the caller's transaction. The account must exist. */
export async function writeEvent(tx: Tx, input: NewEvent): Promise<WrittenEvent> {
  const [written] = await writeEventBatch(transactionSql(tx), [input]);
  if (!written) throw new Error(`outbox: no such account ${input.accountId}`);
  return written;
}
