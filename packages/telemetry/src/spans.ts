import {
  context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span,
} from '@opentelemetry/api';

// Helpers over @opentelemetry/api's globals. With tracing off they reach the
// API's no-op implementations, so each costs a call and allocates nothing of note.

export { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';

/** Attribute names of our own (never a secret, a signature or a body). */
export const ATTR = {
  eventId: 'hookline.event_id',
  webhookId: 'hookline.webhook_id',
  deliveryId: 'hookline.delivery_id',
  attempt: 'hookline.attempt',
  batchSize: 'hookline.batch.size',
  deliveries: 'hookline.deliveries',
  outcome: 'hookline.outcome',
} as const;

const tracer = () => trace.getTracer('hookline');

export type SpanOptions = { kind?: SpanKind; attributes?: Attributes; parent?: Context; links?: Link[] };

function fail(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? { name: err.name, message: err.message } : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Runs `work` inside a new active span (a child of the active one, or of `parent`), ending it when it settles. */
export function inSpan<T>(name: string, work: (span: Span) => Promise<T>, options: SpanOptions = {}): Promise<T> {
  const { parent, ...rest } = options;
  return tracer().startActiveSpan(name, rest, parent ?? context.active(), async (span) => {
    try {
      return await work(span);
    } catch (err) {
      fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** A span that is not made active (for one span per request around a shared batch step); end it with endSpan. */
export function startSpan(name: string, options: SpanOptions = {}): Span {
  const { parent, ...rest } = options;
  return tracer().startSpan(name, rest, parent ?? context.active());
}

/** Ends a span started with startSpan, marking it failed when `err` is given. */
export function endSpan(span: Span, err?: unknown): void {
  if (err !== undefined) fail(span, err);
  span.end();
}

/** Sets attributes on the active span (no-op when there is none or tracing is off). */
export function annotate(attributes: Attributes): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}

/**
 * The W3C traceparent of a span's (or the active) context; undefined when
 * tracing is off. An unsampled span's is carried too (flags 00), so the worker's
 * parent-based sampler drops the rest of that trace instead of sampling it anew.
 */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  if (!trace.getSpan(ctx)) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The context a W3C traceparent (and tracestate) header carries, for a span's parent; the root context when absent. */
export function contextFromHeaders(headers: Record<string, string | string[] | undefined>): Context {
  if (!headers.traceparent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, {
    keys: (h) => Object.keys(h),
    get: (h, key) => h[key],
  });
}

/** The context of a traceparent carried by a job; the root context when absent. */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  return traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
}
