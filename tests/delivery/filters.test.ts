import { createWebhook } from '../../apps/api/src/services/webhooks';
import { eventually, startStack, type Stack } from './stack';

// Payload filters end to end (docs/api.md, "Filters"): webhooks created through
// the API (and a dashboard webhook given a filter by PATCH), extractions
// reported through the platform API, callbacks sent by the real worker to real
// receivers. Each receiver gets exactly the events its filter lets through; a
// filtered-out event creates no delivery at all; a test send ignores filters.

describe('payload filters', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack?.close());

  const DOC = 'extraction.document_completed';
  const JOB = 'extraction.job_completed';

  async function extraction(parserId: string, reports: Array<Record<string, unknown>>): Promise<string> {
    const ext = await stack.api.platform.post('/internal/v1/extractions', { account_id: stack.account.accountId, parser_id: parserId, document_count: reports.length });
    expect(ext.status).toBe(201);
    const id: string = ext.body.extraction.extraction_id;
    for (const [i, report] of reports.entries()) {
      const res = await stack.api.platform.post(`/internal/v1/extractions/${id}/documents/doc_${i + 1}`, report);
      expect(res.status).toBe(202);
    }
    return id;
  }

  const seen = (received: Array<{ body: string }>) =>
    received.map((cb) => JSON.parse(cb.body) as { event: string; test: boolean; data: Record<string, unknown> })
      .map(({ event, test, data }) => ({ event, test, status: data.status, document_id: (data.document_id as string | undefined) ?? null }))
      .sort((x, y) => `${x.event} ${x.document_id ?? ''}`.localeCompare(`${y.event} ${y.document_id ?? ''}`));

  it('delivers to each webhook only the events whose data matches its filter', async () => {
    const problems = await stack.receiver();
    const invoices = await stack.receiver();
    const everything = await stack.receiver();
    const batches = await stack.receiver();
    const wProblems = await stack.createWebhook({ url: problems.url, events: [DOC, JOB], filter: { status: ['failed', 'partial'] } });
    const wInvoices = await stack.createWebhook({ url: invoices.url, events: [DOC], filter: { 'result.kind': 'invoice', 'result.pages': [1, 2] } });
    const wEverything = await stack.createWebhook({ url: everything.url, events: [DOC, JOB] });
    expect(wProblems.filter).toEqual({ status: ['failed', 'partial'] });
    expect(wEverything.filter).toBeNull();
    // A dashboard webhook (batch.* events) gets its filter by PATCH, as the Edit page sends it.
    const { webhook: wBatches } = await createWebhook(stack.api.deps, { accountId: stack.account.accountId, mode: 'test' }, { url: batches.url, events: ['batch.completed', 'batch.failed', 'batch.partial'] }, 'dashboard');
    const patched = await stack.v1.patch(`/v1/webhooks/${wBatches.id}`, { filter: { status: ['failed', 'partial'] } });
    expect(patched.status).toBe(200);

    // All completed, none an invoice: only the unfiltered webhook hears of it.
    await extraction('receipts', [{ status: 'completed', result: { kind: 'receipt', pages: 1 } }]);
    // One invoice of 2 pages, one of 5 pages, one failure: a partial extraction.
    const partial = await extraction('invoices', [
      { status: 'completed', result: { kind: 'invoice', pages: 2 } },
      { status: 'completed', result: { kind: 'invoice', pages: 5 } },
      { status: 'failed', error: { code: 'unreadable', message: 'blank page' } },
    ]);

    // 2 + 4 callbacks to the unfiltered webhook; the others' come in the same runs of the worker.
    await everything.waitFor(6);
    const got = {
      problems: seen(await problems.waitFor(2)),
      invoices: seen(await invoices.waitFor(1)),
      batches: seen(await batches.waitFor(1)),
    };
    expect(got).toEqual({
      problems: [
        { event: DOC, test: false, status: 'failed', document_id: 'doc_3' },
        { event: JOB, test: false, status: 'partial', document_id: null },
      ],
      invoices: [{ event: DOC, test: false, status: 'completed', document_id: 'doc_1' }],
      batches: [{ event: 'batch.partial', test: false, status: 'partial', document_id: null }],
    });
    expect(JSON.parse(invoices.received[0].body).data).toMatchObject({ extraction_id: partial, result: { kind: 'invoice', pages: 2 } });

    // Filtered-out events made no delivery at all: each log holds exactly what arrived.
    expect((await stack.deliveries(wProblems.id)).length).toBe(2);
    expect((await stack.deliveries(wInvoices.id)).length).toBe(1);
    expect((await stack.deliveries(wBatches.id)).length).toBe(1);
    expect((await stack.deliveries(wEverything.id)).length).toBe(6);
    expect(everything.received).toHaveLength(6);
    expect(problems.received).toHaveLength(2);
    expect(invoices.received).toHaveLength(1);
    expect(batches.received).toHaveLength(1);

    // Removing the filter lets everything through again.
    expect((await stack.v1.patch(`/v1/webhooks/${wInvoices.id}`, { filter: null })).body.webhook.filter).toBeNull();
    await extraction('receipts', [{ status: 'completed', result: { kind: 'receipt', pages: 9 } }]);
    const [after] = await eventually(async () => (invoices.received.length >= 2 ? invoices.received.slice(1) : undefined), 15_000, 'the unfiltered callback');
    expect(JSON.parse(after.body).data.result).toEqual({ kind: 'receipt', pages: 9 });
  });

  it('quota events are filtered by their data too, and a test send ignores the filter', async () => {
    await stack.freshAccount();
    const r = await stack.receiver();
    const w = await stack.createWebhook({ url: r.url, events: ['quota.warning'], filter: { limit: 1000 } });
    await stack.publish('quota.warning', { usage: 80, limit: 100 }, 0);
    await stack.publish('quota.warning', { usage: 800, limit: 1000 }, 1);

    const test = await stack.v1.post(`/v1/webhooks/${w.id}/test`);
    expect(test.status).toBe(200);
    expect(test.body.attempt.status).toBe('succeeded');

    const callbacks = (await r.waitFor(2)).map((cb) => JSON.parse(cb.body) as { event: string; test: boolean; data: Record<string, unknown> });
    // The test send is the webhook's own event with sample data, which the filter would refuse.
    const [real, sent] = [callbacks.filter((cb) => !cb.test), callbacks.filter((cb) => cb.test)];
    expect(real.map((cb) => [cb.event, cb.data.limit])).toEqual([['quota.warning', 1000]]);
    expect(sent.map((cb) => cb.event)).toEqual(['quota.warning']);
    expect(sent[0].data.limit).not.toBe(1000);
  });
});
