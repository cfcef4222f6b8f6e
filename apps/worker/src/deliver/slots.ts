import { circuitCount, circuitHoldMs, inFlightHoldMs, isCircuitFailure, rateHoldMs } from '@hookline/domain';
import type { LoadedDelivery } from '../delivery-store';
import type { Lease } from '../endpoint-gate';
import type { SendResult } from '../sender';
import { hold } from './admission';
import { capOf, DONE, hostOf, type DeliverContext, type DeliverJob, type DeliverResult } from './context';

// A delivery's slot at its webhook (the endpoint gate's lease): taken before
// the send, freed after it, or handed on in place to a delivery of the same
// webhook waiting in this process (local-line.ts).
//
// THE RULE (the two margins below protect it):
// a lease must outlive the attempt that holds it, so a webhook never has more
// attempts in flight than its cap while their workers live.
//   - A lease is taken for DELIVERY_TIMEOUT + LEASE_MARGIN_MS (worker.ts gives
//     the gate that TTL): the attempt's send ends within DELIVERY_TIMEOUT, and
//     the margin covers what follows it until the slot is freed, and slack
//     between the workers' clocks. A dead worker's leases are reclaimed long before that (liveness.ts);
//     the expiry is the last resort, for a lease no registry names.
//   - A slot handed on in place starts a next attempt on the same lease. It is
//     handed on before its renewal is answered only while the lease still
//     outlives that whole next attempt by HAND_OVER_MARGIN_MS (expiresAt − now
//     > DELIVERY_TIMEOUT + HAND_OVER_MARGIN_MS): even if the renewal is lost,
//     the next attempt ends before the lease does. Otherwise Redis must renew
//     it first. A worker that lost its liveness trusts no lease (expiresAt 0):
//     every hand-over then waits for a renewal Redis confirms.

/** An attempt's lease outlives its timeout by this much (THE RULE, first point). */
export const LEASE_MARGIN_MS = 30_000;
/** A slot is handed on before its renewal is answered only while its lease outlives one more attempt by this much (THE RULE, second point). */
export const HAND_OVER_MARGIN_MS = 5_000;

/** A slot under the webhook's in-flight cap and rate limit (and its failure count), or a hold. */
/**
 * A slot found after a wait in the local line goes to this job only if the
 * job is still this worker's: while it waited, Redis may have lost its data
 * (the refill queues the delivery again, and that job would send it too) or
 * another worker may have taken the job over. If not, the slot is given back
 * and the job ends without sending: its delivery is still waiting in
 * PostgreSQL, and its other job delivers it.
 */
async function ownedAfterWait(ctx: DeliverContext, row: LoadedDelivery, job: DeliverJob, lease: Lease): Promise<Lease | DeliverResult> {
  if (!job.stillOwned || (await job.stillOwned().catch(() => true))) return lease;
  try {
    await ctx.gate.release({ webhookId: row.webhook_id, lease, circuitFailure: 'none', wake: true, cap: capOf(ctx, row), threshold: ctx.config.CIRCUIT_BREAKER_THRESHOLD });
  } catch {
    // The lease expires by itself.
  } finally {
    ctx.line?.freed(row.webhook_id);
  }
  ctx.logger.info('a delivery waiting for a slot lost its job (Redis lost its data, or another worker took it over); its other job delivers it', { delivery_id: row.id, webhook_id: row.webhook_id });
  return { outcome: 'skipped', next: DONE };
}

export async function takeSlot(ctx: DeliverContext, row: LoadedDelivery, job: DeliverJob, probe: boolean): Promise<Lease | DeliverResult> {
  const { gate, line, config } = ctx;
  const cap = capOf(ctx, row);
  const exempt = probe || job.once === true || row.test;
  const request = {
    webhookId: row.webhook_id, jobId: job.jobId ?? row.id, cap, ratePerSecond: row.rate_limit_per_second,
    circuitThreshold: exempt ? 0 : config.CIRCUIT_BREAKER_THRESHOLD,
  };
  const startedAt = Date.now();
  let got = await gate.acquire(request);
  let waited = false;
  // Every slot busy at a fast webhook: one frees in moments, so wait for it here (see local-line.ts).
  while (!got.ok && got.reason === 'in_flight' && line) {
    const wait = await line.wait(row.webhook_id, startedAt);
    if (wait === 'park') break;
    waited = true;
    if (wait !== 'freed') return ownedAfterWait(ctx, row, job, wait.lease);
    got = await gate.acquire(request);
  }
  if (got.ok) return waited ? ownedAfterWait(ctx, row, job, got.lease) : got.lease;
  if (got.reason === 'rate') return hold(ctx, row, job, 'rate', rateHoldMs(got.rank, row.rate_limit_per_second ?? 1, got.waitMs));
  if (got.reason === 'in_flight') return hold(ctx, row, job, 'in_flight', inFlightHoldMs(got.rank, cap, config.DELIVERY_TIMEOUT));
  // The failures crossed the threshold but the circuit's state has not reached
  // this row (another worker is writing it, or that write failed): make sure
  // it is open, so a probe follows at the end of the cooldown.
  const now = Date.now();
  const retryAt = now + config.CIRCUIT_BREAKER_COOLDOWN;
  if (await ctx.store.openCircuit(row.webhook_id, new Date(retryAt), config.CIRCUIT_BREAKER_COOLDOWN, new Date(now))) {
    ctx.metrics.circuitTransitions.inc({ to: 'open' });
    ctx.logger.warn('circuit open: holding this webhook\'s deliveries', { webhook_id: row.webhook_id, cooldown_ms: config.CIRCUIT_BREAKER_COOLDOWN, host: hostOf(row.url) });
  }
  return hold(ctx, row, job, 'circuit', circuitHoldMs(retryAt, now, Math.floor(Math.random() * 1_000)));
}

/** Frees the slot, or hands it on; resolves to the webhook's consecutive circuit failures (null when Redis did not answer). */
export async function freeSlot(ctx: DeliverContext, row: LoadedDelivery, lease: Lease, result: SendResult): Promise<number | null> {
  const { gate, line, config } = ctx;
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
    // The lease outlives the next attempt even if its renewal is lost (THE
    // RULE), so the waiter starts at once and the renewal (expiry moved on,
    // failure count reset) runs beside its send: no Redis round trip between two attempts.
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
      cap: capOf(ctx, row),
      threshold: config.CIRCUIT_BREAKER_THRESHOLD,
    });
  } catch (err) {
    // The lease expires by itself; the attempt must still be recorded.
    ctx.logger.warn('could not free an endpoint slot; it expires by itself', { webhook_id: row.webhook_id, err: (err as Error).message });
    return null;
  } finally {
    line?.freed(row.webhook_id);
  }
}
