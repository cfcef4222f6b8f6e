import type { OutboxSql } from './outbox';

// Idempotency-Key records (docs/api.md#pagination-and-idempotency): one row per
// (principal, route, key) scope, holding the request's hash and the answer given.
//
// A row is taken with TAKE_SQL's rule, wherever it is written: a new scope is
// inserted, and a scope whose row has expired is taken over in place (ON
// CONFLICT … WHERE expires_at <= now()), so no request ever has to delete
// expired rows first (the worker's retention sweep deletes them in batches).
// A live row is never overwritten: the statement returns no row for it, and the
// caller replays that row's answer or refuses.
//
// Two ways to write one:
// - with its final answer, in the same statement or transaction that does the
//   work (the outbox batch, a document report): a request that dies leaves
//   nothing behind, and its retry simply runs again;
// - as a claim (response_status 0) that expires after a short lease, answered
//   later (every other route): a request whose process died frees its key when
//   the lease ends instead of answering 409 for 24 hours.

/** response_status of a claim whose request has not answered yet. */
export const IN_PROGRESS = 0;

/** The columns of one row to take; response_body is whatever the caller stores (the API seals it). */
export type IdempotencyTake = {
  scope: string;
  request_hash: string;
  response_status: number;
  response_body: unknown;
  /** From now; a claim's lease, or how long an answer is kept. */
  ttl_ms: number;
};

export type IdempotencyRecord = { scope: string; requestHash: string; responseStatus: number; responseBody: unknown };

/** The rows of $N (a JSON array of IdempotencyTake), taken by the one rule; RETURNING the scopes taken. */
export const takeSql = (param: string) => `
INSERT INTO idempotency_records AS r (scope, request_hash, response_status, response_body, created_at, expires_at)
SELECT t.scope, t.request_hash, t.response_status, t.response_body, now(), now() + make_interval(secs => t.ttl_ms / 1000.0)
  FROM jsonb_to_recordset(${param}::jsonb) AS t(scope text, request_hash text, response_status int, response_body jsonb, ttl_ms bigint)
ON CONFLICT (scope) DO UPDATE
   SET request_hash = excluded.request_hash, response_status = excluded.response_status,
       response_body = excluded.response_body, created_at = excluded.created_at, expires_at = excluded.expires_at
 WHERE r.expires_at <= now()
RETURNING r.scope`;

const TAKE_ONE_SQL = takeSql('$1');

const READ_SQL = `
SELECT scope, request_hash AS "requestHash", response_status AS "responseStatus", response_body AS "responseBody"
  FROM idempotency_records
 WHERE scope IN (SELECT jsonb_array_elements_text($1::jsonb)) AND expires_at > now()`;

/** Takes one scope; false when a live row holds it. */
export async function takeIdempotencyKey(sql: OutboxSql, take: IdempotencyTake): Promise<boolean> {
  const rows = await sql.query<{ scope: string }>(TAKE_ONE_SQL, [JSON.stringify([take])]);
  return rows.length === 1;
}

/** The live rows of these scopes (an expired row is as good as none). */
export async function readIdempotencyRecords(sql: OutboxSql, scopes: string[]): Promise<Map<string, IdempotencyRecord>> {
  if (scopes.length === 0) return new Map();
  const rows = await sql.query<IdempotencyRecord>(READ_SQL, [JSON.stringify(scopes)]);
  return new Map(rows.map((row) => [row.scope, row]));
}

/** Answers a claim: the row keeps the answer for `ttlMs` from now. */
export async function answerIdempotencyKey(sql: OutboxSql, scope: string, status: number, body: unknown, ttlMs: number): Promise<void> {
  await sql.query(
    `UPDATE idempotency_records SET response_status = $2, response_body = $3::jsonb, expires_at = now() + make_interval(secs => $4::bigint / 1000.0)
      WHERE scope = $1 AND response_status = ${IN_PROGRESS}`,
    [scope, status, JSON.stringify(body ?? null), ttlMs],
  );
}

/** Frees a claim (its request failed in a way the client may retry). */
export async function releaseIdempotencyKey(sql: OutboxSql, scope: string): Promise<void> {
  await sql.query(`DELETE FROM idempotency_records WHERE scope = $1 AND response_status = ${IN_PROGRESS}`, [scope]);
}
