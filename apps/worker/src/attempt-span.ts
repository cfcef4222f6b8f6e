import { ATTR, contextFromTraceparent, inSpan, ROOT_CONTEXT, SpanKind, trace, type Span } from '@hookline/telemetry';

/**
 * A job that starts within this long of being queued continues the trace that
 * queued it (its span a child of the API's enqueue span); a later one (a
 * retry after backoff, a delivery held for minutes, a job the relay queued
 * again) starts a trace of its own with a link to it. A publish's trace then
 * ends within about a minute instead of stretching over the hours of a retry
 * schedule, and each late attempt is one small trace a click away from it.
 */
export const CHILD_WITHIN_MS = 60_000;

type TracedJob = { deliveryId: string; traceparent?: string; enqueuedAt?: number; once?: boolean };

/** Runs one job's attempt in its `hookline.deliver` span (see CHILD_WITHIN_MS for child or link). */
export function inAttemptSpan<T extends { outcome: string }>(job: TracedJob, run: () => Promise<T>, now = Date.now()): Promise<T> {
  const carried = contextFromTraceparent(job.traceparent);
  const carriedSpan = trace.getSpanContext(carried);
  const late = job.enqueuedAt !== undefined && now - job.enqueuedAt > CHILD_WITHIN_MS;
  return inSpan('hookline.deliver', async (span: Span) => {
    const result = await run();
    span.setAttribute(ATTR.outcome, result.outcome);
    return result;
  }, {
    kind: SpanKind.CONSUMER,
    parent: carriedSpan && late ? ROOT_CONTEXT : carried,
    links: carriedSpan && late ? [{ context: carriedSpan }] : [],
    attributes: { [ATTR.deliveryId]: job.deliveryId, ...(job.once ? { 'hookline.once': true } : {}) },
  });
}
