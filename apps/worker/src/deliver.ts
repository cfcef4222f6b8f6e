import type { Logger, WorkerEnv } from '@hookline/config';
import type { Db } from '@hookline/db';
import {
  callbackBody, circuitAfterAttempt, circuitCount, isProxyFailure, circuitHoldMs, decideAfterAttempt, inFlightHoldMs, isCircuitFailure, isFinal, isWaiting, newId,
  nextCircuitCooldown, OPERATIONAL_EVENT_NAMES, openCustomHeaders, rateHoldMs, sendableCustomHeaders, signatureHeaders, type CustomHeaders, type Decision, type EventName, type HoldReason, type SecretBox,
} from '@hookline/domain';
import { statusClass, type Metrics } from '@hookline/metrics';
import type { DeliverJobData } from '@hookline/queue';
import { createDeliveryStore, type Announced, type AttemptRecord, type DeliveryRef, type LoadedDelivery, type Notice, type Recorded } from './delivery-store';
import type { EndpointGate, Lease } from './endpoint-gate';
import type { LocalLine } from './local-line';
import type { Sender, SendResult } from './sender';
import { annotate, ATTR, inSpan } from '@hookline/telemetry';
import { inAttemptSpan } from './attempt-span';

// The delivery processor, in named phases that read top to bottom:
//   load → admit (final? due? webhook live? documents first? circuit?) → take
//   a slot → send → free the slot → record → apply the webhook's change
//   (failing, disabled, circuit) → observe.
// It knows nothing of BullMQ: it returns what should happen to the job next
// (`next`), and worker.ts carries that out.
//
// Ordered job callbacks: an extraction.job_completed waits (held, no attempt)
// while a document callback of its extraction to the same webhook has not
// ended; the document callback that ends wakes it (`promote`), and its own
// delay brings it back if that wake-up is missed.
//
// Operational events: the transitions that announce themselves (webhook
// failing, disabled by the service, a delivery ending failed) write their
// event in the transition's own transaction (delivery-store.ts), and its
// deliveries are queued right after (`enqueue`). A delivery of an operational
// event announces nothing, so they never beget each other; it may still mark
// its webhook failing, and the webhook's next failed ordinary delivery then
// announces that spell (once: `failing_announced`).

export type DeliverConfig = Pick<
  WorkerEnv,
  | 'WEBHOOK_BRAND' | 'RETRY_SCHEDULE' | 'RETRY_JITTER' | 'AUTO_DISABLE_AFTER' | 'DELIVERY_TIMEOUT'
  | 'ENDPOINT_CONCURRENCY' | 'CIRCUIT_BREAKER_THRESHOLD' | 'CIRCUIT_BREAKER_COOLDOWN'
> & Partial<Pick<WorkerEnv, 'DELIVERY_PROXY_RETRY'>>;

export type DeliverDeps = {
  db: Db;
  sender: Sender;
  gate: EndpointGate;
  /** Where a delivery to a fast webhook waits for a slot instead of being parked (none: always parked). */
  line?: LocalLine;
  secretBox: SecretBox;
  logger: Logger;
  metrics: Metrics;
  config: DeliverConfig;
  /** Queues the deliveries of an operational event just written (none: the relay finds them after RELAY_GRACE). */
  enqueue?: (deliveries: DeliveryRef[]) => Promise<void>;
  /** Brings a delayed job of the webhook back at once; false when it is not delayed (none: held job callbacks wait out their delay). */
  promote?: (jobId: string, webhookId: string) => Promise<boolean>;
  /**
   * Recording an attempt failed (it is tried again): whether PostgreSQL or
   * Redis is down (an outage, logged once elsewhere) rather than something
   * this delivery should log itself. None: always logged here.
   */
  isOutage?: (err: unknown) => Promise<boolean>;
  /** First and largest wait between two tries of recording one attempt (default 200 ms, 5 s). */
  recordRetryMs?: { first: number; max: number };
};

/** A job to run: its payload, plus the BullMQ job's id and age (for the webhook's line of held deliveries). */
export type DeliverJob = DeliverJobData & { jobId?: string; enqueuedAt?: number };

export type DeliverOutcome =
  /** no such delivery row */
  | 'missing'
  /** already final: nothing to do (a job that ran twice) */
  | 'skipped'
  | 'cancelled'
  /** held back without an attempt: over the webhook's in-flight cap or rate, behind its open circuit, or not due yet */
  | 'held'
  | 'succeeded'
  | 'failed'
  /** failed, another attempt is scheduled */
  | 'retrying'
  /** a once-job failed; the delivery keeps waiting for its own scheduled attempt */
  | 'attempt_failed';

/** What becomes of the job. */
export type Next =
  | { kind: 'done' }
  /** a scheduled retry, `delayMs` from now (a BullMQ retry through the backoff strategy) */
  | { kind: 'retry'; delayMs: number }
  /** final: this job tries no more */
  | { kind: 'stop'; reason: string }
  /**
   * back to the queue without an attempt, `delayMs` from now at the latest;
   * `park` puts it in its webhook's line, to be woken when a slot frees
   */
  | { kind: 'later'; delayMs: number; park?: { webhookId: string; reason: HoldReason; cap: number; since: number } };

export type DeliverResult = { outcome: DeliverOutcome; attemptId?: string; attemptNumber?: number; delayMs?: number; next: Next };

const MAX_RECORD_TRIES = 5;
const RECORD_RETRY_MS = { first: 200, max: 5_000 };
/** A slot is handed on before its renewal is answered only while its lease outlives one more attempt by this much. */
const HAND_OVER_MARGIN_MS = 5_000;
/** BullMQ fires a delayed job at or after its time; less than this early is clock skew between workers, not worth a round trip. */
const EARLY_TOLERANCE_MS = 1_000;
/** A probe must report back within the attempt timeout plus this, or another worker may take the probe over. */
const PROBE_MARGIN_MS = 5_000;
/**
 * A held job callback looks again on its own this long after its last waiting
 * document callback is due (plus one attempt's timeout), in case the wake-up
 * is missed; never later than MAX_ORDER_HOLD_MS from now.
 */
const ORDER_MARGIN_MS = 1_000;
const MAX_ORDER_HOLD_MS = 5 * 60_000;

const JOB_COMPLETED = 'extraction.job_completed';
const DOCUMENT_COMPLETED = 'extraction.document_completed';
const isOperational = (event: string) => (OPERATIONAL_EVENT_NAMES as readonly string[]).includes(event);
/** The extraction an extraction event is about, from its data. */
const extractionOf = (data: unknown): string | null => {
  const id = (data as { extraction_id?: unknown } | null)?.extraction_id;
  return typeof id === 'string' ? id : null;
};

const DONE: Next = { kind: 'done' };
/** DELIVERY_PROXY_RETRY when the config leaves it out. */
const DEFAULT_PROXY_RETRY_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The host of a URL, for logs: never the path or query string, which may carry tokens. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}

export function createDeliverer(deps: DeliverDeps) {
  const { db, sender, gate, line, secretBox, logger, metrics, config } = deps;
  const store = createDeliveryStore(db);
  const capOf = (row: LoadedDelivery) => row.max_in_flight ?? config.ENDPOINT_CONCURRENCY;

  /** After commit: queue an operational event's deliveries (a failure leaves them to the relay). */
  async function announce(what: Notice['event'], deliveries: DeliveryRef[]): Promise<void> {
    if (deliveries.length === 0) return;
    metrics.deliveriesCreated.inc(deliveries.length);
    try {
      await deps.enqueue?.(deliveries);
    } catch (err) {
      metrics.enqueueFailures.inc(deliveries.length);
      logger.warn('could not queue an operational event; the relay will', { event: what, deliveries: deliveries.length, err: (err as Error).message });
    }
  }

  /** Wakes job callbacks held for the document callback that just ended. */
  async function wakeJobCallbacks(row: LoadedDelivery, deliveryIds: string[]): Promise<void> {
    if (deliveryIds.length === 0 || !deps.promote) return;
    const promote = deps.promote;
    await Promise.all(deliveryIds.map((id) => promote(id, row.webhook_id).catch((err: Error) => {
      logger.warn('could not wake a held job callback; it comes back on its own', { delivery_id: id, webhook_id: row.webhook_id, err: err.message });
      return false;
    })));
  }

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

  /** A webhook's custom headers, reserved names dropped (by ciphertext, like the secrets: a change is a new ciphertext). */
  const headersByCipher = new Map<string, CustomHeaders>();
  function customHeaders(stored: string | null): CustomHeaders {
    if (stored === null) return {};
    const hit = headersByCipher.get(stored);
    if (hit !== undefined) return hit;
    const headers = sendableCustomHeaders(openCustomHeaders({ decrypt }, stored), config.WEBHOOK_BRAND);
    if (headersByCipher.size >= 10_000) headersByCipher.clear();
    headersByCipher.set(stored, headers);
    return headers;
  }

  function buildHeaders(row: LoadedDelivery, body: string): Record<string, string> {
    const brand = config.WEBHOOK_BRAND;
    const secrets = [decrypt(row.signing_secret_enc)];
    if (row.previous_secret_enc && row.previous_valid) secrets.push(decrypt(row.previous_secret_enc));
    // User-Agent is set by the sender (one value for every callback). Custom
    // headers first: none can name a header below (the API refuses such names
    // and customHeaders drops them), and Hookline's own come last regardless.
    const headers: Record<string, string> = {
      ...customHeaders(row.custom_headers_enc),
      'Content-Type': 'application/json',
      [`X-${brand}-Event`]: row.event,
      [`X-${brand}-Delivery`]: row.id,
      ...signatureHeaders({ brand, secrets, deliveryId: row.id, timestampSeconds: Math.floor(Date.now() / 1000), body }),
    };
    if (row.static_secret_enc) headers['X-Webhook-Secret'] = decrypt(row.static_secret_enc);
    return headers;
  }

  // ── admit ────────────────────────────────────────────────────────────────

  /** Held back: no attempt, nothing written; the job comes back later (and, parked, when a slot frees). */
  function hold(row: LoadedDelivery, job: DeliverJob, reason: HoldReason, delayMs: number): DeliverResult {
    const park = job.jobId ? { webhookId: row.webhook_id, reason, cap: capOf(row), since: job.enqueuedAt ?? Date.now() } : undefined;
    metrics.held.inc({ reason });
    return { outcome: 'held', next: { kind: 'later', delayMs: Math.max(Math.round(delayMs), 1), ...(park ? { park } : {}) } };
  }

  async function cancel(row: LoadedDelivery, reason: string): Promise<DeliverResult> {
    if (await store.cancel(row.id, new Date())) {
      metrics.deliveries.inc({ outcome: 'cancelled' });
      logger.info('delivery cancelled', { delivery_id: row.id, webhook_id: row.webhook_id, reason });
    }
    return { outcome: 'cancelled', next: DONE };
  }

  /**
   * The circuit's word on a scheduled attempt: go ahead (closed), go ahead as
   * the one probe (cooldown over, and this job won the probe), or wait.
   * Explicit user actions (test sends, manual retries) are not held by it.
   */
  async function circuitAdmission(row: LoadedDelivery, job: DeliverJob, now: number): Promise<{ probe: boolean } | DeliverResult> {
    if (row.circuit === 'closed' || job.once || row.test) return { probe: false };
    const spread = Math.floor(Math.random() * 1_000);
    const retryAt = row.circuit_retry_at?.getTime() ?? 0;
    if (retryAt > now) return hold(row, job, 'circuit', circuitHoldMs(retryAt, now, spread));
    const deadline = now + config.DELIVERY_TIMEOUT + PROBE_MARGIN_MS;
    if (await store.claimProbe(row.webhook_id, new Date(deadline), new Date(now))) {
      // The claim is this worker's: if it dies, the others take it back within seconds (endpoint-gate.ts).
      await gate.probeClaimed({ webhookId: row.webhook_id, deadline }).catch((err: Error) => {
        logger.warn('could not record the probe claim in Redis; it ends at its deadline', { webhook_id: row.webhook_id, err: err.message });
      });
      metrics.circuitTransitions.inc({ to: 'half_open' });
      logger.info('circuit half-open: sending one probe', { webhook_id: row.webhook_id, delivery_id: row.id });
      return { probe: true };
    }
    // Another worker carries the probe: wait for its answer.
    return hold(row, job, 'circuit', circuitHoldMs(deadline, now, spread));
  }

  /**
   * A job callback waits while a document callback of its extraction to the
   * same webhook has not ended (succeeded, failed or cancelled): held, no
   * attempt, no slot, the circuit untouched. Test sends and manual retries are
   * never held. Every document callback ends (its retries are bounded; a
   * paused, disabled or deleted webhook's are cancelled), so this cannot wait
   * forever: at most as long as the slowest document's retries.
   */
  async function documentsFirst(row: LoadedDelivery, job: DeliverJob): Promise<DeliverResult | null> {
    if (row.event !== JOB_COMPLETED || row.test || job.once) return null;
    const extractionId = extractionOf(row.data);
    if (extractionId === null) return null;
    const { waiting, latest } = await store.waitingDocuments(extractionId, row.webhook_id);
    if (waiting === 0) return null;
    const now = Date.now();
    const dueInMs = latest ? Math.max(latest.getTime() - now, 0) : 0;
    const delayMs = Math.min(dueInMs + config.DELIVERY_TIMEOUT + ORDER_MARGIN_MS, MAX_ORDER_HOLD_MS);
    metrics.held.inc({ reason: 'documents' });
    logger.debug('job callback held until its documents\' callbacks end', { delivery_id: row.id, webhook_id: row.webhook_id, waiting, delay_ms: delayMs });
    return { outcome: 'held', next: { kind: 'later', delayMs } };
  }

  /** Whether this job may attempt now; a DeliverResult when it may not. */
  async function admit(row: LoadedDelivery, job: DeliverJob): Promise<{ probe: boolean } | DeliverResult> {
    const once = job.once === true;
    if (isFinal(row.status) && !once) return { outcome: 'skipped', next: DONE };
    // A scheduled retry runs only when due. Its job can run early when the
    // worker died (or lost Redis) after recording the attempt but before BullMQ
    // delayed the job: stalled recovery then runs it at once. Wait for the turn.
    const earlyMs = row.status === 'pending_retry' && row.next_attempt_at ? row.next_attempt_at.getTime() - Date.now() : 0;
    if (!once && earlyMs > EARLY_TOLERANCE_MS) return { outcome: 'held', next: { kind: 'later', delayMs: earlyMs } };
    if (row.deleted) return cancel(row, 'webhook_deleted');
    // Explicit user actions (a test send, a manual retry) still reach a paused webhook.
    if ((!row.is_active || row.disabled_reason) && !once && !row.test) return cancel(row, row.disabled_reason ? 'webhook_disabled' : 'webhook_paused');
    const held = await documentsFirst(row, job);
    if (held) return held;
    return circuitAdmission(row, job, Date.now());
  }

  /** A slot under the webhook's in-flight cap and rate limit (and its failure count), or a hold. */
  async function takeSlot(row: LoadedDelivery, job: DeliverJob, probe: boolean): Promise<Lease | DeliverResult> {
    const cap = capOf(row);
    const exempt = probe || job.once === true || row.test;
    const request = {
      webhookId: row.webhook_id, jobId: job.jobId ?? row.id, cap, ratePerSecond: row.rate_limit_per_second,
      circuitThreshold: exempt ? 0 : config.CIRCUIT_BREAKER_THRESHOLD,
    };
    const startedAt = Date.now();
    let got = await gate.acquire(request);
    // Every slot busy at a fast webhook: one frees in moments, so wait for it here (see local-line.ts).
    while (!got.ok && got.reason === 'in_flight' && line) {
      const waited = await line.wait(row.webhook_id, startedAt);
      if (waited === 'park') break;
      if (waited !== 'freed') return waited.lease;
      got = await gate.acquire(request);
    }
    if (got.ok) return got.lease;
    if (got.reason === 'rate') return hold(row, job, 'rate', rateHoldMs(got.rank, row.rate_limit_per_second ?? 1, got.waitMs));
    if (got.reason === 'in_flight') return hold(row, job, 'in_flight', inFlightHoldMs(got.rank, cap, config.DELIVERY_TIMEOUT));
    // The failures crossed the threshold but the circuit's state has not reached
    // this row (another worker is writing it, or that write failed): make sure
    // it is open, so a probe follows at the end of the cooldown.
    const now = Date.now();
    const retryAt = now + config.CIRCUIT_BREAKER_COOLDOWN;
    if (await store.openCircuit(row.webhook_id, new Date(retryAt), config.CIRCUIT_BREAKER_COOLDOWN, new Date(now))) {
      metrics.circuitTransitions.inc({ to: 'open' });
      logger.warn('circuit open: holding this webhook\'s deliveries', { webhook_id: row.webhook_id, cooldown_ms: config.CIRCUIT_BREAKER_COOLDOWN, host: hostOf(row.url) });
    }
    return hold(row, job, 'circuit', circuitHoldMs(retryAt, now, Math.floor(Math.random() * 1_000)));
  }

  // ── send ─────────────────────────────────────────────────────────────────

  function send(row: LoadedDelivery): Promise<SendResult> {
    const body = callbackBody({ id: row.event_id, event: row.event, createdAt: row.event_created_at, test: row.test, data: row.data });
    return sender.send({ url: row.url, headers: buildHeaders(row, body), body, deliveryId: row.id, event: row.event });
  }

  /** Frees the slot; resolves to the webhook's consecutive circuit failures (null when Redis did not answer). */
  async function freeSlot(row: LoadedDelivery, lease: Lease, result: SendResult): Promise<number | null> {
    line?.observe(row.webhook_id, result.durationMs, lease.id);
    // This slot was handed on to this attempt with its renewal still on its way:
    // a refused renewal (parked deliveries wait for the webhook) sends it back the normal way.
    const kept = lease.renewal ? await lease.renewal : true;
    lease.renewal = undefined;
    // A delivery of this webhook waits here: hand it the slot in place (no
    // release and acquire), unless this attempt counts toward the circuit, the
    // circuit is not closed or the rate is limited (each start must be paced).
    const handable = kept && line?.hasWaiter(row.webhook_id) && !isCircuitFailure(result) && row.circuit === 'closed' && !row.rate_limit_per_second;
    if (handable && lease.expiresAt - Date.now() > config.DELIVERY_TIMEOUT + HAND_OVER_MARGIN_MS) {
      // The lease outlives the next attempt even if its renewal is lost, so the
      // waiter starts at once and the renewal (expiry moved on, failure count
      // reset) runs beside its send: no Redis round trip between two attempts.
      if (line!.handOver(row.webhook_id, lease)) {
        lease.renewal = gate.renew({ webhookId: row.webhook_id, lease }).catch(() => false);
        return 0;
      }
    } else if (handable && (await gate.renew({ webhookId: row.webhook_id, lease }).catch(() => false))) {
      if (line!.handOver(row.webhook_id, lease)) return 0;
      // The waiter left meanwhile (its wait timed out): free the slot after all.
    }
    try {
      return await gate.release({
        webhookId: row.webhook_id,
        lease,
        circuitFailure: circuitCount(result) === 'none' ? 'none' : isCircuitFailure(result),
        // An open circuit's line is woken when it closes, not slot by slot.
        wake: row.circuit === 'closed',
        cap: capOf(row),
        threshold: config.CIRCUIT_BREAKER_THRESHOLD,
      });
    } catch (err) {
      // The lease expires by itself; the attempt must still be recorded.
      logger.warn('could not free an endpoint slot; it expires by itself', { webhook_id: row.webhook_id, err: (err as Error).message });
      return null;
    } finally {
      line?.freed(row.webhook_id);
    }
  }

  /**
   * The egress proxy failed: nothing reached the endpoint, so nothing is held
   * against it — no attempt recorded, no retry used up, no circuit failure, no
   * failing_since. The job comes back after DELIVERY_PROXY_RETRY (± half, so a
   * backlog does not return at once), for as long as the proxy is down.
   */
  function proxyFailed(row: LoadedDelivery, result: SendResult): DeliverResult {
    const reason = result.proxyFailure ?? 'error';
    metrics.proxyFailures.inc({ reason });
    metrics.held.inc({ reason: 'proxy' });
    const base = config.DELIVERY_PROXY_RETRY ?? DEFAULT_PROXY_RETRY_MS;
    const delayMs = Math.max(1, Math.round(base * (0.5 + Math.random())));
    logger.warn('egress proxy failed; the delivery waits for it, not counted against the endpoint', {
      delivery_id: row.id, webhook_id: row.webhook_id, proxy_failure: reason, retry_in_ms: delayMs, host: hostOf(row.url),
    });
    return { outcome: 'held', delayMs, next: { kind: 'later', delayMs } };
  }

  // ── record ───────────────────────────────────────────────────────────────

  /** delivery.exhausted for an attempt that ends a waiting delivery failed; null when there is nothing to announce. */
  function exhaustedNotice(row: LoadedDelivery, previous: string, status: string, attemptNumber: number, result: SendResult): Notice | null {
    // A test send is not a delivery of an event, and an operational event's delivery announces nothing.
    if (status !== 'failed' || !isWaiting(previous) || row.test || isOperational(row.event)) return null;
    return {
      accountId: row.account_id,
      aboutWebhookId: row.webhook_id,
      event: 'delivery.exhausted',
      data: {
        delivery_id: row.id, webhook_id: row.webhook_id, event_id: row.event_id, event: row.event as EventName, attempt_count: attemptNumber,
        last_error: result.error, last_response_status: result.status,
      },
    };
  }

  /**
   * Runs a statement of the record phase until it succeeds. The callback was
   * sent and answered: its outcome is kept in this process and written once
   * PostgreSQL takes it, however long that is; giving up would let BullMQ
   * retry the job and send the callback again. The job stays active
   * meanwhile (BullMQ keeps renewing its lock), so no other worker takes it
   * over: only this process dying can cause a second send.
   */
  async function untilWritten<T>(row: LoadedDelivery, work: () => Promise<T>): Promise<T> {
    const waits = deps.recordRetryMs ?? RECORD_RETRY_MS;
    let logged = false;
    for (let wait = waits.first; ; wait = Math.min(wait * 2, waits.max)) {
      try {
        const value = await work();
        if (logged) logger.info('attempt recorded after all', { delivery_id: row.id, webhook_id: row.webhook_id });
        return value;
      } catch (err) {
        // An outage is logged once for every job it holds (outage.ts); anything else, once per delivery.
        if (!logged && !(await deps.isOutage?.(err).catch(() => false))) {
          logger.warn('could not record an attempt; its outcome is kept and recording is retried', { delivery_id: row.id, webhook_id: row.webhook_id, err: (err as Error).message });
          logged = true;
        }
        await sleep(wait);
      }
    }
  }

  /** Records the attempt; returns the decision taken, the attempt's id and number, and the held job callbacks it releases. */
  async function record(row: LoadedDelivery, result: SendResult, once: boolean) {
    let current = { status: row.status, attemptCount: row.attempt_count };
    // One id for every try: a try that committed although its call failed (the
    // answer lost with the connection) is found by it, not recorded again (the
    // guard on the attempt count refuses the repeat; `current` then finds the id).
    const attemptId = newId('attempt');
    for (let tries = 0; tries < MAX_RECORD_TRIES; tries += 1) {
      const now = Date.now();
      const attemptNumber = current.attemptCount + 1;
      const decision = decideAfterAttempt(
        {
          status: current.status, attemptNumber, test: row.test, once, retryEnabled: row.retry_enabled, maxRetries: row.max_retries,
          failing: row.failing_since !== null, schedule: config.RETRY_SCHEDULE, jitter: config.RETRY_JITTER, now,
        },
        result,
      );
      const ends = isWaiting(current.status) && isFinal(decision.deliveryStatus);
      const item: AttemptRecord = {
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
        wakeExtraction: ends && row.event === DOCUMENT_COMPLETED ? extractionOf(row.data) : null,
      };
      const notice = exhaustedNotice(row, current.status, decision.deliveryStatus, attemptNumber, result);
      const recorded = await untilWritten(row, (): Promise<(Recorded & Partial<Announced>) | null> => (notice ? store.recordExhausted(item, notice) : store.record(item)));
      if (recorded) return { decision, attemptId, attemptNumber, now, wake: recorded.wake, announced: recorded.deliveries ?? [] };
      // Another run recorded an attempt since we loaded the row (or this one did, unanswered): decide again on its count.
      const fresh = await untilWritten(row, () => store.current(row.id, attemptId));
      if (!fresh) throw new Error(`delivery ${row.id} vanished while recording an attempt`);
      // Only a try of this decision (same count, same attempt id) can have committed unanswered: its decision stands.
      // (What it released is not known: held job callbacks then come back on their own delay.)
      if (fresh.mine !== null) return { decision, attemptId, attemptNumber: fresh.mine, now, wake: [] as string[], announced: [] as DeliveryRef[] };
      current = { status: fresh.status, attemptCount: fresh.attempt_count };
    }
    throw new Error(`could not record an attempt of ${row.id}: its attempt count kept changing`);
  }

  // ── apply the webhook's change ───────────────────────────────────────────

  /**
   * failing_since, 410 and auto-disable; resolves to why the webhook was
   * disabled, if it was. Each transition this worker wins is announced to the
   * account's other webhooks (unless this is an operational event's delivery).
   */
  async function applyWebhookChange(row: LoadedDelivery, change: Decision['webhookChange'], now: number, result: SendResult): Promise<string | null> {
    const at = new Date(now);
    if (change === 'clear_failing') {
      await store.clearFailing(row.webhook_id, at);
      return null;
    }
    const announces = !isOperational(row.event);
    const about = { accountId: row.account_id, aboutWebhookId: row.webhook_id };
    const disabled = (reason: 'gone' | 'failing_too_long'): Notice | null =>
      announces ? { ...about, event: 'webhook.disabled', data: { webhook_id: row.webhook_id, url: row.url, reason } } : null;
    if (change === 'gone') {
      const gone = await store.disableGone(row.webhook_id, at, disabled('gone'));
      await announce('webhook.disabled', gone.deliveries);
      return gone.won ? 'gone' : null;
    }
    if (change !== 'failing') return null;
    let failingSince = row.failing_since;
    // A failing spell is announced once, by an ordinary delivery's failure,
    // whichever kind of delivery began it (an operational one sets
    // failing_since silently: see markFailing).
    if (!failingSince || (announces && !row.failing_announced)) {
      const failing = announces
        ? (since: Date): Notice => ({
          ...about, event: 'webhook.failing', data: { webhook_id: row.webhook_id, url: row.url, failing_since: since.toISOString(), last_error: result.error, last_response_status: result.status },
        })
        : null;
      const marked = await store.markFailing(row.webhook_id, at, failing);
      await announce('webhook.failing', marked.deliveries);
      failingSince = marked.failingSince;
    }
    if (row.disabled_reason || now - failingSince.getTime() < config.AUTO_DISABLE_AFTER) return null;
    // Still failing (a success in between would have cleared failing_since) and long enough: disable.
    const tooLong = await store.disableFailingTooLong(row.webhook_id, at, disabled('failing_too_long'));
    await announce('webhook.disabled', tooLong.deliveries);
    return tooLong.won ? 'failing_too_long' : null;
  }

  /** Opens, reopens or closes the circuit as this attempt says; wakes the held line when it closes. */
  async function applyCircuit(row: LoadedDelivery, probe: boolean, failures: number | null, result: SendResult, now: number): Promise<string | null> {
    const move = circuitAfterAttempt({
      circuit: row.circuit, probe, consecutiveFailures: failures ?? 0, threshold: config.CIRCUIT_BREAKER_THRESHOLD, result,
    });
    const at = new Date(now);
    if (move === 'open' || move === 'reopen') {
      const cooldownMs = move === 'open' ? config.CIRCUIT_BREAKER_COOLDOWN : nextCircuitCooldown(row.circuit_cooldown_ms, config.CIRCUIT_BREAKER_COOLDOWN);
      const retryAt = new Date(now + cooldownMs);
      const done = move === 'open'
        ? await store.openCircuit(row.webhook_id, retryAt, cooldownMs, at)
        : await store.reopenCircuit(row.webhook_id, retryAt, cooldownMs, at);
      if (!done) return null;
      metrics.circuitTransitions.inc({ to: 'open' });
      logger.warn('circuit open: holding this webhook\'s deliveries', {
        webhook_id: row.webhook_id, consecutive_failures: failures, cooldown_ms: cooldownMs, retry_at: retryAt.toISOString(), host: hostOf(row.url),
      });
      return move;
    }
    if (move !== 'close' || !(await store.closeCircuit(row.webhook_id, at))) return null;
    metrics.circuitTransitions.inc({ to: 'closed' });
    logger.info('circuit closed: held deliveries flow again', { webhook_id: row.webhook_id, host: hostOf(row.url) });
    await gate.resetFailures(row.webhook_id);
    await gate.wakeAll({ webhookId: row.webhook_id, cap: capOf(row) });
    return 'close';
  }

  // ── the job ──────────────────────────────────────────────────────────────

  /** Runs one job and says what becomes of it (worker.ts carries that out). */
  async function deliver(job: DeliverJob): Promise<DeliverResult> {
    const row = await store.load(job.deliveryId);
    if (!row) {
      logger.warn('delivery not found; job dropped', { delivery_id: job.deliveryId });
      return { outcome: 'missing', next: DONE };
    }
    annotate({ [ATTR.webhookId]: row.webhook_id, [ATTR.eventId]: row.event_id });
    const admitted = await admit(row, job);
    if ('outcome' in admitted) return admitted;
    if (!admitted.probe) return attempt(row, job, admitted);
    try {
      return await attempt(row, job, admitted);
    } finally {
      await gate.probeEnded(row.webhook_id).catch(() => undefined);
    }
  }

  /** take a slot → send → free the slot → record → apply the webhook's change → observe. */
  async function attempt(row: LoadedDelivery, job: DeliverJob, admitted: { probe: boolean }): Promise<DeliverResult> {
    const once = job.once === true;
    const lease = await inSpan('hookline.gate', () => takeSlot(row, job, admitted.probe));
    if ('outcome' in lease) return lease;

    line?.started(row.webhook_id, lease.id);
    const result = await send(row);
    const failures = await freeSlot(row, lease, result);
    // A test send is answered with its one attempt, so a proxy failure is recorded for it (as failed, error
    // proxy_error; a test changes no webhook state); any other delivery waits for the proxy instead.
    if (isProxyFailure(result) && !row.test) return proxyFailed(row, result);
    const { decision, attemptId, attemptNumber, now, wake, announced } = await record(row, result, once);
    annotate({ [ATTR.attempt]: attemptNumber });
    // The attempt is recorded: a hiccup on the webhook row (or Redis) must not make BullMQ run (and send) it again.
    const quietly = <T>(what: string, work: () => Promise<T>) =>
      work().catch((err: Error) => {
        logger.error(`could not ${what} after an attempt`, { webhook_id: row.webhook_id, err: err.message });
        return null;
      });
    const [disabled, circuit] = await Promise.all([
      quietly('update the webhook state', () => applyWebhookChange(row, decision.webhookChange, now, result)),
      quietly('update the circuit', () => applyCircuit(row, admitted.probe, failures, result, now)),
      quietly('queue a delivery.exhausted event', () => announce('delivery.exhausted', announced)),
      quietly('wake a held job callback', () => wakeJobCallbacks(row, wake)),
    ]);

    const attemptOutcome = result.ok ? 'succeeded' : 'failed';
    metrics.attempts.inc({ outcome: attemptOutcome, status_class: statusClass(result.status), error: result.error ?? 'none' });
    metrics.attemptDuration.observe({ outcome: attemptOutcome }, result.durationMs / 1000);
    if (decision.deliveryStatus === 'succeeded' || decision.deliveryStatus === 'failed') metrics.deliveries.inc({ outcome: decision.deliveryStatus });
    if (result.ok) metrics.deliveryLatency.observe(Math.max(0, now - row.event_created_at.getTime()) / 1000);
    if (logger.isInfoEnabled()) logger.info('delivery attempt', {
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
      ...(admitted.probe ? { probe: true } : {}),
      ...(circuit ? { circuit } : {}),
    });

    const base = { outcome: decision.outcome, attemptId, attemptNumber, ...(decision.delayMs !== null ? { delayMs: decision.delayMs } : {}) };
    if (decision.outcome === 'retrying') return { ...base, next: { kind: 'retry', delayMs: decision.delayMs! } };
    if (decision.outcome === 'failed' || decision.outcome === 'attempt_failed') {
      return { ...base, next: { kind: 'stop', reason: `attempt ${attemptNumber} failed (${result.error ?? result.status}); no further retry from this job` } };
    }
    return { ...base, next: DONE };
  }

  return { deliver: (job: DeliverJob) => inAttemptSpan(job, () => deliver(job)) };
}

export type Deliverer = ReturnType<typeof createDeliverer>;
