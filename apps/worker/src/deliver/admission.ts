import { circuitHoldMs, isFinal, type HoldReason } from '@hookline/domain';
import type { LoadedDelivery } from '../delivery-store';
import { capOf, DONE, extractionOf, JOB_COMPLETED, type DeliverContext, type DeliverJob, type DeliverResult } from './context';

// Admission: whether a loaded delivery may attempt now (final? due? webhook
// live? documents first? circuit?). What it refuses ends here without an
// attempt: skipped, cancelled, or held (the job comes back later).
//
// Ordered job callbacks: an extraction.job_completed waits (held, no attempt)
// while a document callback of its extraction to the same webhook has not
// ended; the document callback that ends wakes it (record.ts,
// wakeJobCallbacks), and its own delay brings it back if that wake-up is missed.

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

/** Held back: no attempt, nothing written; the job comes back later (and, parked, when a slot frees). */
export function hold(ctx: DeliverContext, row: LoadedDelivery, job: DeliverJob, reason: HoldReason, delayMs: number): DeliverResult {
  const park = job.jobId ? { webhookId: row.webhook_id, reason, cap: capOf(ctx, row), since: job.enqueuedAt ?? Date.now() } : undefined;
  ctx.metrics.held.inc({ reason });
  return { outcome: 'held', next: { kind: 'later', delayMs: Math.max(Math.round(delayMs), 1), ...(park ? { park } : {}) } };
}

export async function cancel(ctx: DeliverContext, row: LoadedDelivery, reason: string): Promise<DeliverResult> {
  if (await ctx.store.cancel(row.id, new Date())) {
    ctx.metrics.deliveries.inc({ outcome: 'cancelled' });
    ctx.logger.info('delivery cancelled', { delivery_id: row.id, webhook_id: row.webhook_id, reason });
  }
  return { outcome: 'cancelled', next: DONE };
}

/**
 * The circuit's word on a scheduled attempt: go ahead (closed), go ahead as
 * the one probe (cooldown over, and this job won the probe), or wait.
 * Explicit user actions (test sends, manual retries) are not held by it.
 */
export async function circuitAdmission(ctx: DeliverContext, row: LoadedDelivery, job: DeliverJob, now: number): Promise<{ probe: boolean } | DeliverResult> {
  if (row.circuit === 'closed' || job.once || row.test) return { probe: false };
  const spread = Math.floor(Math.random() * 1_000);
  const retryAt = row.circuit_retry_at?.getTime() ?? 0;
  if (retryAt > now) return hold(ctx, row, job, 'circuit', circuitHoldMs(retryAt, now, spread));
  const deadline = now + ctx.config.DELIVERY_TIMEOUT + PROBE_MARGIN_MS;
  if (await ctx.store.claimProbe(row.webhook_id, new Date(deadline), new Date(now))) {
    // The claim is this worker's: if it dies, the others take it back within seconds (endpoint-gate.ts).
    await ctx.gate.probeClaimed({ webhookId: row.webhook_id, deadline }).catch((err: Error) => {
      ctx.logger.warn('could not record the probe claim in Redis; it ends at its deadline', { webhook_id: row.webhook_id, err: err.message });
    });
    ctx.metrics.circuitTransitions.inc({ to: 'half_open' });
    ctx.logger.info('circuit half-open: sending one probe', { webhook_id: row.webhook_id, delivery_id: row.id });
    return { probe: true };
  }
  // Another worker carries the probe: wait for its answer.
  return hold(ctx, row, job, 'circuit', circuitHoldMs(deadline, now, spread));
}

/**
 * A job callback waits while a document callback of its extraction to the
 * same webhook has not ended (succeeded, failed or cancelled): held, no
 * attempt, no slot, the circuit untouched. Test sends and manual retries are
 * never held. Every document callback ends (its retries are bounded; a
 * paused, disabled or deleted webhook's are cancelled), so this cannot wait
 * forever: at most as long as the slowest document's retries.
 */
export async function documentsFirst(ctx: DeliverContext, row: LoadedDelivery, job: DeliverJob): Promise<DeliverResult | null> {
  if (row.event !== JOB_COMPLETED || row.test || job.once) return null;
  const extractionId = extractionOf(row.data);
  if (extractionId === null) return null;
  const { waiting, latest } = await ctx.store.waitingDocuments(extractionId, row.webhook_id);
  if (waiting === 0) return null;
  const now = Date.now();
  const dueInMs = latest ? Math.max(latest.getTime() - now, 0) : 0;
  const delayMs = Math.min(dueInMs + ctx.config.DELIVERY_TIMEOUT + ORDER_MARGIN_MS, MAX_ORDER_HOLD_MS);
  ctx.metrics.held.inc({ reason: 'documents' });
  ctx.logger.debug('job callback held until its documents\' callbacks end', { delivery_id: row.id, webhook_id: row.webhook_id, waiting, delay_ms: delayMs });
  return { outcome: 'held', next: { kind: 'later', delayMs } };
}

/** Whether this job may attempt now (and as the circuit's probe); a DeliverResult when it may not. */
export async function admit(ctx: DeliverContext, row: LoadedDelivery, job: DeliverJob): Promise<{ probe: boolean } | DeliverResult> {
  const once = job.once === true;
  if (isFinal(row.status) && !once) return { outcome: 'skipped', next: DONE };
  // A scheduled retry runs only when due. Its job can run early when the
  // worker died (or lost Redis) after recording the attempt but before BullMQ
  // delayed the job: stalled recovery then runs it at once. Wait for the turn.
  const earlyMs = row.status === 'pending_retry' && row.next_attempt_at ? row.next_attempt_at.getTime() - Date.now() : 0;
  if (!once && earlyMs > EARLY_TOLERANCE_MS) return { outcome: 'held', next: { kind: 'later', delayMs: earlyMs } };
  if (row.deleted) return cancel(ctx, row, 'webhook_deleted');
  // Explicit user actions (a test send, a manual retry) still reach a paused webhook.
  if ((!row.is_active || row.disabled_reason) && !once && !row.test) return cancel(ctx, row, row.disabled_reason ? 'webhook_disabled' : 'webhook_paused');
  const held = await documentsFirst(ctx, row, job);
  if (held) return held;
  return circuitAdmission(ctx, row, job, Date.now());
}
