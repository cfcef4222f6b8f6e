import { randomBytes } from 'node:crypto';
import { createDeliveryQueue, createRedis } from '@hookline/queue';
import { deliveryReaches, onlyDelivery, startStack, type Stack } from '../delivery/stack';
import { TEST_REDIS_URL } from '../support/api-harness';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { spawnApiProcess, spawnWorkerProcess, workerProcessEnv, type WorkerProcess } from '../support/worker-harness';

// OpenTelemetry traces (docs/operations.md#tracing), end to end: the API and
// the worker as their own processes, exporting to a real OTLP/HTTP receiver
// over both protocols; one publish makes one trace holding both processes'
// spans; a traceparent on the request is its parent; nothing secret is
// exported; with tracing off nothing is sent and jobs carry no traceparent.

const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

describe('tracing', () => {
  let stack: Stack;
  let otlp: OtlpReceiver;
  const running: WorkerProcess[] = [];

  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
    otlp = await startOtlpReceiver();
  });
  afterAll(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
    await otlp?.close();
    await stack?.close();
  });
  beforeEach(() => stack.freshAccount());
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill('SIGTERM')));
  });

  async function startProcesses(otel: Record<string, string>) {
    const base = workerProcessEnv(stack.api, otel);
    const [api, worker] = await Promise.all([
      spawnApiProcess({ ...base, PLATFORM_TOKEN: stack.api.platformToken, REDIS_URL: TEST_REDIS_URL }),
      spawnWorkerProcess(base),
    ]);
    running.push(api, worker);
    return { api, worker };
  }

  async function publish(port: number, headers: Record<string, string> = {}) {
    const res = await fetch(`http://127.0.0.1:${port}/internal/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.api.platformToken}`, ...headers },
      body: JSON.stringify({ account_id: stack.account.accountId, event: 'quota.warning', data: { usage: 80, limit: 100 } }),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { event: { id: string } }).event.id;
  }

  /** Everything exported, as text: raw bodies (either encoding) and every decoded string. */
  function exportedText(spans: ReceivedSpan[]): string {
    return [
      ...otlp.requests.map((r) => r.body.toString('latin1')),
      ...spans.flatMap((s) => [s.name, ...Object.values(s.attributes).map(String), ...s.eventStrings]),
    ].join('\n');
  }

  for (const protocol of ['http/json', 'http/protobuf'] as const) {
    it(`one publish is one trace of the API's and the worker's spans, over ${protocol}, its traceparent the parent, no secret in it`, async () => {
      const r = await stack.receiver({ status: 200, body: 'ok' });
      const wh = await stack.createWebhook({ url: `${r.url}/hooks?token=query-secret-${randomBytes(4).toString('hex')}` });
      const { api } = await startProcesses({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol });
      const before = otlp.requests.length;

      const traceId = randomBytes(16).toString('hex');
      const parentId = randomBytes(8).toString('hex');
      const eventId = await publish(api.port, { traceparent: `00-${traceId}-${parentId}-01` });
      const [callback] = await r.waitFor(1, 15_000);
      const delivery = await onlyDelivery(stack, wh.id);
      await deliveryReaches(stack, delivery.id, 'succeeded');

      const spans = (await otlp.waitFor((all) => ['hookline.record', 'hookline.enqueue'].every((n) => all.some((s) => s.traceId === traceId && s.name === n))))
        .filter((s) => s.traceId === traceId);
      expect(otlp.requests.slice(before).every((q) => q.contentType.includes(protocol === 'http/json' ? 'application/json' : 'application/x-protobuf'))).toBe(true);
      const byName = (name: string) => {
        const found = spans.filter((s) => s.name === name);
        expect(found.map((s) => s.name)).toEqual([name]);
        return found[0];
      };

      // The API: the request's span, a child of the caller's traceparent, with the outbox write and the enqueue under it.
      const server = byName('POST /internal/v1/events');
      expect(server).toMatchObject({ service: 'hookline-api', parentSpanId: parentId, kind: SERVER });
      expect(server.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/internal/v1/events', 'http.response.status_code': 202 });
      const write = byName('hookline.outbox.write');
      expect(write).toMatchObject({ service: 'hookline-api', parentSpanId: server.spanId });
      expect(write.attributes['hookline.event_id']).toBe(eventId);
      const enqueue = byName('hookline.enqueue');
      expect(enqueue).toMatchObject({ service: 'hookline-api', parentSpanId: server.spanId, kind: PRODUCER });
      expect(enqueue.attributes).toMatchObject({ 'hookline.event_id': eventId, 'hookline.deliveries': 1 });

      // The worker: its attempt continues the trace under the enqueue span, with load, gate, send and record under it.
      const attempt = byName('hookline.deliver');
      expect(attempt).toMatchObject({ service: 'hookline-worker', parentSpanId: enqueue.spanId, kind: CONSUMER });
      expect(attempt.attributes).toMatchObject({
        'hookline.delivery_id': delivery.id, 'hookline.webhook_id': wh.id, 'hookline.event_id': eventId, 'hookline.attempt': 1, 'hookline.outcome': 'succeeded',
      });
      for (const name of ['hookline.load', 'hookline.gate', 'hookline.record']) expect(byName(name)).toMatchObject({ service: 'hookline-worker', parentSpanId: attempt.spanId });
      const send = byName('POST');
      expect(send).toMatchObject({ service: 'hookline-worker', parentSpanId: attempt.spanId, kind: CLIENT });
      expect(send.attributes).toMatchObject({
        'http.request.method': 'POST', 'url.full': `${r.url}/hooks`, 'server.address': '127.0.0.1', 'server.port': Number(new URL(r.url).port), 'http.response.status_code': 200,
      });

      // Nothing secret anywhere in what was exported: the signing secret, the signature headers' values, the URL's query, the body.
      const exported = exportedText(otlp.spans());
      const signatures = Object.entries(callback.headers).filter(([name]) => /signature|secret/i.test(name)).map(([, value]) => String(value));
      expect(signatures.length).toBeGreaterThan(0);
      for (const secret of [wh.signing_secret, ...signatures, new URL(wh.url).search.slice(1), callback.body]) {
        expect(secret.length).toBeGreaterThan(8);
        expect(exported).not.toContain(secret);
      }
      // The signing secret's and signatures' parts too (a scheme prefix stripped, several signatures in one header).
      for (const part of signatures.flatMap((s) => s.split(/[\s,=]+/)).filter((p) => p.length > 16)) expect(exported).not.toContain(part);
      expect(exported).not.toContain(wh.signing_secret.replace(/^whsec_/, ''));
    });
  }

  it('the API and the worker report OTEL_SERVICE_NAME when set, and a publish without traceparent starts a new trace', async () => {
    const r = await stack.receiver({ status: 200 });
    const wh = await stack.createWebhook({ url: r.url });
    const { api } = await startProcesses({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${otlp.url}/v1/traces`, OTEL_SERVICE_NAME: 'hookline-eu' });
    const eventId = await publish(api.port);
    await r.waitFor(1, 15_000);
    const spans = await otlp.waitFor((all) => all.some((s) => s.name === 'hookline.deliver' && s.attributes['hookline.event_id'] === eventId));
    const server = spans.find((s) => s.name === 'POST /internal/v1/events' && spans.some((e) => e.name === 'hookline.enqueue' && e.parentSpanId === s.spanId && e.attributes['hookline.event_id'] === eventId))!;
    expect(server).toMatchObject({ service: 'hookline-eu', parentSpanId: '' });
    const attempt = spans.find((s) => s.name === 'hookline.deliver' && s.attributes['hookline.webhook_id'] === wh.id)!;
    expect(attempt).toMatchObject({ service: 'hookline-eu', traceId: server.traceId });
  });

  it('a publish its caller did not sample (traceparent flags 00) exports no span from the API or the worker: the decision travels with the job', async () => {
    const r = await stack.receiver({ status: 200 });
    const wh = await stack.createWebhook({ url: r.url });
    const { api } = await startProcesses({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    const dropped = randomBytes(16).toString('hex');
    const droppedEvent = await publish(api.port, { traceparent: `00-${dropped}-${randomBytes(8).toString('hex')}-00` });
    await r.waitFor(1, 15_000);
    const droppedDelivery = (await onlyDelivery(stack, wh.id)).id;
    await deliveryReaches(stack, droppedDelivery, 'succeeded');
    // A sampled publish after it, through the same two processes: once its last worker span has been
    // exported, any span of the first (which ended earlier, in the same batch processors) would have been too.
    const kept = randomBytes(16).toString('hex');
    await publish(api.port, { traceparent: `00-${kept}-${randomBytes(8).toString('hex')}-01` });
    await otlp.waitFor((all) => all.some((s) => s.traceId === kept && s.name === 'hookline.record'));
    // Neither in its trace nor in one of the worker's own (a worker deciding afresh would start a new trace).
    const ofDropped = otlp.spans().filter((s) => s.traceId === dropped || s.attributes['hookline.event_id'] === droppedEvent || s.attributes['hookline.delivery_id'] === droppedDelivery);
    expect(ofDropped.map((s) => s.name)).toEqual([]);
    expect(otlp.spans().filter((s) => s.traceId === kept && s.service === 'hookline-worker').length).toBeGreaterThanOrEqual(4);
  });

  it('a document report is traced like a publish: its transaction and one enqueue per event it emitted, under the request span', async () => {
    const wh = await stack.createWebhook({ url: (await stack.receiver({ status: 200 })).url, events: ['extraction.document_completed', 'extraction.job_completed'] });
    const base = workerProcessEnv(stack.api, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    const api = await spawnApiProcess({ ...base, PLATFORM_TOKEN: stack.api.platformToken });
    running.push(api);
    const ext = await stack.api.platform.post('/internal/v1/extractions', { account_id: stack.account.accountId, document_count: 1 });
    expect(ext.status).toBe(201);
    const traceId = randomBytes(16).toString('hex');
    const res = await fetch(`http://127.0.0.1:${api.port}/internal/v1/extractions/${ext.body.extraction.extraction_id}/documents/doc_1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.api.platformToken}`, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
      body: JSON.stringify({ status: 'completed', result: { total: 1 } }),
    });
    expect(res.status).toBe(202);
    const events = ((await res.json()) as { events: { id: string }[] }).events;
    expect(events.length).toBeGreaterThanOrEqual(2);
    const spans = (await otlp.waitFor((all) => all.filter((s) => s.traceId === traceId && s.name === 'hookline.enqueue').length === events.length))
      .filter((s) => s.traceId === traceId);
    const server = spans.find((s) => s.name === 'POST /internal/v1/extractions/:extraction_id/documents/:document_id')!;
    expect(server).toMatchObject({ service: 'hookline-api', kind: SERVER });
    expect(server.attributes).toMatchObject({ 'http.response.status_code': 202 });
    expect(spans.filter((s) => s.name === 'hookline.outbox.write').map((s) => s.parentSpanId)).toEqual([server.spanId]);
    const enqueues = spans.filter((s) => s.name === 'hookline.enqueue');
    expect(enqueues.every((s) => s.parentSpanId === server.spanId)).toBe(true);
    expect(enqueues.map((s) => s.attributes['hookline.event_id']).sort()).toEqual(events.map((e) => e.id).sort());
    expect(wh.id).toMatch(/^wh_/);
  });

  it('tracing off: nothing is exported and jobs carry no traceparent, even for a request that had one', async () => {
    const wh = await stack.createWebhook({ url: (await stack.receiver({ status: 200 })).url });
    const before = otlp.requests.length;
    // Every OTEL_* but an endpoint: still off.
    const base = workerProcessEnv(stack.api, { OTEL_SERVICE_NAME: 'off', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_TRACES_SAMPLER: 'always_on' });
    const api = await spawnApiProcess({ ...base, PLATFORM_TOKEN: stack.api.platformToken });
    running.push(api);
    // No worker: the job stays in the queue to be read.
    await publish(api.port, { traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01` });
    const delivery = await onlyDelivery(stack, wh.id);
    const redis = createRedis(TEST_REDIS_URL, 'producer');
    const queue = createDeliveryQueue(redis, stack.api.prefix);
    try {
      const job = await queue.getJob(delivery.id);
      expect(job?.data).toEqual({ deliveryId: delivery.id });
    } finally {
      await queue.close();
      redis.disconnect();
    }
    expect((await api.kill('SIGTERM')).code).toBe(0);
    expect(api.output.some((line) => line.includes('tracing on'))).toBe(false);
    expect(otlp.requests.length).toBe(before);
  });

  it('refuses a protocol it cannot speak, naming the variable', async () => {
    const failure = await spawnWorkerProcess(workerProcessEnv(stack.api, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).then(
      () => null,
      (err: Error) => err.message,
    );
    expect(failure).toContain('OTEL_EXPORTER_OTLP_PROTOCOL');
  });
});
