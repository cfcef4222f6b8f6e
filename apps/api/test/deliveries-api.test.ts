import request from 'supertest';
import { eventDataSchemas, newId } from '@hookline/domain';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { startReceiver, type Receiver } from '../../../tests/support/receiver';
import { verifyBrandSignature, verifyStandardWebhook } from '../../../tests/support/verifier';
import { startWorkerHarness, type WorkerHarness } from '../../../tests/support/worker-harness';
import { sendTest } from '../src/services/webhooks';
import { insertWebhook } from './support/pipeline-fixtures';
import { waitUntil } from '../../../tests/support/wait-until';

// The integrator's delivery endpoints over the real app, PostgreSQL and Redis:
// the delivery log (filters, keyset pages), one delivery with its attempts,
// manual retry (with Idempotency-Key), recovery of a failed window, secret
// rotation and test sends, each limited to the caller's own account.

let h: ApiHarness;

beforeAll(async () => {
  h = await startApiHarness();
});

afterAll(async () => {
  await h?.close();
});

type Integrator = Awaited<ReturnType<ApiHarness['integrator']>>;

async function createWebhook(who: Integrator, body: Record<string, unknown> = {}) {
  const res = await request(h.app)
    .post('/v1/webhooks')
    .set(who.auth)
    .send({ url: `http://127.0.0.1:9/${newId('webhook')}`, events: ['quota.warning', 'quota.exceeded', 'extraction.document_completed'], ...body });
  if (res.status !== 201) throw new Error(`create webhook: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.webhook as { id: string; signing_secret: string };
}

/** Publishes `count` events of one kind and returns the delivery rows they made for `webhookId`. */
async function deliveriesFor(who: Integrator, webhookId: string, count: number, event = 'quota.warning') {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await h.platform.post('/internal/v1/events', { account_id: who.accountId, event, data: { usage: i, limit: 100, n: i } }).expect(202);
    ids.push(res.body.event.id);
  }
  return h.deps.db.prisma.delivery.findMany({ where: { webhookId, eventId: { in: ids } } });
}

/** Once-jobs (manual retries, recoveries) queued for these deliveries. */
async function onceJobs(deliveryIds: string[]) {
  const wanted = new Set(deliveryIds);
  const jobs = await h.queue.getJobs(['waiting', 'prioritized', 'delayed']);
  return jobs.filter((job) => job.data.once && wanted.has(job.data.deliveryId));
}

describe('GET /v1/webhooks/:id/deliveries', () => {
  let owner: Integrator;
  let webhookId: string;
  let newestFirst: string[];

  beforeAll(async () => {
    owner = await h.integrator();
    webhookId = (await createWebhook(owner)).id;
    const warnings = await deliveriesFor(owner, webhookId, 5, 'quota.warning');
    const exceeded = await deliveriesFor(owner, webhookId, 2, 'quota.exceeded');
    // Three rows created in the same millisecond: the id breaks the tie, so pages neither skip nor repeat.
    const tie = new Date();
    await h.deps.db.prisma.delivery.updateMany({ where: { id: { in: warnings.slice(2, 5).map((d) => d.id) } }, data: { createdAt: tie } });
    await h.deps.db.prisma.delivery.update({ where: { id: warnings[0].id }, data: { status: 'failed' } });
    await h.deps.db.prisma.delivery.update({ where: { id: exceeded[0].id }, data: { status: 'succeeded', attemptCount: 1, lastAttemptAt: new Date() } });
    const all = await h.deps.db.prisma.delivery.findMany({ where: { webhookId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
    newestFirst = all.map((d) => d.id);
    expect(newestFirst).toHaveLength(7);
  });

  const list = (query: Record<string, string | number> = {}) => request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`).query(query).set(owner.auth);

  it('lists the deliveries newest first as delivery objects', async () => {
    const res = await list();
    expect(res.status).toBe(200);
    expect(res.body.has_more).toBe(false);
    expect(res.body.next_cursor).toBeNull();
    expect(res.body.data.map((d: { id: string }) => d.id)).toEqual(newestFirst);
    const succeeded = res.body.data.find((d: { status: string }) => d.status === 'succeeded');
    expect(succeeded).toEqual({
      id: expect.stringMatching(/^dlv_/),
      webhook_id: webhookId,
      event_id: expect.stringMatching(/^evt_/),
      event: 'quota.exceeded',
      status: 'succeeded',
      attempt_count: 1,
      next_attempt_at: null,
      last_attempt_at: expect.any(String),
      created_at: expect.any(String),
    });
    const pending = res.body.data.find((d: { status: string }) => d.status === 'pending');
    expect(pending.next_attempt_at).toEqual(expect.any(String));
  });

  it('walks every page with the cursor, neither skipping nor repeating', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await list({ limit: 2, ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      seen.push(...res.body.data.map((d: { id: string }) => d.id));
      cursor = res.body.next_cursor;
      expect(res.body.has_more).toBe(cursor !== null);
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual(newestFirst);
  });

  it('filters by status and by event', async () => {
    const failed = await list({ status: 'failed' });
    expect(failed.body.data.map((d: { status: string }) => d.status)).toEqual(['failed']);
    const exceeded = await list({ event: 'quota.exceeded' });
    expect(exceeded.body.data).toHaveLength(2);
    expect(exceeded.body.data.every((d: { event: string }) => d.event === 'quota.exceeded')).toBe(true);
    const both = await list({ event: 'quota.exceeded', status: 'pending', limit: 1 });
    expect(both.body.data).toHaveLength(1);
    expect(both.body.has_more).toBe(false);
  });

  it('refuses a bad cursor, limit, status or event with 400', async () => {
    for (const [query, path] of [
      [{ cursor: 'not-a-cursor' }, 'cursor'],
      [{ limit: 101 }, 'limit'],
      [{ limit: 0 }, 'limit'],
      [{ status: 'lost' }, 'status'],
      [{ event: 'quota.nearly' }, 'event'],
    ] as const) {
      const res = await list(query);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_PAYLOAD');
      expect(res.body.error.details[0].path).toBe(path);
    }
  });

  it('hides another account’s webhook, needs a key and a paid plan', async () => {
    const stranger = await h.integrator();
    const other = await request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`).set(stranger.auth);
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('RESOURCE_NOT_FOUND');
    expect((await request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`)).status).toBe(401);
    const free = await h.integrator({ plan: 'free' });
    const refused = await request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`).set(free.auth);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('PLAN_REQUIRED');
  });
});

describe('GET /v1/deliveries/:id', () => {
  it('returns the delivery and its attempts in attempt order', async () => {
    const owner = await h.integrator();
    const webhook = await createWebhook(owner);
    const [delivery] = await deliveriesFor(owner, webhook.id, 1);
    const base = { deliveryId: delivery.id, webhookId: webhook.id, eventId: delivery.eventId, event: delivery.event, durationMs: 12 };
    // Written out of order on purpose: the answer sorts by attempt_number.
    await h.deps.db.prisma.attempt.create({ data: { ...base, id: newId('attempt'), attemptNumber: 2, status: 'succeeded', responseStatus: 200, responseBody: 'ok' } });
    await h.deps.db.prisma.attempt.create({
      data: { ...base, id: newId('attempt'), attemptNumber: 1, status: 'failed', responseStatus: 503, responseBody: 'busy', nextRetryAt: new Date(Date.now() + 300_000) },
    });
    await h.deps.db.prisma.delivery.update({ where: { id: delivery.id }, data: { status: 'succeeded', attemptCount: 2, lastAttemptAt: new Date() } });

    const res = await request(h.app).get(`/v1/deliveries/${delivery.id}`).set(owner.auth);
    expect(res.status).toBe(200);
    expect(res.body.delivery).toEqual(expect.objectContaining({ id: delivery.id, webhook_id: webhook.id, status: 'succeeded', attempt_count: 2 }));
    expect(res.body.attempts.map((a: { attempt_number: number }) => a.attempt_number)).toEqual([1, 2]);
    expect(res.body.attempts[0]).toEqual({
      id: expect.stringMatching(/^att_/),
      delivery_id: delivery.id,
      event_id: delivery.eventId,
      event: 'quota.warning',
      attempt_number: 1,
      status: 'failed',
      response_status: 503,
      response_body: 'busy',
      error: null,
      duration_ms: 12,
      created_at: expect.any(String),
      next_retry_at: expect.any(String),
    });
  });

  it('answers 404 for another account’s delivery, a deleted webhook’s delivery and an unknown id', async () => {
    const owner = await h.integrator();
    const webhook = await createWebhook(owner);
    const [delivery] = await deliveriesFor(owner, webhook.id, 1);
    const stranger = await h.integrator();
    expect((await request(h.app).get(`/v1/deliveries/${delivery.id}`).set(stranger.auth)).status).toBe(404);
    expect((await request(h.app).get('/v1/deliveries/dlv_doesnotexist').set(owner.auth)).status).toBe(404);
    expect((await request(h.app).get('/v1/deliveries/%27%3B--').set(owner.auth)).status).toBe(404);

    await request(h.app).delete(`/v1/webhooks/${webhook.id}`).set(owner.auth).expect(204);
    const gone = await request(h.app).get(`/v1/deliveries/${delivery.id}`).set(owner.auth);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('RESOURCE_NOT_FOUND');
    expect((await request(h.app).get(`/v1/webhooks/${webhook.id}/deliveries`).set(owner.auth)).status).toBe(404);
  });
});

describe('POST /v1/deliveries/:id/retry', () => {
  it('queues one more attempt whatever the state, as a job of its own', async () => {
    const owner = await h.integrator();
    const webhook = await createWebhook(owner);
    const [delivery] = await deliveriesFor(owner, webhook.id, 1);
    await h.deps.db.prisma.delivery.update({ where: { id: delivery.id }, data: { status: 'succeeded', attemptCount: 1 } });

    const res = await request(h.app).post(`/v1/deliveries/${delivery.id}/retry`).set(owner.auth);
    expect(res.status).toBe(202);
    expect(res.body.delivery).toEqual(expect.objectContaining({ id: delivery.id, status: 'succeeded', attempt_count: 1 }));
    const [job] = await onceJobs([delivery.id]);
    expect(job.data).toEqual({ deliveryId: delivery.id, once: true });
    expect(job.opts.attempts).toBe(1);
    // The first-try job (jobId = delivery id) is still there, untouched.
    expect((await h.queue.getJob(delivery.id))?.data).toEqual({ deliveryId: delivery.id });
  });

  it('honours Idempotency-Key: the same key answers the stored 202 and queues nothing more', async () => {
    const owner = await h.integrator();
    const webhook = await createWebhook(owner);
    const [delivery] = await deliveriesFor(owner, webhook.id, 1);
    const retry = () => request(h.app).post(`/v1/deliveries/${delivery.id}/retry`).set(owner.auth).set('Idempotency-Key', 'retry-once');

    const first = await retry();
    expect(first.status).toBe(202);
    const second = await retry();
    expect(second.status).toBe(202);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.body).toEqual(first.body);
    expect(await onceJobs([delivery.id])).toHaveLength(1);

    // Another account using the same key is a different scope, and still cannot see the delivery.
    const stranger = await h.integrator();
    const foreign = await request(h.app).post(`/v1/deliveries/${delivery.id}/retry`).set(stranger.auth).set('Idempotency-Key', 'retry-once');
    expect(foreign.status).toBe(404);
  });
});

describe('POST /v1/webhooks/:id/recover', () => {
  it('requeues every failed delivery created in [since, until] and nothing else', async () => {
    const owner = await h.integrator();
    const webhook = await createWebhook(owner);
    const rows = await deliveriesFor(owner, webhook.id, 5);
    const at = (iso: string) => new Date(iso);
    const set = (i: number, status: string, createdAt: string) => h.deps.db.prisma.delivery.update({ where: { id: rows[i].id }, data: { status, createdAt: at(createdAt) } });
    await set(0, 'failed', '2026-11-23T09:59:59.999Z'); // before the window
    await set(1, 'failed', '2026-11-23T10:00:00.000Z'); // on its first instant
    await set(2, 'failed', '2026-11-23T10:30:00.000Z');
    await set(3, 'succeeded', '2026-11-23T10:30:00.000Z'); // not failed
    await set(4, 'failed', '2026-11-23T11:00:00.001Z'); // after it
    const recover = (body: object) => request(h.app).post(`/v1/webhooks/${webhook.id}/recover`).set(owner.auth).send(body);

    const res = await recover({ since: '2026-11-23T10:00:00Z', until: '2026-11-23T11:00:00Z' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ requeued: 2 });
    const jobs = await onceJobs(rows.map((r) => r.id));
    expect(jobs.map((j) => j.data.deliveryId).sort()).toEqual([rows[1].id, rows[2].id].sort());

    // `until` defaults to now.
    const open = await recover({ since: '2026-11-23T10:00:00+00:00' });
    expect(open.body).toEqual({ requeued: 3 });
  });

  it('refuses a window that ends before it starts, or no since', async () => {
    const owner = await h.integrator();
    const webhook = await createWebhook(owner);
    const backwards = await request(h.app).post(`/v1/webhooks/${webhook.id}/recover`).set(owner.auth).send({ since: '2026-11-23T11:00:00Z', until: '2026-11-23T10:00:00Z' });
    expect(backwards.status).toBe(400);
    expect(backwards.body.error.details).toEqual([{ path: 'since', message: 'must not be later than until' }]);
    const missing = await request(h.app).post(`/v1/webhooks/${webhook.id}/recover`).set(owner.auth).send({});
    expect(missing.status).toBe(400);
    expect(missing.body.error.details[0].path).toBe('since');
    const notTime = await request(h.app).post(`/v1/webhooks/${webhook.id}/recover`).set(owner.auth).send({ since: 'yesterday' });
    expect(notTime.status).toBe(400);

    const stranger = await h.integrator();
    const other = await request(h.app).post(`/v1/webhooks/${webhook.id}/recover`).set(stranger.auth).send({ since: '2026-11-23T10:00:00Z' });
    expect(other.status).toBe(404);
  });
});

describe('POST /v1/webhooks/:id/rotate-secret', () => {
  it('issues a new secret and keeps the old one, encrypted, for 24 hours', async () => {
    const owner = await h.integrator();
    const webhook = await createWebhook(owner);

    const res = await request(h.app).post(`/v1/webhooks/${webhook.id}/rotate-secret`).set(owner.auth);
    expect(res.status).toBe(200);
    expect(res.body.webhook).toEqual(expect.objectContaining({ id: webhook.id, status: 'active', signing_secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/) }));
    const fresh = res.body.webhook.signing_secret as string;
    expect(fresh).not.toBe(webhook.signing_secret);

    const row = await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhook.id } });
    expect(h.deps.secretBox.decrypt(row.signingSecretEnc)).toBe(fresh);
    expect(h.deps.secretBox.decrypt(row.previousSecretEnc!)).toBe(webhook.signing_secret);
    expect(Math.abs(row.previousSecretExpires!.getTime() - (Date.now() + 24 * 3_600_000))).toBeLessThan(60_000);
    // Stored encrypted only.
    expect(JSON.stringify(row)).not.toContain(fresh);
    expect(JSON.stringify(row)).not.toContain(webhook.signing_secret);

    // A second rotation retires the first new secret, not the original.
    const again = await request(h.app).post(`/v1/webhooks/${webhook.id}/rotate-secret`).set(owner.auth).expect(200);
    const after = await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhook.id } });
    expect(h.deps.secretBox.decrypt(after.previousSecretEnc!)).toBe(fresh);
    expect(h.deps.secretBox.decrypt(after.signingSecretEnc)).toBe(again.body.webhook.signing_secret);

    // Reads never show a secret again.
    const read = await request(h.app).get(`/v1/webhooks/${webhook.id}`).set(owner.auth);
    expect(JSON.stringify(read.body)).not.toMatch(/whsec_/);
  });

  it('answers 404 for another account’s or a deleted webhook', async () => {
    const owner = await h.integrator();
    const webhook = await createWebhook(owner);
    const stranger = await h.integrator();
    expect((await request(h.app).post(`/v1/webhooks/${webhook.id}/rotate-secret`).set(stranger.auth)).status).toBe(404);
    await request(h.app).delete(`/v1/webhooks/${webhook.id}`).set(owner.auth).expect(204);
    expect((await request(h.app).post(`/v1/webhooks/${webhook.id}/rotate-secret`).set(owner.auth)).status).toBe(404);
    const row = await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhook.id } });
    expect(row.previousSecretEnc).toBeNull();
  });
});

describe('POST /v1/webhooks/:id/test without a worker', () => {
  it('answers 404 for another account’s, a deleted or an unknown webhook, writing nothing', async () => {
    const owner = await h.integrator();
    const webhook = await insertWebhook(h, owner.accountId);
    const deleted = await insertWebhook(h, owner.accountId, { deleted: true });
    const stranger = await h.integrator();
    for (const [who, id] of [[stranger, webhook.id], [owner, deleted.id], [owner, 'wh_unknown']] as const) {
      const res = await request(h.app).post(`/v1/webhooks/${id}/test`).set(who.auth);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('RESOURCE_NOT_FOUND');
    }
    expect(await h.deps.db.prisma.event.count({ where: { accountId: { in: [owner.accountId, stranger.accountId] } } })).toBe(0);
  });

  it('writes a test event for this webhook only, and gives up with 503 when no worker records an attempt', async () => {
    const owner = await h.integrator();
    const target = await insertWebhook(h, owner.accountId, { events: ['extraction.job_completed'], parserId: 'invoices' });
    const bystander = await insertWebhook(h, owner.accountId, { events: ['extraction.job_completed'] });

    const started = Date.now();
    await expect(sendTest(h.deps, owner.accountId, target.id, { waitMs: 300, pollMs: 20 })).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      message: 'The delivery worker did not pick up the test in time; is a worker running?',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);

    const event = await h.deps.db.prisma.event.findFirstOrThrow({ where: { accountId: owner.accountId } });
    expect(event).toEqual(expect.objectContaining({ event: 'extraction.job_completed', test: true, parserId: 'invoices' }));
    expect(event.data).toEqual({
      extraction_id: expect.stringMatching(/^ext_test_/),
      parser_id: 'invoices',
      status: 'completed',
      document_count: 1,
      completed_count: 1,
      failed_count: 0,
    });
    const deliveries = await h.deps.db.prisma.delivery.findMany({ where: { eventId: event.id } });
    expect(deliveries.map((d) => d.webhookId)).toEqual([target.id]);
    expect(deliveries.map((d) => d.webhookId)).not.toContain(bystander.id);
    // It was queued, and is cancelled now that the caller was told it failed.
    expect((await h.queue.getJob(deliveries[0].id))?.data).toEqual({ deliveryId: deliveries[0].id });
    expect(deliveries[0].status).toBe('cancelled');
  });

  it('sends an event the webhook is subscribed to: a dashboard webhook\'s batch.*, an API webhook\'s first event in catalog order', async () => {
    const owner = await h.integrator();
    const cases = [
      { events: ['batch.completed', 'batch.failed', 'batch.partial'], source: 'dashboard' as const, sent: 'batch.completed' },
      { events: ['batch.partial'], source: 'dashboard' as const, sent: 'batch.partial' },
      { events: ['quota.exceeded', 'extraction.document_completed'], source: 'api' as const, sent: 'extraction.document_completed' },
      { events: ['quota.warning'], source: 'api' as const, sent: 'quota.warning' },
    ];
    for (const { events, source, sent } of cases) {
      const webhook = await insertWebhook(h, owner.accountId, { events, source, parserId: 'invoices' });
      await expect(sendTest(h.deps, owner.accountId, webhook.id, { waitMs: 50, pollMs: 10 })).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      const delivery = await h.deps.db.prisma.delivery.findFirstOrThrow({ where: { webhookId: webhook.id }, include: { eventRecord: true } });
      expect(delivery.eventRecord.event).toBe(sent);
      expect(events).toContain(delivery.eventRecord.event);
      // Valid data for that event, as a real one would carry.
      expect(eventDataSchemas[sent as keyof typeof eventDataSchemas].safeParse(delivery.eventRecord.data).success).toBe(true);
    }
  });
});

describe('with the real worker', () => {
  // A harness of its own: the worker must not pick up the other tests' queued jobs.
  let e: ApiHarness;
  let worker: WorkerHarness;
  let receiver: Receiver;
  let owner: Integrator;

  beforeAll(async () => {
    e = await startApiHarness();
    worker = await startWorkerHarness({ databaseUrl: e.database.url, prefix: e.prefix, encryptionKey: e.encryptionKey });
    receiver = await startReceiver();
    owner = await e.integrator();
  });

  afterAll(async () => {
    await worker?.close();
    await receiver?.close();
    await e?.close();
  });

  async function webhookAt(path: string, body: Record<string, unknown> = {}) {
    const res = await request(e.app).post('/v1/webhooks').set(owner.auth).send({ url: `${receiver.url}/${path}`, events: ['extraction.document_completed'], ...body });
    if (res.status !== 201) throw new Error(`create webhook: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.webhook as { id: string; signing_secret: string; parser_id: string | null };
  }

  const callbacksTo = (path: string) => receiver.received.filter((r) => r.path === `/hooks/${path}`);

  it('POST /v1/webhooks/:id/test answers with the attempt once the worker sent the signed test callback', async () => {
    receiver.respond({ status: 200, body: '{"ok":true}' });
    const webhook = await webhookAt('ok', { parser_id: 'invoices', events: ['extraction.job_completed'] });

    const res = await request(e.app).post(`/v1/webhooks/${webhook.id}/test`).set(owner.auth);
    expect(res.status).toBe(200);
    expect(res.body.attempt).toEqual({
      id: expect.stringMatching(/^att_/),
      delivery_id: expect.stringMatching(/^dlv_/),
      event_id: expect.stringMatching(/^evt_/),
      event: 'extraction.job_completed',
      attempt_number: 1,
      status: 'succeeded',
      response_status: 200,
      response_body: '{"ok":true}',
      error: null,
      duration_ms: expect.any(Number),
      created_at: expect.any(String),
      next_retry_at: null,
    });

    const [callback] = callbacksTo('ok');
    const payload = JSON.parse(callback.body);
    expect(payload).toEqual({
      id: res.body.attempt.event_id,
      event: 'extraction.job_completed',
      created_at: expect.any(String),
      test: true,
      data: { extraction_id: expect.stringMatching(/^ext_test_/), parser_id: 'invoices', status: 'completed', document_count: 1, completed_count: 1, failed_count: 0 },
    });
    expect(callback.headers['x-perfectparser-event']).toBe('extraction.job_completed');
    expect(callback.headers['x-perfectparser-delivery']).toBe(res.body.attempt.delivery_id);
    expect(verifyBrandSignature(webhook.signing_secret, callback.body, callback.headers)).toBe(true);
    expect(verifyStandardWebhook(webhook.signing_secret, callback.body, callback.headers)).toBe(true);
  });

  it('reports a failing endpoint as a failed attempt and never retries a test', async () => {
    receiver.respond((req) => (req.path === '/hooks/broken' ? { status: 500, body: 'boom' } : { status: 200 }));
    const webhook = await webhookAt('broken');

    const res = await request(e.app).post(`/v1/webhooks/${webhook.id}/test`).set(owner.auth);
    expect(res.status).toBe(200);
    expect(res.body.attempt).toEqual(expect.objectContaining({ status: 'failed', response_status: 500, response_body: 'boom', next_retry_at: null }));
    // No job of it is left to run (none was scheduled as a retry): still one callback.
    await waitUntil(async () => {
      const jobs = await e.queue.getJobs(['waiting', 'prioritized', 'active', 'delayed']);
      return !jobs.some((job) => job.data.deliveryId === res.body.attempt.delivery_id);
    }, 'no job of the test delivery left');
    expect(callbacksTo('broken')).toHaveLength(1);
    const delivery = await e.deps.db.prisma.delivery.findUniqueOrThrow({ where: { id: res.body.attempt.delivery_id } });
    expect(delivery).toEqual(expect.objectContaining({ status: 'failed', attemptCount: 1 }));
  });

  it('tests a paused webhook too, and signs with both secrets during a rotation', async () => {
    receiver.respond({ status: 204 });
    const webhook = await webhookAt('rotated');
    await request(e.app).patch(`/v1/webhooks/${webhook.id}`).set(owner.auth).send({ is_active: false }).expect(200);
    const rotated = await request(e.app).post(`/v1/webhooks/${webhook.id}/rotate-secret`).set(owner.auth).expect(200);
    const fresh = rotated.body.webhook.signing_secret as string;

    const res = await request(e.app).post(`/v1/webhooks/${webhook.id}/test`).set(owner.auth);
    expect(res.status).toBe(200);
    expect(res.body.attempt.status).toBe('succeeded');
    const [callback] = callbacksTo('rotated');
    expect(String(callback.headers['x-perfectparser-signature']).split(',')).toHaveLength(2);
    for (const secret of [webhook.signing_secret, fresh]) {
      expect(verifyBrandSignature(secret, callback.body, callback.headers)).toBe(true);
      expect(verifyStandardWebhook(secret, callback.body, callback.headers)).toBe(true);
    }
  });

  it('a manual retry of a delivered event sends it once more, with the same delivery id', async () => {
    receiver.respond({ status: 200 });
    const webhook = await webhookAt('retried');
    const ext = await e.platform.post('/internal/v1/extractions', { account_id: owner.accountId, document_count: 2 }).expect(201);
    const reported = await e.platform
      .post(`/internal/v1/extractions/${ext.body.extraction.extraction_id}/documents/doc-1`, { status: 'completed', result: { ok: true } })
      .expect(202);
    // The earlier tests' webhooks are subscribed too; follow this one's delivery.
    const delivery = await e.deps.db.prisma.delivery.findFirstOrThrow({ where: { eventId: reported.body.events[0].id, webhookId: webhook.id } });
    await waitForAttempts(delivery.id, 1);

    const retry = await request(e.app).post(`/v1/deliveries/${delivery.id}/retry`).set(owner.auth);
    expect(retry.status).toBe(202);
    await waitForAttempts(delivery.id, 2);
    const detail = await request(e.app).get(`/v1/deliveries/${delivery.id}`).set(owner.auth).expect(200);
    expect(detail.body.delivery).toEqual(expect.objectContaining({ id: delivery.id, webhook_id: webhook.id, status: 'succeeded', attempt_count: 2 }));
    expect(detail.body.attempts.map((a: { attempt_number: number; status: string }) => [a.attempt_number, a.status])).toEqual([[1, 'succeeded'], [2, 'succeeded']]);
    const sent = callbacksTo('retried');
    expect(sent).toHaveLength(2);
    expect(sent.map((c) => c.headers['x-perfectparser-delivery'])).toEqual([delivery.id, delivery.id]);
    expect(sent[1].body).toBe(sent[0].body);
  });

  async function waitForAttempts(deliveryId: string, count: number) {
    await waitUntil(async () => (await e.deps.db.prisma.attempt.count({ where: { deliveryId } })) >= count, `delivery ${deliveryId} at ${count} attempt(s)`, { timeoutMs: 15_000, intervalMs: 50 });
  }
});
