import { UnrecoverableError } from 'bullmq';
import type { Logger, WorkerEnv } from '@hookline/config';
import type { Db } from '@hookline/db';
import { callbackBody, createBatcher, newId, signatureHeaders, type SecretBox } from '@hookline/domain';
import { statusClass, type Metrics } from '@hookline/metrics';
import type { DeliverJobData } from '@hookline/queue';
import { RetryLaterError, retryDelayMs } from './backoff';
import type { Sender, SendResult } from './sender';

// The delivery processor (STYLE "How a delivery flows", step 3). Hot path:
// one query loads delivery + webhook + event, one statement records the
// attempt and the delivery's new state (each shared by the deliveries that
// reach that step at the same moment). The webhook row is written only when
// its state changes, so the deliveries of one webhook never queue behind a
// row lock on it.

export type DeliverConfig = Pick<WorkerEnv, 'WEBHOOK_BRAND' | 'RETRY_SCHEDULE' | 'AUTO_DISABLE_AFTER'>;

export type DeliverDeps = {
  db: Db;
  sender: Sender;
  secretBox: SecretBox;
  logger: Logger;
  metrics: Metrics;
  config: DeliverConfig;
};

export type DeliverOutcome =
  /** no such delivery row */
  | 'missing'
  /** already final: nothing to do (a job that ran twice) */
  | 'skipped'
  | 'cancelled'
  | 'succeeded'
  | 'failed'
  /** failed, another attempt is scheduled */
  | 'retrying'
  /** a once-job failed; the delivery keeps waiting for its own scheduled attempt */
  | 'attempt_failed';

export type DeliverResult = { outcome: DeliverOutcome; attemptId?: string; attemptNumber?: number; delayMs?: number };

const WAITING = new Set(['pending', 'pending_retry']);
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const MAX_RECORD_TRIES = 5;
/** BullMQ fires a delayed job at or after its time; less than this early is clock skew between workers, not worth a round trip. */
const EARLY_TOLERANCE_MS = 1_000;

type Loaded = {
  id: string;
  status: string;
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
  disabled_reason: string | null;
  failing_since: Date | null;
  deleted: boolean;
  data: unknown;
  test: boolean;
  event_created_at: Date;
};

// Deliveries that start or finish in the same instant share one statement
// (see batcher.ts): one round trip and one commit for many deliveries.
const LOAD_SQL = `
SELECT d.id, d.status, d.attempt_count, d.next_attempt_at, d.webhook_id, d.event_id, d.event,
       w.url, w.is_active, w.retry_enabled, w.max_retries,
       w.signing_secret_enc, w.previous_secret_enc,
       (w.previous_secret_expires_at IS NOT NULL AND w.previous_secret_expires_at > now()) AS previous_valid,
       w.static_secret_enc, w.disabled_reason, w.failing_since, (w.deleted_at IS NOT NULL) AS deleted,
       e.data, e.test, e.created_at AS event_created_at
  FROM deliveries d
  JOIN webhooks w ON w.id = d.webhook_id
  JOIN events e ON e.id = d.event_id
 WHERE d.id = ANY($1::text[])`;

// Attempt numbers are allocated here: `attempt_count + 1` and the attempt row
// are one statement, guarded by the count the decision was made on, so two
// runs of one job can neither log the same number nor decide on a stale count
// (UNIQUE(delivery_id, attempt_number) backs this up). A row whose guard
// fails is left out of RETURNING; its caller decides again.
const RECORD_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[], $11::int[])
    AS t(id, status, at, next_at, expected, attempt_id, attempt_status, response_status, response_body, error, duration_ms)
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
)
INSERT INTO attempts (id, delivery_id, webhook_id, event_id, event, attempt_number, status, response_status, response_body, error, duration_ms, next_retry_at, created_at)
SELECT i.attempt_id, d.id, d.webhook_id, d.event_id, d.event, d.attempt_count, i.attempt_status, i.response_status, i.response_body, i.error, i.duration_ms, i.next_at, i.at
  FROM d JOIN input i ON i.id = d.id
RETURNING delivery_id`;

type RecordInput = {
  deliveryId: string;
  status: string;
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
};

const BATCH = { maxBatch: 100, maxInFlight: 4 } as const;

const CANCEL_SQL = `
UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, completed_at = $2, updated_at = $2
 WHERE id = $1 AND status IN ('pending', 'pending_retry')
RETURNING id`;

type Decision = {
  deliveryStatus: string;
  /** next_attempt_at for a retry; null keeps the current value of a waiting delivery */
  nextAttemptAt: Date | null;
  delayMs: number | null;
  outcome: DeliverOutcome;
  webhookChange: 'clear_failing' | 'gone' | 'failing' | null;
};

/** The host of a URL, for logs: never the path or query string, which may carry tokens. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}

export function createDeliverer(deps: DeliverDeps) {
  const { db, sender, secretBox, logger, metrics, config } = deps;

  // Decrypting is cheap but not free at thousands per second; ciphertexts are
  // immutable (a new secret is a new ciphertext), so caching by them is safe.
  const plainByCipher = new Map<string, string>();
  function decrypt(stored: string): string {
    const hit = plainByCipher.get(stored);
    if (hit !== undefined) return hit;
    let plain: string;
    try {
      plain = secretBox.decrypt(stored);
    } catch {
      throw new Error('cannot decrypt a webhook secret: ENCRYPTION_KEY must be the same for the API and every worker');
    }
    if (plainByCipher.size >= 10_000) plainByCipher.clear();
    plainByCipher.set(stored, plain);
    return plain;
  }

  function buildHeaders(row: Loaded, body: string): Record<string, string> {
    const brand = config.WEBHOOK_BRAND;
    const secrets = [decrypt(row.signing_secret_enc)];
    if (row.previous_secret_enc && row.previous_valid) secrets.push(decrypt(row.previous_secret_enc));
    // User-Agent is set by the sender (one value for every callback).
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      [`X-${brand}-Event`]: row.event,
      [`X-${brand}-Delivery`]: row.id,
      ...signatureHeaders({ brand, secrets, deliveryId: row.id, timestampSeconds: Math.floor(Date.now() / 1000), body }),
    };
    if (row.static_secret_enc) headers['X-Webhook-Secret'] = decrypt(row.static_secret_enc);
    return headers;
  }

  function decide(row: Loaded, result: SendResult, once: boolean, attemptNumber: number, now: number): Decision {
    if (result.ok) {
      return { deliveryStatus: 'succeeded', nextAttemptAt: null, delayMs: null, outcome: 'succeeded', webhookChange: row.failing_since ? 'clear_failing' : null };
    }
    if (result.status === 410) {
      return { deliveryStatus: 'failed', nextAttemptAt: null, delayMs: null, outcome: 'failed', webhookChange: 'gone' };
    }
    if (row.test) {
      return { deliveryStatus: 'failed', nextAttemptAt: null, delayMs: null, outcome: 'failed', webhookChange: null };
    }
    if (once) {
      // A manual retry is one extra try: a delivery still waiting keeps its own
      // scheduled job (and its place in the schedule); anything else ends failed.
      if (WAITING.has(row.status)) return { deliveryStatus: row.status, nextAttemptAt: null, delayMs: null, outcome: 'attempt_failed', webhookChange: null };
      return { deliveryStatus: 'failed', nextAttemptAt: null, delayMs: null, outcome: 'failed', webhookChange: null };
    }
    if (row.retry_enabled && attemptNumber - 1 < row.max_retries) {
      const delayMs = retryDelayMs({ schedule: config.RETRY_SCHEDULE, retryNumber: attemptNumber, retryAfterMs: result.retryAfterMs });
      return { deliveryStatus: 'pending_retry', nextAttemptAt: new Date(now + delayMs), delayMs, outcome: 'retrying', webhookChange: null };
    }
    return { deliveryStatus: 'failed', nextAttemptAt: null, delayMs: null, outcome: 'failed', webhookChange: 'failing' };
  }

  async function cancel(row: Loaded, reason: string): Promise<DeliverResult> {
    const rows = await db.sql.query(CANCEL_SQL, [row.id, new Date()]);
    if (rows.length) {
      metrics.deliveries.inc({ outcome: 'cancelled' });
      logger.info('delivery cancelled', { delivery_id: row.id, webhook_id: row.webhook_id, reason });
    }
    return { outcome: 'cancelled' };
  }

  const loadOne = createBatcher<string, Loaded | undefined>({
    ...BATCH,
    async run(ids) {
      const rows = await db.sql.query<Loaded>(LOAD_SQL, [ids]);
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id));
    },
  });

  /** true when recorded, false when the guard failed (another run recorded an attempt meanwhile). */
  async function recordMany(items: RecordInput[]): Promise<boolean[]> {
    const column = <K extends keyof RecordInput>(key: K) => items.map((item) => item[key]);
    const rows = await db.sql.query<{ delivery_id: string }>(RECORD_SQL, [
      column('deliveryId'), column('status'), column('at'), column('nextAttemptAt'), column('expectedCount'), column('attemptId'),
      column('attemptStatus'), column('responseStatus'), column('responseBody'), column('error'), column('durationMs'),
    ]);
    const recorded = new Set(rows.map((row) => row.delivery_id));
    return items.map((item) => recorded.has(item.deliveryId));
  }

  const recordOne = createBatcher<RecordInput, boolean | Error>({
    ...BATCH,
    // Two attempts of one delivery in one statement would collide on its attempt number.
    key: (item) => item.deliveryId,
    async run(items) {
      try {
        return await recordMany(items);
      } catch (err) {
        if (items.length === 1) return [err as Error];
        // One bad row must not fail the others (each would be sent again): record them one by one.
        return Promise.all(items.map((item) => recordMany([item]).then(([ok]) => ok, (e: Error) => e)));
      }
    },
  });

  /** Records the attempt; returns the decision taken and the attempt's id and number. */
  async function record(row: Loaded, result: SendResult, once: boolean) {
    let current = { status: row.status, attemptCount: row.attempt_count };
    // One id for every try: a try that committed although its call failed (the
    // answer lost with the connection) is found by it, not recorded again.
    const attemptId = newId('attempt');
    for (let tries = 0; tries < MAX_RECORD_TRIES; tries += 1) {
      const now = Date.now();
      const attemptNumber = current.attemptCount + 1;
      const decision = decide({ ...row, status: current.status }, result, once, attemptNumber, now);
      const recorded = await recordOne({
        deliveryId: row.id,
        status: decision.deliveryStatus,
        at: new Date(now),
        nextAttemptAt: decision.nextAttemptAt,
        expectedCount: current.attemptCount,
        attemptId,
        attemptStatus: result.ok ? 'succeeded' : 'failed',
        responseStatus: result.status,
        responseBody: result.body,
        error: result.error,
        durationMs: result.durationMs,
      });
      if (recorded instanceof Error) throw recorded;
      if (recorded) return { decision, attemptId, attemptNumber, now };
      // Another run recorded an attempt since we loaded the row (or this one did, unanswered): decide again on its count.
      const fresh = await db.sql.query<{ status: string; attempt_count: number; mine: number | null }>(
        'SELECT status, attempt_count, (SELECT attempt_number FROM attempts WHERE id = $2) AS mine FROM deliveries WHERE id = $1',
        [row.id, attemptId],
      );
      if (!fresh.length) throw new Error(`delivery ${row.id} vanished while recording an attempt`);
      // Only this try can have committed unanswered (an earlier try's failure threw): its decision stands.
      if (fresh[0].mine !== null) return { decision, attemptId, attemptNumber: fresh[0].mine, now };
      current = { status: fresh[0].status, attemptCount: fresh[0].attempt_count };
    }
    throw new Error(`could not record an attempt of ${row.id}: its attempt count kept changing`);
  }

  async function applyWebhookChange(row: Loaded, change: Decision['webhookChange'], now: number): Promise<string | null> {
    const at = new Date(now);
    if (change === 'clear_failing') {
      await db.sql.query('UPDATE webhooks SET failing_since = NULL, updated_at = $2 WHERE id = $1 AND failing_since IS NOT NULL', [row.webhook_id, at]);
      return null;
    }
    if (change === 'gone') {
      const rows = await db.sql.query(
        `UPDATE webhooks SET is_active = false, disabled_reason = 'gone', disabled_at = $2, updated_at = $2
          WHERE id = $1 AND disabled_reason IS NULL AND deleted_at IS NULL RETURNING id`,
        [row.webhook_id, at],
      );
      return rows.length ? 'gone' : null;
    }
    if (change !== 'failing') return null;
    let failingSince = row.failing_since;
    if (!failingSince) {
      const rows = await db.sql.query<{ failing_since: Date | null }>(
        'UPDATE webhooks SET failing_since = COALESCE(failing_since, $2), updated_at = $2 WHERE id = $1 RETURNING failing_since',
        [row.webhook_id, at],
      );
      failingSince = rows[0]?.failing_since ?? at;
    }
    if (row.disabled_reason || now - failingSince.getTime() < config.AUTO_DISABLE_AFTER) return null;
    // Still failing (a success in between would have cleared failing_since) and long enough: disable.
    const rows = await db.sql.query(
      `UPDATE webhooks SET is_active = false, disabled_reason = 'failing_too_long', disabled_at = $2, updated_at = $2
        WHERE id = $1 AND disabled_reason IS NULL AND deleted_at IS NULL AND failing_since IS NOT NULL RETURNING id`,
      [row.webhook_id, at],
    );
    return rows.length ? 'failing_too_long' : null;
  }

  /**
   * Runs one job. Resolves when nothing more is due for this job; throws
   * RetryLaterError to have BullMQ try again later, UnrecoverableError when
   * the delivery failed for good.
   */
  async function deliver(job: DeliverJobData): Promise<DeliverResult> {
    const once = job.once === true;
    const row = await loadOne(job.deliveryId);
    if (!row) {
      logger.warn('delivery not found; job dropped', { delivery_id: job.deliveryId });
      return { outcome: 'missing' };
    }
    if (FINAL.has(row.status) && !once) return { outcome: 'skipped' };
    // A scheduled retry runs only when due. Its job can run early when the
    // worker died (or lost Redis) after recording the attempt but before BullMQ
    // delayed the job: stalled recovery then runs it at once. Wait for the turn.
    const earlyMs = row.status === 'pending_retry' && row.next_attempt_at ? row.next_attempt_at.getTime() - Date.now() : 0;
    if (!once && earlyMs > EARLY_TOLERANCE_MS) throw new RetryLaterError(earlyMs, `retry of ${row.id} not due yet; waiting ${earlyMs} ms`);
    if (row.deleted) return cancel(row, 'webhook_deleted');
    // Explicit user actions (a test send, a manual retry) still reach a paused webhook.
    if ((!row.is_active || row.disabled_reason) && !once && !row.test) return cancel(row, row.disabled_reason ? 'webhook_disabled' : 'webhook_paused');

    const body = callbackBody({ id: row.event_id, event: row.event, createdAt: row.event_created_at, test: row.test, data: row.data });
    const result = await sender.send({ url: row.url, headers: buildHeaders(row, body), body });
    const { decision, attemptId, attemptNumber, now } = await record(row, result, once);
    // The attempt is recorded: a hiccup on the webhook row must not make BullMQ run (and send) it again.
    const disabled = await applyWebhookChange(row, decision.webhookChange, now).catch((err: Error) => {
      logger.error('could not update the webhook state after an attempt', { webhook_id: row.webhook_id, change: decision.webhookChange, err: err.message });
      return null;
    });

    const attemptOutcome = result.ok ? 'succeeded' : 'failed';
    metrics.attempts.inc({ outcome: attemptOutcome, status_class: statusClass(result.status), error: result.error ?? 'none' });
    metrics.attemptDuration.observe({ outcome: attemptOutcome }, result.durationMs / 1000);
    if (decision.deliveryStatus === 'succeeded' || decision.deliveryStatus === 'failed') metrics.deliveries.inc({ outcome: decision.deliveryStatus });
    if (result.ok) metrics.deliveryLatency.observe(Math.max(0, now - row.event_created_at.getTime()) / 1000);
    logger.info('delivery attempt', {
      delivery_id: row.id,
      webhook_id: row.webhook_id,
      attempt_id: attemptId,
      attempt_number: attemptNumber,
      outcome: decision.outcome,
      status: result.status,
      error: result.error,
      duration_ms: result.durationMs,
      host: hostOf(row.url),
      ...(decision.delayMs !== null ? { retry_in_ms: decision.delayMs } : {}),
      ...(disabled ? { webhook_disabled: disabled } : {}),
    });

    const done: DeliverResult = { outcome: decision.outcome, attemptId, attemptNumber, ...(decision.delayMs !== null ? { delayMs: decision.delayMs } : {}) };
    if (decision.outcome === 'retrying') throw new RetryLaterError(decision.delayMs!, `attempt ${attemptNumber} failed (${result.error ?? result.status}); retry in ${decision.delayMs} ms`);
    if (decision.outcome === 'failed' || decision.outcome === 'attempt_failed') {
      throw new UnrecoverableError(`attempt ${attemptNumber} failed (${result.error ?? result.status}); no further retry from this job`);
    }
    return done;
  }

  return { deliver };
}

export type Deliverer = ReturnType<typeof createDeliverer>;
