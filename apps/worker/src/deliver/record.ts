import {
  circuitAfterAttempt, decideAfterAttempt, isFinal, isWaiting, newId, nextCircuitCooldown, type Decision, type EventName,
} from '@hookline/domain';
import type { Announced, AttemptRecord, DeliveryRef, LoadedDelivery, Notice, Recorded } from '../delivery-store';
import type { SendResult } from '../sender';
import { capOf, DOCUMENT_COMPLETED, extractionOf, hostOf, isOperational, type DeliverContext, type OutcomeJournal } from './context';

// Record: the attempt and the delivery's new state, written once whatever it
// takes; then the webhook's change (failing, disabled, circuit) and the
// operational events it announces.
//
// Operational events: the transitions that announce themselves (webhook
// failing, disabled by the service, a delivery ending failed) write their
// event in the transition's own transaction (delivery-store.ts), and its
// deliveries are queued right after (`announce`). A delivery of an operational
// event announces nothing, so they never beget each other; it may still mark
// its webhook failing, and the webhook's next failed ordinary delivery then
// announces that spell (once: `failing_announced`).

const MAX_RECORD_TRIES = 5;
/**
 * An answered attempt not recorded this long after the answer (PostgreSQL
 * busy, a batch queued behind others) is kept in the outcome journal too: a
 * worker dying then does not make it go out twice. A healthy record takes a
 * few milliseconds, so the usual path writes nothing to Redis.
 */
export const JOURNAL_AFTER_MS = 50;
/** DeliverDeps.recordRetryMs when left out. */
export const RECORD_RETRY_MS = { first: 200, max: 5_000 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** After commit: queue an operational event's deliveries (a failure leaves them to the relay). */
export async function announce(ctx: DeliverContext, what: Notice['event'], deliveries: DeliveryRef[]): Promise<void> {
  if (deliveries.length === 0) return;
  ctx.metrics.deliveriesCreated.inc(deliveries.length);
  try {
    await ctx.enqueue?.(deliveries);
  } catch (err) {
    ctx.metrics.enqueueFailures.inc(deliveries.length);
    ctx.logger.warn('could not queue an operational event; the relay will', { event: what, deliveries: deliveries.length, err: (err as Error).message });
  }
}

/** Wakes job callbacks held for the document callback that just ended (admission.ts, documentsFirst). */
export async function wakeJobCallbacks(ctx: DeliverContext, row: LoadedDelivery, deliveryIds: string[]): Promise<void> {
  if (deliveryIds.length === 0 || !ctx.promote) return;
  const promote = ctx.promote;
  await Promise.all(deliveryIds.map((id) => promote(id, row.webhook_id).catch((err: Error) => {
    ctx.logger.warn('could not wake a held job callback; it comes back on its own', { delivery_id: id, webhook_id: row.webhook_id, err: err.message });
    return false;
  })));
}

/** delivery.exhausted for an attempt that ends a waiting delivery failed; null when there is nothing to announce. */
export function exhaustedNotice(row: LoadedDelivery, previous: string, status: string, attemptNumber: number, result: SendResult): Notice | null {
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
 * over: only this process dying can cause a second send, and `onFailure`
 * (the first failure only) lets the caller keep the outcome where the job's
 * next run finds it (the outcome journal), which closes that too.
 * During an outage the back-off is cut short the moment it ends.
 */
export async function untilWritten<T>(ctx: DeliverContext, row: LoadedDelivery, work: () => Promise<T>, onFailure?: () => Promise<void>): Promise<T> {
  const waits = ctx.recordRetryMs;
  let logged = false;
  let failed = false;
  for (let wait = waits.first; ; wait = Math.min(wait * 2, waits.max)) {
    try {
      const value = await work();
      if (logged) ctx.logger.info('attempt recorded after all', { delivery_id: row.id, webhook_id: row.webhook_id });
      return value;
    } catch (err) {
      if (!failed && onFailure) await onFailure().catch(() => undefined);
      failed = true;
      // An outage is logged once for every job it holds (outage.ts); anything else, once per delivery.
      const outage = await ctx.isOutage?.(err).catch(() => false);
      if (!logged && !outage) {
        ctx.logger.warn('could not record an attempt; its outcome is kept and recording is retried', { delivery_id: row.id, webhook_id: row.webhook_id, err: (err as Error).message });
        logged = true;
      }
      await (outage && ctx.outageEnded ? Promise.race([sleep(wait), ctx.outageEnded()]) : sleep(wait));
    }
  }
}

/** What recording an attempt decided: the decision, the attempt's id and number, and the held job callbacks and operational deliveries it releases. */
export type Written = { decision: Decision; attemptId: string; attemptNumber: number; now: number; wake: string[]; announced: DeliveryRef[] };

/**
 * Records the attempt (once, however many tries that takes) and decides what
 * follows. `attemptId`: the id of an attempt a run of this job already sent,
 * found in its outcome journal; `journal`: where the outcome is kept if
 * PostgreSQL does not take it at once (and forgotten once it has).
 */
export async function record(
  ctx: DeliverContext, row: LoadedDelivery, result: SendResult, once: boolean,
  opts: { attemptId?: string; journal?: OutcomeJournal } = {},
): Promise<Written> {
  const current = { status: row.status, attemptCount: row.attempt_count };
  // One id for every try: a try that committed although its call failed (the
  // answer lost with the connection) is found by it, not recorded again (the
  // guard on the attempt count refuses the repeat; `current` then finds the id).
  const attemptId = opts.attemptId ?? newId('attempt');
  const { journal } = opts;
  // Kept once: at the first failed try, or when PostgreSQL is slow to take it (a busy batch), whichever comes first.
  const kept: { writing: Promise<void> | null } = { writing: null };
  const keepFor = (why: 'kept_failed' | 'kept_slow') => {
    kept.writing ??= (async () => {
      const { headers: _headers, ...outcome } = result;
      await journal!.keep({ attemptId, attemptCount: row.attempt_count, result: outcome });
      ctx.metrics.outcomeJournal.inc({ event: why });
    })().catch(() => undefined);
    return kept.writing;
  };
  const keep = journal ? () => keepFor('kept_failed') : undefined;
  const slow = journal ? setTimeout(() => void keepFor('kept_slow'), JOURNAL_AFTER_MS) : undefined;
  try {
    return await recordTries(ctx, row, result, once, attemptId, current, keep);
  } finally {
    clearTimeout(slow);
    // Forgotten once written, in the background: the job ends with its record, never waits on Redis for this.
    if (journal && (kept.writing || opts.attemptId)) {
      const writing = kept.writing;
      void (async () => {
        await writing;
        await journal.forget();
      })().catch(() => undefined);
    }
  }
}

async function recordTries(
  ctx: DeliverContext, row: LoadedDelivery, result: SendResult, once: boolean, attemptId: string,
  current: { status: LoadedDelivery['status']; attemptCount: number }, keep: (() => Promise<void>) | undefined,
): Promise<Written> {
  const { store, config } = ctx;
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
    const recorded = await untilWritten(ctx, row, (): Promise<(Recorded & Partial<Announced>) | null> => (notice ? store.recordExhausted(item, notice) : store.record(item)), keep);
    if (recorded) return { decision, attemptId, attemptNumber, now, wake: recorded.wake, announced: recorded.deliveries ?? [] };
    // Another run recorded an attempt since we loaded the row (or this one did, unanswered): decide again on its count.
    const fresh = await untilWritten(ctx, row, () => store.current(row.id, attemptId), keep);
    if (!fresh) throw new Error(`delivery ${row.id} vanished while recording an attempt`);
    // Only a try of this decision (same count, same attempt id) can have committed unanswered: its decision stands.
    // (What it released is not known: held job callbacks then come back on their own delay.)
    if (fresh.mine !== null) return { decision, attemptId, attemptNumber: fresh.mine, now, wake: [], announced: [] };
    current = { status: fresh.status, attemptCount: fresh.attempt_count };
  }
  throw new Error(`could not record an attempt of ${row.id}: its attempt count kept changing`);
}

/**
 * failing_since, 410 and auto-disable; resolves to why the webhook was
 * disabled, if it was. Each transition this worker wins is announced to the
 * account's other webhooks (unless this is an operational event's delivery).
 */
export async function applyWebhookChange(ctx: DeliverContext, row: LoadedDelivery, change: Decision['webhookChange'], now: number, result: SendResult): Promise<string | null> {
  const { store } = ctx;
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
    await announce(ctx, 'webhook.disabled', gone.deliveries);
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
    await announce(ctx, 'webhook.failing', marked.deliveries);
    failingSince = marked.failingSince;
  }
  if (row.disabled_reason || now - failingSince.getTime() < ctx.config.AUTO_DISABLE_AFTER) return null;
  // Still failing (a success in between would have cleared failing_since) and long enough: disable.
  const tooLong = await store.disableFailingTooLong(row.webhook_id, at, disabled('failing_too_long'));
  await announce(ctx, 'webhook.disabled', tooLong.deliveries);
  return tooLong.won ? 'failing_too_long' : null;
}

/** Opens, reopens or closes the circuit as this attempt says; wakes the held line when it closes. */
export async function applyCircuit(ctx: DeliverContext, row: LoadedDelivery, probe: boolean, failures: number | null, result: SendResult, now: number): Promise<string | null> {
  const { store, gate, config, metrics, logger } = ctx;
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
  await gate.wakeAll({ webhookId: row.webhook_id, cap: capOf(ctx, row) });
  return 'close';
}
