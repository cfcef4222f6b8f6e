import type { WrittenEvent } from '@hookline/db';
import { AppError, type EmittedEvent, type EventName } from '@hookline/domain';
import { enqueueToShards, type DeliveryRef } from '@hookline/queue';
import { ATTR, context, endSpan, SpanKind, startSpan, traceparentOf, trace, type Context, type Span } from '@hookline/telemetry';
import type { ApiDeps } from '../deps';

// After commit (step 2 of "One delivery, from request to callback" in ARCHITECTURE.md): one job per new delivery.

export type { EmittedEvent } from '@hookline/domain';
/** `trace`: the context of the request that published it (the active one when absent), for its enqueue span. */
export type Written = WrittenEvent & { event: EventName; trace?: Context };

/** What an answer says of an event written (its deliveries, whether or not they were queued yet). */
export const emitted = (w: Written): EmittedEvent => ({ id: w.eventId, event: w.event, deliveries: w.deliveryIds.length });

// A producer whose Redis is gone fails fast; this only bounds a Redis that hangs.
const ENQUEUE_TIMEOUT_MS = 5_000;

/** The answer when a job the caller waits for (a retry, a recovery, a test) cannot be queued. */
export const queueDown = () => new AppError('SERVICE_UNAVAILABLE', 'The delivery queue is unreachable right now; try again in a few seconds.');

/** Rejects when Redis does not take the jobs within `ms`. Each delivery goes to its webhook's queue shard. */
export async function enqueueWithin(deps: Pick<ApiDeps, 'queue'>, deliveries: readonly DeliveryRef[], opts: { once?: boolean } = {}, ms = ENQUEUE_TIMEOUT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not accept the jobs within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([enqueueToShards(deps.queue, deliveries, opts), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * After commit: enqueue every new delivery (one addBulk, however many events).
 * A Redis outage is not the caller's problem: the rows stay `pending` and the
 * worker's relay enqueues them later, so the events are still accepted
 * (an event accepted with 202 is never lost). Never rejects.
 */
export async function enqueueCommitted(deps: Pick<ApiDeps, 'queue' | 'logger' | 'metrics'>, written: Written[]): Promise<EmittedEvent[]> {
  // One enqueue span per event, a child of its own request's span (a batch
  // serves many requests: each request's trace shows the addBulk it waited on).
  // Each job carries its enqueue span's traceparent, so the worker's attempt
  // continues that trace.
  const spans: Span[] = [];
  const deliveries = written.flatMap((w) => {
    const span = startSpan('hookline.enqueue', {
      kind: SpanKind.PRODUCER,
      parent: w.trace,
      attributes: { [ATTR.eventId]: w.eventId, [ATTR.deliveries]: w.deliveryIds.length, [ATTR.batchSize]: written.length },
    });
    spans.push(span);
    const traceparent = traceparentOf(trace.setSpan(w.trace ?? context.active(), span));
    return w.deliveryIds.map((id, i) => ({ id, webhookId: w.webhookIds[i], ...(traceparent ? { traceparent } : {}) }));
  });
  for (const w of written) deps.metrics.eventsAccepted.inc({ event: w.event });
  deps.metrics.deliveriesCreated.inc(deliveries.length);
  try {
    await enqueueWithin(deps, deliveries);
    for (const span of spans) endSpan(span);
  } catch (err) {
    for (const span of spans) endSpan(span, err);
    deps.metrics.enqueueFailures.inc(deliveries.length);
    deps.logger.warn('enqueue failed; deliveries left pending for the relay', {
      event_ids: written.map((w) => w.eventId),
      deliveries: deliveries.length,
      err: (err as Error).message,
    });
  }
  return written.map(emitted);
}
