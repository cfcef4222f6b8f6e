import { createdRange, createdWithin, ID_TIME_SKEW_MS, transactionSql, unpackPayload, WAITING_STATUSES_SQL, withPartitionNet, writeEventBatch, type Db, type OutboxSql, type SqlRunner, type WriteFormat } from '@hookline/db';
import { createBatcher, type CircuitState, type DeliveryStatus, type EventData, type OperationalEventName } from '@hookline/domain';
import { inSpan, SpanKind } from '@hookline/telemetry';

// Every statement the worker and the relay run against PostgreSQL, in one
// place. Hot path: one query loads delivery + webhook + event, one statement
// records the attempt and the delivery's new state (each shared by the
// deliveries that reach that step at the same moment, see batcher.ts). The
// webhook row is written only when its state changes (failing, disabled,
// circuit), so the deliveries of one webhook never queue behind a lock on it.
//
// Operational events (webhook.failing, webhook.disabled, delivery.exhausted)
// are written by the statement's own transaction that makes the transition
// they announce, through the outbox: every transition here is guarded, so of
// several workers racing for it exactly one wins it and writes its event, and
// no event is written without its transition (or lost after it).

export type LoadedDelivery = {
  id: string;
  account_id: string;
  status: DeliveryStatus;
  attempt_count: number;
  next_attempt_at: Date | null;
  webhook_id: string;
  event_id: string;
  event: string;
  url: string;
  is_active: boolean;
  retry_enabled: boolean;
  max_retries: number;
  signing_secret_enc: string;
  previous_secret_enc: string | null;
  previous_valid: boolean;
  static_secret_enc: string | null;
  /** The custom headers' JSON, encrypted; null when there are none. */
  custom_headers_enc: string | null;
  disabled_reason: string | null;
  failing_since: Date | null;
  /** webhook.failing was written for the current failing spell (see markFailing). */
  failing_announced: boolean;
  deleted: boolean;
  max_in_flight: number | null;
  rate_limit_per_second: number | null;
  circuit: CircuitState;
  circuit_retry_at: Date | null;
  circuit_cooldown_ms: number | null;
  /** The payload (unpacked: whole whichever way it was stored). */
  data: unknown;
  test: boolean;
  event_created_at: Date;
};

// The account and the event's name are read from the webhook and the event (a
// delivery's own copies are NULL in the compact history, and equal where set);
// the payload from data or, when it was large, data_z (unpackPayload).
// Each id comes with the created_at range its time gives (createdRange), for the
// delivery; its event was written by the same statement at the same created_at
// (and, before the outbox, in the same transaction at its now()), so it is looked
// for around the delivery's own: each lookup reads one partition of each table,
// an old id (no time) every partition of deliveries and one of events.
// Exported for the partition test (EXPLAIN).
export const LOAD_SQL = `
SELECT d.id, w.account_id, d.status, d.attempt_count, d.next_attempt_at, d.webhook_id, d.event_id, e.event,
       w.url, w.is_active, w.retry_enabled, w.max_retries,
       w.signing_secret_enc, w.previous_secret_enc,
       (w.previous_secret_expires_at IS NOT NULL AND w.previous_secret_expires_at > now()) AS previous_valid,
       w.static_secret_enc, w.custom_headers_enc, w.disabled_reason, w.failing_since, w.failing_announced, (w.deleted_at IS NOT NULL) AS deleted,
       w.max_in_flight, w.rate_limit_per_second, w.circuit, w.circuit_retry_at, w.circuit_cooldown_ms,
       e.data, e.data_z, e.test, e.created_at AS event_created_at
  FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS i(id, lo, hi)
  JOIN deliveries d ON d.id = i.id AND ${createdWithin('d.created_at', 'i.lo', 'i.hi')}
  JOIN webhooks w ON w.id = d.webhook_id
  JOIN events e ON e.id = d.event_id
   AND e.created_at BETWEEN d.created_at - interval '${ID_TIME_SKEW_MS} milliseconds' AND d.created_at + interval '${ID_TIME_SKEW_MS} milliseconds'`;

// Attempt numbers are allocated here: `attempt_count + 1` and the attempt row
// are one statement, guarded by the count the decision was made on, so two
// runs of one job can neither log the same number nor decide on a stale count
// (UNIQUE(delivery_id, attempt_number) backs this up). A row whose guard
// fails is left out of RETURNING; its caller decides again.
// A document callback that ends (wake_extraction: its extraction) also answers
// the job callbacks of its extraction to its webhook still waiting, which may
// be held until it ended (ordered job callbacks): its caller wakes them.
// $13 (the compact history): the attempt's copies of its delivery's event id
// and name, and the delivery's updated_at (read by no one), are left NULL.
// $14, $15: the created_at range of each delivery's id (createdRange): its update reads one partition.
export const RECORD_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[], $11::int[], $12::text[], $14::timestamptz[], $15::timestamptz[])
    AS t(id, status, at, next_at, expected, attempt_id, attempt_status, response_status, response_body, error, duration_ms, wake_extraction, lo, hi)
), d AS (
  UPDATE deliveries AS dl
     SET attempt_count = dl.attempt_count + 1,
         status = i.status,
         last_attempt_at = i.at,
         next_attempt_at = CASE WHEN i.status IN ${WAITING_STATUSES_SQL} THEN COALESCE(i.next_at, dl.next_attempt_at) ELSE NULL END,
         completed_at = CASE WHEN i.status IN ('succeeded', 'failed') THEN i.at ELSE NULL END,
         updated_at = CASE WHEN $13::boolean THEN NULL ELSE i.at END
    FROM input i
   WHERE dl.id = i.id AND ${createdWithin('dl.created_at', 'i.lo', 'i.hi')} AND dl.attempt_count = i.expected
  RETURNING dl.id, dl.attempt_count, dl.webhook_id, dl.event_id, dl.event
), logged AS (
  INSERT INTO attempts (id, delivery_id, webhook_id, event_id, event, attempt_number, status, response_status, response_body, error, duration_ms, next_retry_at, created_at)
  SELECT i.attempt_id, d.id, d.webhook_id, CASE WHEN $13::boolean THEN NULL ELSE d.event_id END, CASE WHEN $13::boolean THEN NULL ELSE d.event END, d.attempt_count, i.attempt_status, i.response_status, i.response_body, i.error, i.duration_ms, i.next_at, i.at
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
       AND jd.status IN ${WAITING_STATUSES_SQL}
  ) held ON true`;

// Ordered job callbacks: the document callbacks of one extraction to one
// webhook that have not ended yet, and when the last of them is due. Found
// through the extraction's events (an index on data ->> 'extraction_id').
const WAITING_DOCUMENTS_SQL = `
SELECT count(*)::int AS waiting, max(d.next_attempt_at) AS latest
  FROM events e
  JOIN deliveries d ON d.event_id = e.id AND d.webhook_id = $2
 WHERE e.data ->> 'extraction_id' = $1 AND e.event = 'extraction.document_completed'
   AND d.status IN ${WAITING_STATUSES_SQL}`;

export type AttemptRecord = {
  deliveryId: string;
  status: DeliveryStatus;
  at: Date;
  /** next_attempt_at of a retry, also the attempt's next_retry_at; null keeps a waiting delivery's current one */
  nextAttemptAt: Date | null;
  expectedCount: number;
  attemptId: string;
  attemptStatus: 'succeeded' | 'failed';
  responseStatus: number | null;
  responseBody: string | null;
  error: string | null;
  durationMs: number;
  /** A document callback that ends: its extraction, whose held job callback to this webhook it may release. */
  wakeExtraction: string | null;
};

/** A recorded attempt: the held job callbacks it releases (delivery ids, also their job ids). */
export type Recorded = { wake: string[] };

/** An operational event about one webhook of an account, never delivered to that webhook. */
export type Notice = {
  [N in OperationalEventName]: { accountId: string; aboutWebhookId: string; event: N; data: EventData<N> };
}[OperationalEventName];

/** A waiting delivery as the relay scans it. */
export type WaitingRow = { id: string; webhook_id: string; status: DeliveryStatus; next_attempt_at: Date | string };

/** A delivery as the queues need it: its id (the job id) and its webhook (which picks the queue shard). */
export type DeliveryRef = { id: string; webhookId: string };

/** The deliveries of the operational event a won transition wrote (the caller enqueues them after commit). */
export type Announced = { deliveries: DeliveryRef[] };

const BATCH = { maxBatch: 100, maxInFlight: 2 } as const;
const RECORD_LINGER_MS = 5;

/** A transition and its notice wait this long for a connection under load, rather than fail (and lose the transition). */
const NOTICE_TX = { maxWait: 10_000, timeout: 15_000 } as const;

// A session lock held by the one relay (across every worker process) that scans.
export const RELAY_LOCK_ID = 72_707_370;

// Keyset scan: each tick continues after the last row of the previous one (and
// starts over once it reaches the end), so under a backlog larger than a batch
// a lost job behind a thousand healthy ones is still found within a few ticks.
// It reads the waiting set, waiting_deliveries (a trigger on deliveries keeps it:
// migration 20261208010000_waiting_set), on its index (next_attempt_at, id).
// Exported for the index test (EXPLAIN).
export const DUE_SQL = `
SELECT id, webhook_id, status, next_attempt_at FROM waiting_deliveries
 WHERE next_attempt_at < now() - ($1::double precision * interval '1 millisecond')
   AND ($3::timestamptz IS NULL OR (next_attempt_at, id) > ($3::timestamptz, $4::text))
 ORDER BY next_attempt_at, id
 LIMIT $2`;

// The refill after Redis lost its data: every waiting delivery, due or not
// (each job went with the data), in the keyset order of DUE_SQL, on the same
// index (the bound on next_attempt_at is what lets the planner walk it in order).
export const WAITING_SQL = `
SELECT id, webhook_id, status, next_attempt_at FROM waiting_deliveries
 WHERE next_attempt_at >= COALESCE($2::timestamptz, '-infinity'::timestamptz)
   AND ($2::timestamptz IS NULL OR (next_attempt_at, id) > ($2::timestamptz, $3::text))
 ORDER BY next_attempt_at, id
 LIMIT $1`;

export type DeliveryStore = ReturnType<typeof createDeliveryStore>;

/** Writes a notice through the outbox, on the caller's transaction; resolves to its deliveries. */
async function writeNotice(sql: OutboxSql, notice: Notice, format: WriteFormat): Promise<DeliveryRef[]> {
  const [written] = await writeEventBatch(sql, [{
    accountId: notice.accountId, event: notice.event, parserId: null, data: notice.data, exceptWebhookId: notice.aboutWebhookId,
  }], format);
  if (!written || written.deliveryIds.length === 0) return [];
  // The outbox wrote them at the event's created_at: one partition.
  const rows = await sql.query<{ id: string; webhook_id: string }>('SELECT id, webhook_id FROM deliveries WHERE event_id = $1 AND created_at = $2', [written.eventId, written.createdAt]);
  return rows.map((row) => ({ id: row.id, webhookId: row.webhook_id }));
}

export function createDeliveryStore(db: Db) {
  const load = createBatcher<string, LoadedDelivery | undefined>({
    ...BATCH,
    async run(ids) {
      const ranges = ids.map(createdRange);
      const rows = await db.sql.query<LoadedDelivery & { data_z?: Uint8Array | null }>(LOAD_SQL, [ids, ranges.map((r) => r.from), ranges.map((r) => r.to)]);
      const byId = new Map(rows.map(({ data_z: dataZ, ...row }) => [row.id, { ...row, data: unpackPayload(row.data, dataZ) }]));
      return ids.map((id) => byId.get(id));
    },
  });

  /** Per item: what it released when recorded, null when the guard failed (another run recorded an attempt meanwhile). */
  async function recordMany(items: AttemptRecord[], sql: OutboxSql = db.sql): Promise<(Recorded | null)[]> {
    const column = <K extends keyof AttemptRecord>(key: K) => items.map((item) => item[key]);
    const rows = await sql.query<{ delivery_id: string; wake: string[] | null }>(RECORD_SQL, [
      column('deliveryId'), column('status'), column('at'), column('nextAttemptAt'), column('expectedCount'), column('attemptId'),
      column('attemptStatus'), column('responseStatus'), column('responseBody'), column('error'), column('durationMs'), column('wakeExtraction'), db.compact,
      items.map((item) => createdRange(item.deliveryId).from), items.map((item) => createdRange(item.deliveryId).to),
    ]);
    const recorded = new Map(rows.map((row) => [row.delivery_id, { wake: row.wake ?? [] }]));
    return items.map((item) => recorded.get(item.deliveryId) ?? null);
  }

  /**
   * A guarded transition (one statement whose RETURNING is empty unless this
   * caller won it) and, when won, its notice, in one transaction. Without a
   * notice the statement runs alone.
   */
  async function transition<R>(statement: string, params: unknown[], notice: Notice | null): Promise<{ row: R | undefined } & Announced> {
    if (!notice) return { row: (await db.sql.query<R>(statement, params))[0], deliveries: [] };
    return withPartitionNet(db, () => db.prisma.$transaction(async (tx) => {
      const sql = transactionSql(tx);
      const [row] = await sql.query<R>(statement, params);
      return { row, deliveries: row ? await writeNotice(sql, notice, db) : [] };
    }, NOTICE_TX));
  }

  // A failed item is carried as data, not as an Error instance: errors from
  // Node's sockets may come from another realm (a test's VM context), where
  // `instanceof Error` is false.
  const recordBatch = createBatcher<AttemptRecord, Recorded | null | { failed: unknown }>({
    ...BATCH,
    // The callback is sent already: waiting a few ms for company costs no one
    // anything, and under a steady load it makes several times fewer statements.
    lingerMs: RECORD_LINGER_MS,
    // Two attempts of one delivery in one statement would collide on its attempt number.
    key: (item) => item.deliveryId,
    async run(items) {
      try {
        // An attempt whose partition is missing: made at once, and the statement (which wrote nothing) runs again.
        return await withPartitionNet(db, () => recordMany(items));
      } catch (err) {
        if (items.length === 1) return [{ failed: err }];
        // One bad row must not fail the others (each would be sent again): record them one by one.
        return Promise.all(items.map((item) => recordMany([item]).then(([done]) => done, (failed: unknown) => ({ failed }))));
      }
    },
  });

  /** Whether any row changed: every transition below is guarded, so exactly one caller wins it. */
  const changed = async (sql: string, params: unknown[]) => (await db.sql.query(sql, params)).length > 0;

  return {
    // Spans start in the caller's context (the attempt's), whichever batch the call joins.
    /** Delivery + webhook + event, batched with the loads of the same instant. */
    load: (deliveryId: string) => inSpan('hookline.load', () => load(deliveryId), { kind: SpanKind.CLIENT }),
    /**
     * Records an attempt and the delivery's new state, guarded by the attempt
     * count it was decided on: null when the guard refused it (another run
     * recorded an attempt meanwhile, or this very item did, its answer lost).
     * Rejects when the statement failed.
     */
    record: (item: AttemptRecord): Promise<Recorded | null> =>
      inSpan('hookline.record', async () => {
        const done = await recordBatch(item);
        if (done && 'failed' in done) throw done.failed;
        return done;
      }, { kind: SpanKind.CLIENT }),

    /**
     * record() for the attempt that ends a delivery failed, with its
     * delivery.exhausted notice in the same transaction (so the guard that lets
     * one run record the attempt also lets one write the notice). Rare: not batched.
     */
    recordExhausted: (item: AttemptRecord, notice: Notice): Promise<(Recorded & Announced) | null> =>
      inSpan('hookline.record', () => withPartitionNet(db, () => db.prisma.$transaction(async (tx) => {
        const sql = transactionSql(tx);
        const [done] = await recordMany([item], sql);
        return done ? { ...done, deliveries: await writeNotice(sql, notice, db) } : null;
      }, NOTICE_TX)), { kind: SpanKind.CLIENT }),

    /** The document callbacks of an extraction to a webhook still waiting, and when the last is due. */
    async waitingDocuments(extractionId: string, webhookId: string): Promise<{ waiting: number; latest: Date | null }> {
      const [row] = await db.sql.query<{ waiting: number; latest: Date | string | null }>(WAITING_DOCUMENTS_SQL, [extractionId, webhookId]);
      return { waiting: row?.waiting ?? 0, latest: row?.latest ? new Date(row.latest) : null };
    },

    /**
     * After a guard failure: the delivery's current state, and the number of our attempt if it did commit.
     * Our attempt is looked up among the delivery's (attempts_delivery_id_attempt_number_key), not by its
     * id, so that attempts_pkey serves no query of this version (docs/operations.md, "Indexes").
     */
    async current(deliveryId: string, attemptId: string) {
      const rows = await db.sql.query<{ status: DeliveryStatus; attempt_count: number; mine: number | null }>(
        `SELECT status, attempt_count,
                (SELECT attempt_number FROM attempts WHERE delivery_id = $1 AND id = $2 AND created_at >= COALESCE($5::timestamptz, '-infinity'::timestamptz)) AS mine
           FROM deliveries WHERE id = $1 AND ${createdWithin('created_at', '$3::timestamptz', '$4::timestamptz')}`,
        [deliveryId, attemptId, createdRange(deliveryId).from, createdRange(deliveryId).to, createdRange(attemptId).from],
      );
      return rows[0];
    },

    cancel: (deliveryId: string, at: Date) =>
      changed(
        `UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, completed_at = $2, updated_at = $2
          WHERE id = $1 AND ${createdWithin('created_at', '$3::timestamptz', '$4::timestamptz')} AND status IN ${WAITING_STATUSES_SQL} RETURNING id`,
        [deliveryId, at, createdRange(deliveryId).from, createdRange(deliveryId).to],
      ),

    /** Ends the failing spell, and with it its announcement: the next spell is announced again. */
    clearFailing: (webhookId: string, at: Date) =>
      changed(
        `UPDATE webhooks SET failing_since = NULL, failing_announced = false, updated_at = $2
          WHERE id = $1 AND (failing_since IS NOT NULL OR failing_announced) RETURNING id`,
        [webhookId, at],
      ),

    /** Disables the webhook for a 410, once; `won` for the caller that did (and wrote the notice, if any). */
    async disableGone(webhookId: string, at: Date, notice: Notice | null): Promise<{ won: boolean } & Announced> {
      const { row, deliveries } = await transition(
        `UPDATE webhooks SET is_active = false, disabled_reason = 'gone', disabled_at = $2, updated_at = $2
          WHERE id = $1 AND disabled_reason IS NULL AND deleted_at IS NULL RETURNING id`,
        [webhookId, at],
        notice,
      );
      return { won: row !== undefined, deliveries };
    },

    /**
     * Marks the webhook failing, keeping an earlier mark; resolves to when it
     * started failing.
     *
     * Two guarded transitions, one per kind of caller. Without a notice (an
     * operational event's delivery, which announces nothing) only
     * failing_since is set. With one, the transition is "not announced yet →
     * announced" (setting failing_since too if it is not set): exactly one
     * caller wins it per failing spell, whichever kind of delivery began the
     * spell, and writes the notice, its failing_since being the spell's.
     */
    async markFailing(webhookId: string, at: Date, notice: ((failingSince: Date) => Notice) | null): Promise<{ failingSince: Date } & Announced> {
      const won = notice
        ? await db.prisma.$transaction(async (tx) => {
          const sql = transactionSql(tx);
          const [row] = await sql.query<{ failing_since: Date | string }>(
            `UPDATE webhooks SET failing_since = COALESCE(failing_since, $2), failing_announced = true, updated_at = $2
              WHERE id = $1 AND NOT failing_announced AND deleted_at IS NULL RETURNING failing_since`,
            [webhookId, at],
          );
          if (!row) return null;
          const failingSince = new Date(row.failing_since);
          return { failingSince, deliveries: await writeNotice(sql, notice(failingSince), db) };
        }, NOTICE_TX)
        : await transition<{ failing_since: Date | string }>(
          'UPDATE webhooks SET failing_since = $2, updated_at = $2 WHERE id = $1 AND failing_since IS NULL AND deleted_at IS NULL RETURNING failing_since',
          [webhookId, at],
          null,
        ).then(({ row }) => (row ? { failingSince: new Date(row.failing_since), deliveries: [] } : null));
      if (won) return won;
      const [current] = await db.sql.query<{ failing_since: Date | null }>('SELECT failing_since FROM webhooks WHERE id = $1', [webhookId]);
      return { failingSince: current?.failing_since ?? at, deliveries: [] };
    },

    async disableFailingTooLong(webhookId: string, at: Date, notice: Notice | null): Promise<{ won: boolean } & Announced> {
      const { row, deliveries } = await transition(
        `UPDATE webhooks SET is_active = false, disabled_reason = 'failing_too_long', disabled_at = $2, updated_at = $2
          WHERE id = $1 AND disabled_reason IS NULL AND deleted_at IS NULL AND failing_since IS NOT NULL RETURNING id`,
        [webhookId, at],
        notice,
      );
      return { won: row !== undefined, deliveries };
    },

    /** closed → open, once (the first worker to see the threshold crossed). */
    openCircuit: (webhookId: string, retryAt: Date, cooldownMs: number, at: Date) =>
      changed(
        `UPDATE webhooks SET circuit = 'open', circuit_retry_at = $2, circuit_cooldown_ms = $3, updated_at = $4
          WHERE id = $1 AND circuit = 'closed' AND deleted_at IS NULL RETURNING id`,
        [webhookId, retryAt, cooldownMs, at],
      ),

    /**
     * open (cooldown over) → half_open, or a half-open circuit whose probe
     * never reported back: one caller wins the probe, which must report by
     * `deadline` or another may take over.
     */
    claimProbe: (webhookId: string, deadline: Date, at: Date) =>
      changed(
        `UPDATE webhooks SET circuit = 'half_open', circuit_retry_at = $2, updated_at = $3
          WHERE id = $1 AND circuit IN ('open', 'half_open') AND circuit_retry_at <= $3 RETURNING id`,
        [webhookId, deadline, at],
      ),

    /**
     * A probe claim whose worker died (still the claim made until `deadline`):
     * it ends now, so the next delivery may claim the probe.
     */
    releaseProbe: (webhookId: string, deadline: Date, at: Date) =>
      changed(
        `UPDATE webhooks SET circuit_retry_at = $3, updated_at = $3
          WHERE id = $1 AND circuit = 'half_open' AND circuit_retry_at = $2 RETURNING id`,
        [webhookId, deadline, at],
      ),

    /** half_open → open again, for a longer cooldown (the probe failed). */
    reopenCircuit: (webhookId: string, retryAt: Date, cooldownMs: number, at: Date) =>
      changed(
        `UPDATE webhooks SET circuit = 'open', circuit_retry_at = $2, circuit_cooldown_ms = $3, updated_at = $4
          WHERE id = $1 AND circuit = 'half_open' RETURNING id`,
        [webhookId, retryAt, cooldownMs, at],
      ),

    closeCircuit: (webhookId: string, at: Date) =>
      changed(
        `UPDATE webhooks SET circuit = 'closed', circuit_retry_at = NULL, circuit_cooldown_ms = NULL, updated_at = $2
          WHERE id = $1 AND circuit <> 'closed' RETURNING id`,
        [webhookId, at],
      ),

    /** The relay's scan: waiting deliveries whose turn passed more than `graceMs` ago, after `after` in keyset order. */
    overdue: (sql: SqlRunner, graceMs: number, limit: number, after: { nextAttemptAt: Date; id: string } | null) =>
      sql.query<WaitingRow>(DUE_SQL, [graceMs, limit, after?.nextAttemptAt ?? null, after?.id ?? null]),

    /** Every waiting delivery, due or not, after `after` in keyset order (the refill of an emptied Redis). */
    waiting: (limit: number, after: { nextAttemptAt: Date; id: string } | null) =>
      db.sql.query<WaitingRow>(WAITING_SQL, [limit, after?.nextAttemptAt ?? null, after?.id ?? null]),
  };
}
