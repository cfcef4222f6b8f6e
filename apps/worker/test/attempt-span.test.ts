import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { deliverJobData } from '@hookline/queue';
import { annotate } from '@hookline/telemetry';
import { CHILD_WITHIN_MS, inAttemptSpan } from '../src/attempt-span';

// The worker's attempt span: a child of the carried trace when the job starts
// soon after it was queued, a new trace linked to it when it starts later
// (retries after backoff), a root when the job carries no traceparent.

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
beforeAll(() => provider.register({ propagator: new W3CTraceContextPropagator() }));
afterAll(() => provider.shutdown());
beforeEach(() => exporter.reset());

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';
const traceparent = `00-${TRACE}-${PARENT}-01`;
const run = async () => {
  annotate({ 'hookline.attempt': 1 });
  return { outcome: 'succeeded' };
};

it('a job started within CHILD_WITHIN_MS of being queued continues the carried trace', async () => {
  const now = Date.now();
  await inAttemptSpan({ deliveryId: 'dlv_1', traceparent, enqueuedAt: now - CHILD_WITHIN_MS + 1_000 }, run, now);
  const [span] = exporter.getFinishedSpans();
  expect(span.spanContext().traceId).toBe(TRACE);
  expect(span.parentSpanContext?.spanId).toBe(PARENT);
  expect(span.links).toEqual([]);
  expect(span.attributes).toMatchObject({ 'hookline.delivery_id': 'dlv_1', 'hookline.attempt': 1, 'hookline.outcome': 'succeeded' });
});

it('a later job (a retry after backoff) starts its own trace, linked to the one that queued it', async () => {
  const now = Date.now();
  await inAttemptSpan({ deliveryId: 'dlv_2', traceparent, enqueuedAt: now - CHILD_WITHIN_MS - 1_000 }, run, now);
  const [span] = exporter.getFinishedSpans();
  expect(span.spanContext().traceId).not.toBe(TRACE);
  expect(span.parentSpanContext).toBeUndefined();
  expect(span.links.map((l) => [l.context.traceId, l.context.spanId])).toEqual([[TRACE, PARENT]]);
});

it('a job without a traceparent (queued before tracing, or by the relay) is a root span', async () => {
  await inAttemptSpan({ deliveryId: 'dlv_3', enqueuedAt: Date.now() }, run);
  const [span] = exporter.getFinishedSpans();
  expect(span.parentSpanContext).toBeUndefined();
  expect(span.links).toEqual([]);
});

it('a failed attempt marks its span failed and still rethrows', async () => {
  await expect(inAttemptSpan({ deliveryId: 'dlv_4' }, () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
  const [span] = exporter.getFinishedSpans();
  expect(span.status).toMatchObject({ code: 2, message: 'db down' });
});

it('the job schema takes jobs with and without a traceparent, and drops a malformed one instead of the job', () => {
  expect(deliverJobData.parse({ deliveryId: 'dlv_1' })).toEqual({ deliveryId: 'dlv_1' });
  expect(deliverJobData.parse({ deliveryId: 'dlv_1', traceparent })).toEqual({ deliveryId: 'dlv_1', traceparent });
  expect(deliverJobData.parse({ deliveryId: 'dlv_1', traceparent: 42 })).toEqual({ deliveryId: 'dlv_1' });
  expect(deliverJobData.parse({ deliveryId: 'dlv_1', traceparent: 'x'.repeat(500) })).toEqual({ deliveryId: 'dlv_1' });
});
