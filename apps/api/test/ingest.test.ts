import request from 'supertest';
import { unpackPayload } from '@hookline/db';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import {
  DASHBOARD_EVENTS,
  completedReport,
  createExtraction,
  eventCounts,
  failedReport,
  insertWebhook,
  listen,
  report,
  type Report,
} from './support/pipeline-fixtures';

// Ingest over the real app, PostgreSQL and Redis: extractions, document
// reports (exactly-once terminal events under racing reports), published
// events, the stored document result and Idempotency-Key.

let h: ApiHarness;

beforeAll(async () => {
  h = await startApiHarness();
});

afterAll(async () => {
  await h?.close();
});

describe('POST /internal/v1/extractions', () => {
  it('creates an extraction with a generated id', async () => {
    const { accountId } = await h.integrator();
    const res = await h.platform.post('/internal/v1/extractions', { account_id: accountId, parser_id: 'invoices', document_count: 3 });
    expect(res.status).toBe(201);
    expect(res.body.extraction).toEqual({
      extraction_id: expect.stringMatching(/^ext_[0-9A-Za-z]{22}$/),
      account_id: accountId,
      parser_id: 'invoices',
      document_count: 3,
      completed_count: 0,
      failed_count: 0,
      status: 'processing',
      completed_at: null,
      created_at: expect.any(String),
    });
  });

  it('keeps the platform’s extraction_id and answers a replay of the same creation with 200', async () => {
    const { accountId } = await h.integrator();
    const body = { account_id: accountId, extraction_id: 'batch-2026-11-23.001', document_count: 2 };
    const first = await h.platform.post('/internal/v1/extractions', body);
    expect(first.status).toBe(201);
    expect(first.body.extraction.extraction_id).toBe('batch-2026-11-23.001');
    const again = await h.platform.post('/internal/v1/extractions', body);
    expect(again.status).toBe(200);
    expect(again.body.extraction).toEqual(first.body.extraction);
  });

  it('refuses an existing extraction_id with other attributes', async () => {
    const { accountId } = await h.integrator();
    await h.platform.post('/internal/v1/extractions', { account_id: accountId, extraction_id: 'dup-1', document_count: 2 }).expect(201);
    const res = await h.platform.post('/internal/v1/extractions', { account_id: accountId, extraction_id: 'dup-1', document_count: 5 });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    expect(res.body.error.message).toMatch(/already exists.*use a new extraction_id/);
  });

  it('answers 404 for an unknown account and 400 for a bad body', async () => {
    const missing = await h.platform.post('/internal/v1/extractions', { account_id: 'acct_nope', document_count: 1 });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('RESOURCE_NOT_FOUND');

    const { accountId } = await h.integrator();
    const zero = await h.platform.post('/internal/v1/extractions', { account_id: accountId, document_count: 0 });
    expect(zero.status).toBe(400);
    expect(zero.body.error.details).toEqual([{ path: 'document_count', message: 'must be 1 or more' }]);

    const noBody = await h.platform.post('/internal/v1/extractions');
    expect(noBody.status).toBe(400);
    expect(noBody.body.error.details.map((d: { path: string }) => d.path)).toEqual(['account_id', 'document_count']);

    const notJson = await request(h.app).post('/internal/v1/extractions').set({ Authorization: `Bearer ${h.platformToken}`, 'Content-Type': 'application/json' }).send('{"account_id":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBe('INVALID_PAYLOAD');

    const badId = await h.platform.post('/internal/v1/extractions', { account_id: accountId, extraction_id: 'has space', document_count: 1 });
    expect(badId.status).toBe(400);
    expect(badId.body.error.details[0].path).toBe('extraction_id');
  });

  it('needs the platform token', async () => {
    const res = await request(h.app).post('/internal/v1/extractions').send({ account_id: 'acct_x', document_count: 1 });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHORIZED');
  });
});

describe('document reports', () => {
  it('emits extraction.document_completed with the contract’s data, then job_completed and batch.* on the last one', async () => {
    const { accountId } = await h.integrator();
    const api = await insertWebhook(h, accountId, { events: ['extraction.document_completed', 'extraction.job_completed'] });
    const ext = await createExtraction(h, accountId, { documentCount: 2, parserId: 'invoices' });

    const first = await report(h, ext.extraction_id, 'doc-1', completedReport('doc-1'));
    expect(first.status).toBe(202);
    expect(first.body).toEqual({
      accepted: true,
      duplicate: false,
      extraction: expect.objectContaining({ completed_count: 1, failed_count: 0, status: 'processing' }),
      events: [{ id: expect.stringMatching(/^evt_/), event: 'extraction.document_completed', deliveries: 1 }],
    });
    const event = await h.deps.db.prisma.event.findUniqueOrThrow({ where: { id: first.body.events[0].id } });
    expect(event.data).toEqual({
      extraction_id: ext.extraction_id,
      document_id: 'doc-1',
      parser_id: 'invoices',
      status: 'completed',
      file_name: 'doc-1.pdf',
      result: { total: 42, document: 'doc-1' },
    });
    expect(event.test).toBe(false);

    const last = await report(h, ext.extraction_id, 'doc-2', failedReport('doc-2'));
    expect(last.status).toBe(202);
    expect(last.body.extraction).toEqual(expect.objectContaining({ completed_count: 1, failed_count: 1, status: 'partial', completed_at: expect.any(String) }));
    expect(last.body.events.map((e: { event: string }) => e.event)).toEqual(['extraction.document_completed', 'extraction.job_completed', 'batch.partial']);
    // Only the API webhook is subscribed; batch.* goes to dashboard webhooks, none here.
    expect(last.body.events.map((e: { deliveries: number }) => e.deliveries)).toEqual([1, 1, 0]);

    const events = await h.deps.db.prisma.event.findMany({ where: { id: { in: last.body.events.map((e: { id: string }) => e.id) } } });
    const byName = Object.fromEntries(events.map((e) => [e.event, e.data]));
    expect(byName['extraction.document_completed']).toEqual({
      extraction_id: ext.extraction_id, document_id: 'doc-2', parser_id: 'invoices', status: 'failed', file_name: 'doc-2.pdf', error: 'unreadable scan',
    });
    const summary = { extraction_id: ext.extraction_id, parser_id: 'invoices', status: 'partial', document_count: 2, completed_count: 1, failed_count: 1 };
    expect(byName['extraction.job_completed']).toEqual(summary);
    expect(byName['batch.partial']).toEqual(summary);

    const deliveries = await h.deps.db.prisma.delivery.findMany({ where: { webhookId: api.id } });
    expect(deliveries).toHaveLength(3);
    expect(deliveries.every((d) => d.status === 'pending' && d.attemptCount === 0)).toBe(true);
    for (const d of deliveries) {
      const job = await h.queue.getJob(d.id);
      expect(job?.data).toEqual({ deliveryId: d.id });
    }
  });

  it('treats a second report of a document as a duplicate: nothing new is emitted and the first result stays', async () => {
    const { accountId } = await h.integrator();
    await insertWebhook(h, accountId);
    const ext = await createExtraction(h, accountId, { documentCount: 3 });
    await report(h, ext.extraction_id, 'doc-1', completedReport('doc-1')).expect(202);
    const before = await eventCounts(h, accountId);

    const again = await report(h, ext.extraction_id, 'doc-1', failedReport('doc-1'));
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ accepted: true, duplicate: true, extraction: expect.objectContaining({ completed_count: 1, failed_count: 0 }), events: [] });
    expect(await eventCounts(h, accountId)).toEqual(before);
    const doc = await h.deps.db.prisma.extractionDocument.findUniqueOrThrow({ where: { extractionId_documentId: { extractionId: ext.extraction_id, documentId: 'doc-1' } } });
    expect(doc.status).toBe('completed');
  });

  it('refuses more distinct documents than document_count, emitting nothing', async () => {
    const { accountId } = await h.integrator();
    await insertWebhook(h, accountId);
    const ext = await createExtraction(h, accountId, { documentCount: 1 });
    await report(h, ext.extraction_id, 'doc-1', completedReport('doc-1')).expect(202);
    const before = await eventCounts(h, accountId);

    const extra = await report(h, ext.extraction_id, 'doc-2', completedReport('doc-2'));
    expect(extra.status).toBe(400);
    expect(extra.body.error.code).toBe('INVALID_PAYLOAD');
    expect(extra.body.error.message).toMatch(/already has all 1 of its documents reported/);
    expect(await eventCounts(h, accountId)).toEqual(before);
    // The refused document left no row behind (the transaction rolled back).
    expect(await h.deps.db.prisma.extractionDocument.count({ where: { extractionId: ext.extraction_id } })).toBe(1);
    // A late duplicate of a known document is still just a duplicate.
    const dup = await report(h, ext.extraction_id, 'doc-1', completedReport('doc-1'));
    expect(dup.status).toBe(202);
    expect(dup.body.duplicate).toBe(true);
  });

  it('answers 404 for an unknown extraction and 400 for bad ids or bodies', async () => {
    const missing = await report(h, 'no-such-extraction', 'doc-1', completedReport('doc-1'));
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('RESOURCE_NOT_FOUND');

    const { accountId } = await h.integrator();
    const ext = await createExtraction(h, accountId, { documentCount: 2 });
    const badDoc = await report(h, ext.extraction_id, 'bad%20id', completedReport('x'));
    expect(badDoc.status).toBe(400);
    expect(badDoc.body.error.details).toEqual([{ path: 'document_id', message: 'may contain only letters, digits and . _ : -' }]);

    const resultOnFailure = await report(h, ext.extraction_id, 'doc-1', { status: 'failed', result: { a: 1 } });
    expect(resultOnFailure.status).toBe(400);
    expect(resultOnFailure.body.error.details).toEqual([{ path: 'result', message: 'must be absent when status is failed' }]);

    const badStatus = await report(h, ext.extraction_id, 'doc-1', { status: 'done' } as unknown as Report);
    expect(badStatus.status).toBe(400);
    expect(await h.deps.db.prisma.extractionDocument.count({ where: { extractionId: ext.extraction_id } })).toBe(0);
  });
});

describe('a failed document\'s error', () => {
  const reportError = (extractionId: string, documentId: string, error: unknown) =>
    h.platform.post(`/internal/v1/extractions/${extractionId}/documents/${documentId}`, { status: 'failed', file_name: `${documentId}.pdf`, error });

  it('takes an object and passes it on unchanged: in the event data and in the stored result', async () => {
    const owner = await h.integrator();
    await insertWebhook(h, owner.accountId, { events: ['extraction.document_completed'] });
    const ext = await createExtraction(h, owner.accountId, { documentCount: 2 });
    const error = { code: 'ocr_failed', message: 'Page 3 is unreadable', pages: [3], retryable: false, detail: { dpi: 72, engine: null } };

    const res = await reportError(ext.extraction_id, 'doc-1', error);
    expect(res.status).toBe(202);
    const event = await h.deps.db.prisma.event.findUniqueOrThrow({ where: { id: res.body.events[0].id } });
    expect(event.data).toEqual(expect.objectContaining({ status: 'failed', error }));

    const stored = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-1`).set(owner.auth);
    expect(stored.status).toBe(200);
    expect(stored.body).toEqual(expect.objectContaining({ status: 'failed', result: null, error }));
  });

  it('keeps a string a string (even one that looks like JSON), and a missing error null', async () => {
    const owner = await h.integrator();
    const ext = await createExtraction(h, owner.accountId, { documentCount: 2 });
    await reportError(ext.extraction_id, 'doc-1', '{"code":"not an object"}').expect(202);
    await h.platform.post(`/internal/v1/extractions/${ext.extraction_id}/documents/doc-2`, { status: 'failed' }).expect(202);

    const one = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-1`).set(owner.auth);
    expect(one.body.error).toBe('{"code":"not an object"}');
    const two = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-2`).set(owner.auth);
    expect(two.body.error).toBeNull();
    // Stored as JSONB: a JSON string for the first, SQL NULL (not JSON null) for the second.
    const rows = await h.deps.db.prisma.$queryRaw<Array<{ document_id: string; kind: string | null }>>`
      SELECT document_id, jsonb_typeof(error) AS kind FROM extraction_documents WHERE extraction_id = ${ext.extraction_id} ORDER BY document_id`;
    expect(rows).toEqual([{ document_id: 'doc-1', kind: 'string' }, { document_id: 'doc-2', kind: null }]);
  });

  it('accepts 4 KiB of JSON and refuses one byte more, naming the field; other types are refused too', async () => {
    const owner = await h.integrator();
    const ext = await createExtraction(h, owner.accountId, { documentCount: 2 });
    // JSON text of a string is its characters plus two quotes.
    const atLimit = 'x'.repeat(4094);
    const bigObject = { code: 'too_big', message: 'é'.repeat(2100) }; // 2 bytes per é in UTF-8

    const tooBig = await reportError(ext.extraction_id, 'doc-1', atLimit + 'x');
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.error.code).toBe('INVALID_PAYLOAD');
    expect(tooBig.body.error.details).toEqual([{ path: 'error', message: 'must be at most 4096 bytes (4 KiB) as JSON' }]);
    const tooBigObject = await reportError(ext.extraction_id, 'doc-1', bigObject);
    expect(tooBigObject.status).toBe(400);
    expect(tooBigObject.body.error.details[0].path).toBe('error');
    for (const wrong of [42, ['a', 'b'], true]) {
      const res = await reportError(ext.extraction_id, 'doc-1', wrong);
      expect(res.status).toBe(400);
      expect(res.body.error.details).toEqual([{ path: 'error', message: 'must be a string or a JSON object' }]);
    }
    expect(await h.deps.db.prisma.extractionDocument.count({ where: { extractionId: ext.extraction_id } })).toBe(0);

    await reportError(ext.extraction_id, 'doc-1', atLimit).expect(202);
    const stored = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-1`).set(owner.auth);
    expect(stored.body.error).toBe(atLimit);
  });

  it('refuses an unpaired UTF-16 surrogate in error or result with 400 (JSONB cannot store it), and keeps a paired one', async () => {
    const owner = await h.integrator();
    const ext = await createExtraction(h, owner.accountId, { documentCount: 2 });
    const documents = `/internal/v1/extractions/${ext.extraction_id}/documents`;
    const bad: Array<[string, object]> = [
      ['error', { status: 'failed', error: '\ud800' }],
      ['error', { status: 'failed', error: { detail: ['ok', 'x\udc00'] } }],
      ['error', { status: 'failed', error: { ['key\ud800']: 1 } }],
      ['result', { status: 'completed', result: { lines: [{ text: 'a\udbff' }] } }],
    ];
    for (const [path, body] of bad) {
      const res = await h.platform.post(`${documents}/doc-1`, body);
      expect({ body, status: res.status, code: res.body.error?.code, paths: res.body.error?.details?.map((d: { path: string }) => d.path) }).toEqual({ body, status: 400, code: 'INVALID_PAYLOAD', paths: [path] });
    }
    expect(await h.deps.db.prisma.extractionDocument.count({ where: { extractionId: ext.extraction_id } })).toBe(0);

    await h.platform.post(`${documents}/doc-1`, { status: 'completed', result: { emoji: '\ud83d\ude00 😀' } }).expect(202);
    const stored = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-1`).set(owner.auth);
    expect(stored.body.result).toEqual({ emoji: '😀 😀' });
  });
});

describe('racing reports', () => {
  const cases = [
    { name: 'all completed', outcome: 'completed', statusOf: (_i: number) => 'completed' as const },
    { name: 'all failed', outcome: 'failed', statusOf: (_i: number) => 'failed' as const },
    { name: 'mixed', outcome: 'partial', statusOf: (i: number) => (i % 3 === 0 ? ('failed' as const) : ('completed' as const)) },
  ];

  it.each(cases)('50 documents at once plus 10 duplicates ($name) → exactly one job_completed and one batch.$outcome', async ({ outcome, statusOf }) => {
    const { accountId } = await h.integrator();
    const api = await insertWebhook(h, accountId, { events: ['extraction.document_completed', 'extraction.job_completed'] });
    const dashboard = await insertWebhook(h, accountId, { source: 'dashboard', events: DASHBOARD_EVENTS });
    const ext = await createExtraction(h, accountId, { documentCount: 50, parserId: 'receipts' });
    const bodyOf = (i: number) => (statusOf(i) === 'completed' ? completedReport(`doc-${i}`) : failedReport(`doc-${i}`));
    const reports = Array.from({ length: 50 }, (_, i) => i);
    // Ten documents reported twice, interleaved with the rest.
    const sends = [...reports, 3, 7, 11, 19, 23, 29, 31, 37, 41, 49].sort(() => Math.random() - 0.5);

    const live = await listen(h);
    let answers: request.Response[];
    try {
      answers = await Promise.all(
        sends.map((i) => live.agent.post(`/internal/v1/extractions/${ext.extraction_id}/documents/doc-${i}`).set({ Authorization: `Bearer ${h.platformToken}` }).send(bodyOf(i))),
      );
    } finally {
      await live.close();
    }

    expect(answers.map((a) => a.status)).toEqual(sends.map(() => 202));
    expect(answers.filter((a) => a.body.duplicate)).toHaveLength(10);
    const emitted = answers.flatMap((a) => a.body.events as Array<{ id: string; event: string }>);
    expect(emitted.filter((e) => e.event === 'extraction.document_completed')).toHaveLength(50);
    expect(emitted.filter((e) => e.event === 'extraction.job_completed')).toHaveLength(1);
    // The terminal events come from one report, and it is the one whose extraction shows the final counts.
    const closer = answers.filter((a) => a.body.events.some((e: { event: string }) => e.event === 'extraction.job_completed'));
    expect(closer).toHaveLength(1);

    const failed = reports.filter((i) => statusOf(i) === 'failed').length;
    const expectedCounts = { document_count: 50, completed_count: 50 - failed, failed_count: failed };
    expect(closer[0].body.extraction).toEqual(expect.objectContaining({ ...expectedCounts, status: outcome }));

    // The events table agrees.
    expect(await eventCounts(h, accountId)).toEqual({ 'extraction.document_completed': 50, 'extraction.job_completed': 1, [`batch.${outcome}`]: 1 });
    const summaries = await h.deps.db.prisma.event.findMany({ where: { accountId, event: { in: ['extraction.job_completed', `batch.${outcome}`] } } });
    for (const s of summaries) expect(s.data).toEqual({ extraction_id: ext.extraction_id, parser_id: 'receipts', status: outcome, ...expectedCounts });
    const docs = await h.deps.db.prisma.event.findMany({ where: { accountId, event: 'extraction.document_completed' } });
    expect(new Set(docs.map((d) => (unpackPayload(d.data, d.dataZ) as { document_id: string }).document_id)).size).toBe(50);

    const row = await h.deps.db.prisma.extraction.findUniqueOrThrow({ where: { id: ext.extraction_id } });
    expect(row).toEqual(expect.objectContaining({ status: outcome, completedCount: 50 - failed, failedCount: failed, completedAt: expect.any(Date) }));

    // Deliveries: 50 + 1 to the API webhook, the one batch.* to the dashboard webhook, each with its job in BullMQ.
    // The account and event name are the webhook's and the event's (a delivery's own copies are NULL in the compact history).
    const deliveries = await h.deps.db.prisma.delivery.findMany({ where: { webhook: { accountId } }, include: { eventRecord: { select: { event: true } } } });
    expect(deliveries.filter((d) => d.webhookId === api.id)).toHaveLength(51);
    expect(deliveries.filter((d) => d.webhookId === dashboard.id).map((d) => d.eventRecord.event)).toEqual([`batch.${outcome}`]);
    const jobs = await Promise.all(deliveries.map((d) => h.queue.getJob(d.id)));
    expect(jobs.map((j) => j?.data.deliveryId)).toEqual(deliveries.map((d) => d.id));
    const queued = await h.queue.getJobs(['waiting', 'prioritized', 'delayed']);
    const ours = new Set(deliveries.map((d) => d.id));
    expect(queued.filter((j) => ours.has(j.data.deliveryId))).toHaveLength(52);
  });
});

describe('GET /v1/extractions/:extraction_id/documents/:document_id', () => {
  it('returns the stored result to the owning account, whatever its plan', async () => {
    const owner = await h.integrator({ plan: 'free' });
    const ext = await createExtraction(h, owner.accountId, { documentCount: 2, parserId: 'invoices' });
    await report(h, ext.extraction_id, 'doc-1', completedReport('doc-1')).expect(202);
    await report(h, ext.extraction_id, 'doc-2', failedReport('doc-2')).expect(202);

    const ok = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-1`).set(owner.auth);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({
      extraction_id: ext.extraction_id,
      document_id: 'doc-1',
      parser_id: 'invoices',
      status: 'completed',
      file_name: 'doc-1.pdf',
      result: { total: 42, document: 'doc-1' },
      error: null,
      reported_at: expect.any(String),
    });
    const failed = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-2`).set({ 'X-API-Key': owner.key });
    expect(failed.status).toBe(200);
    expect(failed.body).toEqual(expect.objectContaining({ status: 'failed', result: null, error: 'unreadable scan' }));

    const notYet = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-3`).set(owner.auth);
    expect(notYet.status).toBe(404);
    expect(notYet.body.error.code).toBe('RESOURCE_NOT_FOUND');

    const stranger = await h.integrator();
    const other = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-1`).set(stranger.auth);
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('RESOURCE_NOT_FOUND');

    const anonymous = await request(h.app).get(`/v1/extractions/${ext.extraction_id}/documents/doc-1`);
    expect(anonymous.status).toBe(401);
  });
});

describe('POST /internal/v1/events', () => {
  it('publishes an event to the subscribed webhooks and enqueues it', async () => {
    const { accountId } = await h.integrator();
    const quota = await insertWebhook(h, accountId, { events: ['quota.warning'] });
    await insertWebhook(h, accountId, { events: ['extraction.document_completed'] });

    const res = await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.warning', data: { usage: 800, limit: 1000 } });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ event: { id: expect.stringMatching(/^evt_/), event: 'quota.warning', deliveries: 1 } });
    const event = await h.deps.db.prisma.event.findUniqueOrThrow({ where: { id: res.body.event.id } });
    expect(event).toEqual(expect.objectContaining({ accountId, event: 'quota.warning', parserId: null, data: { usage: 800, limit: 1000 }, test: false }));
    const [delivery] = await h.deps.db.prisma.delivery.findMany({ where: { eventId: event.id } });
    expect(delivery.webhookId).toBe(quota.id);
    expect((await h.queue.getJob(delivery.id))?.data).toEqual({ deliveryId: delivery.id });
  });

  it('answers 404 for an unknown account and 400 for an unknown event', async () => {
    const missing = await h.platform.post('/internal/v1/events', { account_id: 'acct_nope', event: 'quota.warning', data: { usage: 80, limit: 100 } });
    expect(missing.status).toBe(404);
    const { accountId } = await h.integrator();
    const unknown = await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.nearly' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details[0].path).toBe('event');
  });
});

describe('Idempotency-Key on ingest', () => {
  it('replays the first answer for the same key and body, and refuses another body', async () => {
    const { accountId } = await h.integrator();
    await insertWebhook(h, accountId, { events: ['quota.exceeded'] });
    const body = { account_id: accountId, event: 'quota.exceeded', data: { usage: 1001, limit: 1000 } };
    const send = (b: object) => h.platform.post('/internal/v1/events', b).set('Idempotency-Key', `quota-${accountId}`);

    const first = await send(body);
    expect(first.status).toBe(202);
    const again = await send(body);
    expect(again.status).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(await eventCounts(h, accountId)).toEqual({ 'quota.exceeded': 1 });

    const other = await send({ ...body, data: { usage: 2000, limit: 1000 } });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('makes a retried document report harmless under the same key', async () => {
    const { accountId } = await h.integrator();
    await insertWebhook(h, accountId);
    const ext = await createExtraction(h, accountId, { documentCount: 2 });
    const send = () => report(h, ext.extraction_id, 'doc-1', completedReport('doc-1')).set('Idempotency-Key', 'report-doc-1');
    const first = await send();
    const second = await send();
    expect(second.body).toEqual(first.body);
    expect(second.body.duplicate).toBe(false);
    expect(await eventCounts(h, accountId)).toEqual({ 'extraction.document_completed': 1 });
  });
});
