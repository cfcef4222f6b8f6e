import type { Db } from '@hookline/db';
import { isProxyFailure, isWaiting, withinOrNull, type SecretBox } from '@hookline/domain';
import { statusClass } from '@hookline/metrics';
import { annotate, ATTR, inSpan } from '@hookline/telemetry';
import { inAttemptSpan } from './attempt-span';
import { createDeliveryStore, type LoadedDelivery } from './delivery-store';
import { admit } from './deliver/admission';
import { DONE, hostOf, type DeliverContext, type DeliverJob, type DeliverResult, type DeliveryStorePort, type KnownOutcome } from './deliver/context';
import type { SendResult } from './sender';
import { announce, applyCircuit, applyWebhookChange, record, RECORD_RETRY_MS, wakeJobCallbacks } from './deliver/record';
import { createSecretCache, proxyFailed, send } from './deliver/send';
import { freeSlot, takeSlot } from './deliver/slots';

export type { DeliverConfig, DeliverContext, DeliverJob, DeliverOutcome, DeliverResult, DeliveryStorePort, KnownOutcome, Next, OutcomeJournal } from './deliver/context';

// The delivery processor, in named phases that read top to bottom:
//   load → (an attempt a stopped run of this job sent and kept in its outcome
//   journal: record it, no send) → admit (final? due? webhook live? documents
//   first? circuit?) → take a slot → send → free the slot and record, together
//   → apply the webhook's change (failing, disabled, circuit) → observe.
// Each phase is a module function over an explicit context (deliver/context.ts),
// in the file that holds its rules: admission.ts (admit, hold, cancel, the
// circuit's word, documents first), slots.ts (take, free and hand over a slot;
// the rule that protects a lease), send.ts (headers, body, the request, the
// proxy's failure), record.ts (the attempt written once, the webhook's change,
// the operational events). This file composes them.
// It knows nothing of BullMQ: it returns what should happen to the job next
// (`next`), and run-job.ts carries that out.

/** How long a run waits for its outcome journal (Redis failing over, say) before it goes on without it. */
const JOURNAL_READ_MS = 2_000;

/** The deliverer's dependencies: the context's, with the store built from `db` (or given: a test's fake) and the secrets' cache from `secretBox`. */
export type DeliverDeps = Omit<DeliverContext, 'store' | 'secrets' | 'recordRetryMs'> & {
  secretBox: SecretBox;
  /** First and largest wait between two tries of recording one attempt (default 200 ms, 5 s). */
  recordRetryMs?: DeliverContext['recordRetryMs'];
} & ({ db: Db; store?: undefined } | { store: DeliveryStorePort; db?: undefined });

/** The context every phase runs over, from the deliverer's dependencies. */
export function deliverContext(deps: DeliverDeps): DeliverContext {
  const { db, store, secretBox, recordRetryMs, ...rest } = deps;
  return {
    ...rest,
    store: store ?? createDeliveryStore(db),
    secrets: createSecretCache(secretBox, rest.config.WEBHOOK_BRAND),
    recordRetryMs: recordRetryMs ?? RECORD_RETRY_MS,
  };
}

/** Runs one job and says what becomes of it (run-job.ts carries that out). */
export async function deliver(ctx: DeliverContext, job: DeliverJob): Promise<DeliverResult> {
  const row = await ctx.store.load(job.deliveryId);
  if (!row) {
    ctx.logger.warn('delivery not found; job dropped', { delivery_id: job.deliveryId });
    return { outcome: 'missing', next: DONE };
  }
  annotate({ [ATTR.webhookId]: row.webhook_id, [ATTR.eventId]: row.event_id });
  // A job run before (its worker died, or Redis gave it back): an attempt that
  // run sent and could not record is recorded now, not sent again.
  const known = job.journal?.find ? await withinOrNull(job.journal.find(), JOURNAL_READ_MS) : null;
  if (known) {
    if (isWaiting(row.status) && row.attempt_count === known.attemptCount) return recordKnown(ctx, row, job, known);
    // Recorded after all (the row moved on): nothing left to keep.
    void job.journal!.forget().catch(() => undefined);
  }
  const admitted = await admit(ctx, row, job);
  if ('outcome' in admitted) return admitted;
  if (!admitted.probe) return attempt(ctx, row, job, admitted);
  try {
    return await attempt(ctx, row, job, admitted);
  } finally {
    await ctx.gate.probeEnded(row.webhook_id).catch(() => undefined);
  }
}

/** take a slot → send → free the slot and record (together) → apply the webhook's change → observe. */
async function attempt(ctx: DeliverContext, row: LoadedDelivery, job: DeliverJob, admitted: { probe: boolean }): Promise<DeliverResult> {
  const { line } = ctx;
  const lease = await inSpan('hookline.gate', () => takeSlot(ctx, row, job, admitted.probe));
  if ('outcome' in lease) return lease;

  line?.started(row.webhook_id, lease.id);
  const result = await send(ctx, row);
  // A test send is answered with its one attempt, so a proxy failure is recorded for it (as failed, error
  // proxy_error; a test changes no webhook state); any other delivery waits for the proxy instead.
  if (isProxyFailure(result) && !row.test) {
    await freeSlot(ctx, row, lease, result);
    return proxyFailed(ctx, row, result);
  }
  // The slot is freed while the attempt is recorded: a Redis that is slow or
  // reconnecting must not keep an answered attempt unrecorded (a worker dying
  // then would send it again), nor PostgreSQL the slot from the next delivery.
  const [failures, written] = await Promise.all([
    freeSlot(ctx, row, lease, result),
    record(ctx, row, result, job.once === true, { journal: job.journal }),
  ]);
  return finish(ctx, row, admitted, result, failures, written);
}

/** An attempt an earlier run of this job sent, found in the outcome journal: recorded, not sent again. */
async function recordKnown(ctx: DeliverContext, row: LoadedDelivery, job: DeliverJob, known: KnownOutcome): Promise<DeliverResult> {
  const result: SendResult = { ...known.result };
  const written = await record(ctx, row, result, job.once === true, { attemptId: known.attemptId, journal: job.journal });
  ctx.metrics.outcomeJournal.inc({ event: 'recorded' });
  ctx.logger.info('an attempt a stopped run sent was recorded from its outcome journal, not sent again', { delivery_id: row.id, webhook_id: row.webhook_id, attempt_id: known.attemptId });
  // Its slot went with that run (a dead worker's leases are taken back); the circuit counts no failure twice.
  return finish(ctx, row, { probe: false }, result, null, written);
}

/** After the record: apply the webhook's change → observe → say what becomes of the job. */
async function finish(
  ctx: DeliverContext, row: LoadedDelivery, admitted: { probe: boolean }, result: SendResult, failures: number | null, written: Awaited<ReturnType<typeof record>>,
): Promise<DeliverResult> {
  const { logger, metrics } = ctx;
  const { decision, attemptId, attemptNumber, now, wake, announced } = written;
  annotate({ [ATTR.attempt]: attemptNumber });
  // The attempt is recorded: a hiccup on the webhook row (or Redis) must not make BullMQ run (and send) it again.
  const quietly = <T>(what: string, work: () => Promise<T>) =>
    work().catch((err: Error) => {
      logger.error(`could not ${what} after an attempt`, { webhook_id: row.webhook_id, err: err.message });
      return null;
    });
  const [disabled, circuit] = await Promise.all([
    quietly('update the webhook state', () => applyWebhookChange(ctx, row, decision.webhookChange, now, result)),
    quietly('update the circuit', () => applyCircuit(ctx, row, admitted.probe, failures, result, now)),
    quietly('queue a delivery.exhausted event', () => announce(ctx, 'delivery.exhausted', announced)),
    quietly('wake a held job callback', () => wakeJobCallbacks(ctx, row, wake)),
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

/** The processor: one context for the worker's life, and `deliver(job)` run in the job's attempt span. */
export function createDeliverer(deps: DeliverDeps) {
  const ctx = deliverContext(deps);
  return { deliver: (job: DeliverJob) => inAttemptSpan(job, () => deliver(ctx, job)) };
}

export type Deliverer = ReturnType<typeof createDeliverer>;
