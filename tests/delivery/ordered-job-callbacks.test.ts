import type { ReceivedCallback, Reply } from '../support/receiver';
import { allDeliveriesFinal, deliveryReaches, eventually, startStack, type Stack } from './stack';

// Ordered job callbacks, end to end (real API, worker and receivers): a
// webhook gets an extraction's extraction.job_completed only after every
// extraction.document_completed delivery of it to that webhook has ended. Each
// receiver records arrival order; the assertions are about that order.
//
// DELIVERY_TIMEOUT is 10 s here, so a held job callback's own fallback delay
// (its last document's due time + DELIVERY_TIMEOUT + 1 s) is far longer than
// the retries: a job callback arriving within moments of its last document's
// attempt was woken by it, not by its delay.

const DOC = 'extraction.document_completed';
const JOB = 'extraction.job_completed';

type Body = { id: string; event: string; data: { document_id?: string; extraction_id: string; status: string } };
const parse = (r: ReceivedCallback): Body => JSON.parse(r.body) as Body;
const isDocument = (documentId: string) => (r: ReceivedCallback) => parse(r).event === DOC && parse(r).data.document_id === documentId;
const isJob = (r: ReceivedCallback) => parse(r).event === JOB;

/** 500 (after `delayMs`) to the first `failures` callbacks of `documentId`, 200 to everything else. */
function failDocument(documentId: string, failures: number, delayMs = 0): (r: ReceivedCallback) => Reply {
  let seen = 0;
  return (r) => {
    if (isDocument(documentId)(r) && seen++ < failures) return { status: 500, body: 'not now', delayMs };
    return { status: 200, body: 'ok' };
  };
}

describe('ordered job callbacks', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ worker: { config: { DELIVERY_TIMEOUT: 10_000 } } });
  });
  afterAll(() => stack?.close());
  beforeEach(() => stack.freshAccount());

  async function extraction(documents: string[]): Promise<string> {
    const created = await stack.api.platform.post('/internal/v1/extractions', { account_id: stack.account.accountId, document_count: documents.length });
    expect(created.status).toBe(201);
    const id: string = created.body.extraction.extraction_id;
    for (const doc of documents) {
      const res = await stack.api.platform.post(`/internal/v1/extractions/${id}/documents/${doc}`, { status: 'completed', file_name: `${doc}.pdf`, result: { n: 1 } });
      expect(res.status).toBe(202);
    }
    return id;
  }

  it('a document answered 500 twice: the job callback arrives after that document\'s third attempt, never before, and is woken by it', async () => {
    const r = await stack.receiver();
    r.respond(failDocument('doc-2', 2));
    const wh = await stack.createWebhook({ url: r.url, events: [DOC, JOB] });
    const extractionId = await extraction(['doc-1', 'doc-2', 'doc-3']);

    await eventually(async () => r.received.some(isJob), 20_000, 'the job callback');
    await allDeliveriesFinal(stack); // anything else that was coming
    const order = r.received.map((c) => (isJob(c) ? 'job' : parse(c).data.document_id));
    // doc-2 three times (500, 500, 200), the others once, the job callback last, once.
    expect(order.filter((x) => x === 'doc-2')).toHaveLength(3);
    expect(order.filter((x) => x === 'doc-1')).toHaveLength(1);
    expect(order.filter((x) => x === 'doc-3')).toHaveLength(1);
    expect(order.filter((x) => x === 'job')).toHaveLength(1);
    expect(order[order.length - 1]).toBe('job');
    expect(parse(r.received[order.indexOf('job')]).data.extraction_id).toBe(extractionId);

    // Woken by doc-2's last attempt: within moments of it, far sooner than its fallback delay (> 10 s).
    const lastDocument = r.received.filter(isDocument('doc-2'))[2];
    const job = r.received.find(isJob)!;
    expect(job.receivedAt).toBeGreaterThanOrEqual(lastDocument.receivedAt);
    expect(job.receivedAt - lastDocument.receivedAt).toBeLessThan(3_000);

    // Held, not tried: one attempt, succeeded; the webhook's circuit and state untouched.
    const deliveries = await stack.deliveries(wh.id);
    const jobDelivery = deliveries.find((d) => d.event === JOB)!;
    const { attempts } = await deliveryReaches(stack, jobDelivery.id, 'succeeded');
    expect(attempts).toHaveLength(1);
    expect(deliveries.filter((d) => d.event === DOC).map((d) => d.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(await stack.webhook(wh.id)).toMatchObject({ status: 'active', circuit: 'closed', failing_since: null });
  });

  it('retry_enabled false: a document that fails ends failed at once, and the job callback follows its answer without waiting', async () => {
    const r = await stack.receiver();
    // doc-1's one attempt takes 400 ms to fail: the job callback must not overtake its answer.
    r.respond(failDocument('doc-1', 1, 400));
    const wh = await stack.createWebhook({ url: r.url, events: [DOC, JOB], retry_enabled: false });
    await extraction(['doc-1', 'doc-2']);

    await eventually(async () => r.received.some(isJob), 10_000, 'the job callback');
    await allDeliveriesFinal(stack);
    const order = r.received.map((c) => (isJob(c) ? 'job' : parse(c).data.document_id));
    expect(order.filter((x) => x === 'doc-1')).toHaveLength(1);
    expect(order[order.length - 1]).toBe('job');
    const job = r.received.find(isJob)!;
    const gap = job.receivedAt - r.received.find(isDocument('doc-1'))!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(400);
    expect(gap).toBeLessThan(3_000);

    const deliveries = await stack.deliveries(wh.id);
    const byDocument = (status: string) => deliveries.filter((d) => d.event === DOC && d.status === status);
    expect(byDocument('failed')).toHaveLength(1);
    expect(byDocument('succeeded')).toHaveLength(1);
    await deliveryReaches(stack, deliveries.find((d) => d.event === JOB)!.id, 'succeeded');
  });

  it('the order is per webhook: a webhook without document callbacks gets the job callback at once, while another one\'s waits for its documents', async () => {
    const slow = await stack.receiver();
    slow.respond(failDocument('doc-1', 2));
    const jobsOnly = await stack.receiver();
    await stack.createWebhook({ url: slow.url, events: [DOC, JOB] });
    await stack.createWebhook({ url: jobsOnly.url, events: [JOB] });
    await extraction(['doc-1']);

    const [onlyJob] = await jobsOnly.waitFor(1, 10_000);
    expect(parse(onlyJob).event).toBe(JOB);
    await eventually(async () => slow.received.some(isJob), 20_000, 'the job callback of the webhook with documents');
    const firstDocument = slow.received.find(isDocument('doc-1'))!;
    const lastDocument = slow.received.filter(isDocument('doc-1'))[2];
    // The webhook without documents did not wait for the other one's retries.
    expect(onlyJob.receivedAt).toBeLessThan(lastDocument.receivedAt);
    expect(onlyJob.receivedAt - firstDocument.receivedAt).toBeLessThan(3_000);
    expect(slow.received.findIndex(isJob)).toBe(slow.received.length - 1);
    expect(slow.received.find(isJob)!.receivedAt).toBeGreaterThanOrEqual(lastDocument.receivedAt);
  });

  it('a test send of the job callback is never held, even while a document callback waits', async () => {
    const r = await stack.receiver();
    r.respond(failDocument('doc-1', 100));
    const wh = await stack.createWebhook({ url: r.url, events: [DOC, JOB], max_retries: 10 });
    await extraction(['doc-1']);
    await r.waitFor(1, 5_000);
    const started = Date.now();
    const res = await stack.v1.post(`/v1/webhooks/${wh.id}/test`);
    expect(res.status).toBe(200);
    expect(res.body.attempt).toMatchObject({ status: 'succeeded', response_status: 200 });
    expect(Date.now() - started).toBeLessThan(5_000);
    // The extraction's own job callback still waits for doc-1.
    expect(r.received.filter((c) => isJob(c) && !(JSON.parse(c.body) as { test: boolean }).test)).toHaveLength(0);
  });
});
