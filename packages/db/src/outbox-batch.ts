import { newId } from '@hookline/domain';
import type { SqlRunner } from './client';
import type { NewEvent, WrittenEvent } from './outbox';

// The outbox write of the ingest hot path, in plain SQL: many events (one per
// concurrent request) and their delivery rows in two statements, whatever the
// batch size. Prisma costs the API ~1 ms of CPU per query; these cost the
// database the work and the API one JSON.stringify.
//
// Portable SQL only (no extensions, no server-side ids): `npm start` runs it
// on PGlite. Items are passed as one JSON parameter and unpacked with
// jsonb_to_recordset, which both pg and PGlite take as a plain text parameter.

export type EventBatchItem = Omit<NewEvent, 'onlyWebhookId'>;

/** One result per item, in order: the written event, or null when its account does not exist (nothing is written for it). */
export type EventBatchResult = WrittenEvent | null;

// Must select what matchingWebhooksWhere (outbox.ts) selects: subscribed, in
// scope, active, neither disabled nor deleted. A scoped webhook gets only its
// parser's events; an account-level event (no parser) reaches every scope.
// The LEFT JOIN on accounts keeps one row (webhook_id null) for an item with
// no matching webhook, and tells an unknown account from an account with none.
const MATCH_SQL = `
SELECT i.ord, a.id IS NOT NULL AS account_found, w.id AS webhook_id
  FROM jsonb_to_recordset($1::jsonb) AS i(ord int, account_id text, event text, parser_id text)
  LEFT JOIN accounts a ON a.id = i.account_id
  LEFT JOIN webhooks w
         ON w.account_id = a.id
        AND w.deleted_at IS NULL
        AND w.is_active
        AND w.disabled_reason IS NULL
        AND i.event = ANY (w.events)
        AND (i.parser_id IS NULL OR w.parser_id IS NULL OR w.parser_id = i.parser_id)`;

// One statement, so no explicit transaction: the events and their deliveries
// commit together or not at all. The deliveries' foreign key to events is
// checked at the end of the statement, when both CTEs have run.
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
export async function writeEventBatch(sql: SqlRunner, items: EventBatchItem[]): Promise<EventBatchResult[]> {
  if (items.length === 0) return [];
  const wanted = items.map((item, ord) => ({ ord, account_id: item.accountId, event: item.event, parser_id: item.parserId }));
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
