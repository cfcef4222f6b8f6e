import { takeSql } from '@hookline/db';

// The previous version's statements (commit a13161b, the last before the compact
// history), verbatim, for apps/worker/test/rolling-upgrade.test.ts: during a
// rolling restart they run against the schema this version migrated.

/** packages/db/src/outbox.ts's INSERT_SQL ($1 events, $2 deliveries, $3 idempotency keys, as JSON). */
export const PREVIOUS_INSERT_SQL = `
WITH taken AS (${takeSql('$3')}
), new_events AS (
  INSERT INTO events (id, account_id, event, parser_id, data, test, created_at)
  SELECT e.id, e.account_id, e.event, e.parser_id, e.data, e.test, e.created_at
    FROM jsonb_to_recordset($1::jsonb) AS e(id text, account_id text, event text, parser_id text, data jsonb, test boolean, created_at timestamptz, key_scope text)
   WHERE e.key_scope IS NULL OR e.key_scope IN (SELECT scope FROM taken)
  RETURNING id
), new_deliveries AS (
  INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, status, attempt_count, next_attempt_at, created_at, updated_at)
  SELECT d.id, d.account_id, d.webhook_id, d.event_id, d.event, 'pending', 0, d.created_at, d.created_at, d.created_at
    FROM jsonb_to_recordset($2::jsonb) AS d(id text, account_id text, webhook_id text, event_id text, event text, created_at timestamptz)
   WHERE d.event_id IN (SELECT id FROM new_events)
)
SELECT id FROM new_events`;

/** apps/worker/src/delivery-store.ts: the worker's load of delivery + webhook + event. */
export const PREVIOUS_LOAD_SQL = `
SELECT d.id, d.account_id, d.status, d.attempt_count, d.next_attempt_at, d.webhook_id, d.event_id, d.event,
       w.url, w.is_active, w.retry_enabled, w.max_retries,
       w.signing_secret_enc, w.previous_secret_enc,
       (w.previous_secret_expires_at IS NOT NULL AND w.previous_secret_expires_at > now()) AS previous_valid,
       w.static_secret_enc, w.custom_headers_enc, w.disabled_reason, w.failing_since, w.failing_announced, (w.deleted_at IS NOT NULL) AS deleted,
       w.max_in_flight, w.rate_limit_per_second, w.circuit, w.circuit_retry_at, w.circuit_cooldown_ms,
       e.data, e.test, e.created_at AS event_created_at
  FROM deliveries d
  JOIN webhooks w ON w.id = d.webhook_id
  JOIN events e ON e.id = d.event_id
 WHERE d.id = ANY($1::text[])`;

/** apps/worker/src/delivery-store.ts: the attempt and the delivery's new state, one statement. */
export const PREVIOUS_RECORD_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[], $11::int[], $12::text[])
    AS t(id, status, at, next_at, expected, attempt_id, attempt_status, response_status, response_body, error, duration_ms, wake_extraction)
), d AS (
  UPDATE deliveries AS dl
     SET attempt_count = dl.attempt_count + 1,
         status = i.status,
         last_attempt_at = i.at,
         next_attempt_at = CASE WHEN i.status IN ('pending', 'pending_retry') THEN COALESCE(i.next_at, dl.next_attempt_at) ELSE NULL END,
         completed_at = CASE WHEN i.status IN ('succeeded', 'failed') THEN i.at ELSE NULL END,
         updated_at = i.at
    FROM input i
   WHERE dl.id = i.id AND dl.attempt_count = i.expected
  RETURNING dl.id, dl.attempt_count, dl.webhook_id, dl.event_id, dl.event
), logged AS (
  INSERT INTO attempts (id, delivery_id, webhook_id, event_id, event, attempt_number, status, response_status, response_body, error, duration_ms, next_retry_at, created_at)
  SELECT i.attempt_id, d.id, d.webhook_id, d.event_id, d.event, d.attempt_count, i.attempt_status, i.response_status, i.response_body, i.error, i.duration_ms, i.next_at, i.at
    FROM d JOIN input i ON i.id = d.id
  RETURNING delivery_id
)
SELECT l.delivery_id, held.ids AS wake
  FROM logged l
  JOIN d ON d.id = l.delivery_id
  JOIN input i ON i.id = l.delivery_id
  LEFT JOIN LATERAL (
    SELECT array_agg(jd.id) AS ids
      FROM events je
      JOIN deliveries jd ON jd.event_id = je.id AND jd.webhook_id = d.webhook_id
     WHERE i.wake_extraction IS NOT NULL
       AND je.data ->> 'extraction_id' = i.wake_extraction AND je.event = 'extraction.job_completed'
       AND jd.status IN ('pending', 'pending_retry')
  ) held ON true`;

/** apps/worker/src/delivery-store.ts: current(), after a guard failure. */
export const PREVIOUS_CURRENT_SQL = 'SELECT status, attempt_count, (SELECT attempt_number FROM attempts WHERE id = $2) AS mine FROM deliveries WHERE id = $1';
