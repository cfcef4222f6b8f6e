import request from 'supertest';
import { pingRedis } from '@hookline/queue';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { ownRedisServer, type OwnRedis } from '../../../tests/support/local-services';
import { waitUntil } from '../../../tests/support/wait-until';
import { DASHBOARD_EVENTS, completedReport, createExtraction, failedReport, insertWebhook, report } from './support/pipeline-fixtures';

// The outbox: which webhooks get a delivery row for an event (subscription,
// parser scope, state, source), and that an event is accepted and kept when
// Redis is down at ingest (the rows stay `pending` for the relay).

describe('delivery rows: who gets what', () => {
  let h: ApiHarness;

  beforeAll(async () => {
    h = await startApiHarness();
  });

  afterAll(async () => {
    await h?.close();
  });

  it('follows subscriptions, parser scope and webhook state', async () => {
    const { accountId } = await h.integrator();
    const all = ['extraction.document_completed', 'extraction.job_completed'];
    const hooks = {
      anyParser: await insertWebhook(h, accountId, { events: all }),
      scopedP1: await insertWebhook(h, accountId, { events: all, parserId: 'p1' }),
      scopedP2: await insertWebhook(h, accountId, { events: all, parserId: 'p2' }),
      docsOnly: await insertWebhook(h, accountId, { events: ['extraction.document_completed'] }),
      jobOnly: await insertWebhook(h, accountId, { events: ['extraction.job_completed'] }),
      quotaOnly: await insertWebhook(h, accountId, { events: ['quota.warning'] }),
      paused: await insertWebhook(h, accountId, { events: all, isActive: false }),
      disabled: await insertWebhook(h, accountId, { events: all, disabledReason: 'failing_too_long' }),
      gone: await insertWebhook(h, accountId, { events: all, disabledReason: 'gone' }),
      deleted: await insertWebhook(h, accountId, { events: all, deleted: true }),
      dashboard: await insertWebhook(h, accountId, { source: 'dashboard', events: DASHBOARD_EVENTS }),
      dashboardP1: await insertWebhook(h, accountId, { source: 'dashboard', events: DASHBOARD_EVENTS, parserId: 'p1' }),
      dashboardP2: await insertWebhook(h, accountId, { source: 'dashboard', events: DASHBOARD_EVENTS, parserId: 'p2' }),
    };
    const stranger = await h.integrator();
    const strangers = await insertWebhook(h, stranger.accountId, { events: [...all, ...DASHBOARD_EVENTS] });

    const ext = await createExtraction(h, accountId, { documentCount: 2, parserId: 'p1' });
    await report(h, ext.extraction_id, 'a', completedReport('a')).expect(202);
    await report(h, ext.extraction_id, 'b', failedReport('b')).expect(202);

    // The event's name from the event: a delivery's own copy is NULL in the compact history.
    const rows = await h.deps.db.prisma.delivery.findMany({ where: { eventRecord: { accountId } }, include: { eventRecord: { select: { event: true } } } });
    const received = (hook: { id: string }) => rows.filter((d) => d.webhookId === hook.id).map((d) => d.eventRecord.event).sort();
    const docs = ['extraction.document_completed', 'extraction.document_completed'];
    expect(received(hooks.anyParser)).toEqual([...docs, 'extraction.job_completed']);
    expect(received(hooks.scopedP1)).toEqual([...docs, 'extraction.job_completed']);
    expect(received(hooks.scopedP2)).toEqual([]);
    expect(received(hooks.docsOnly)).toEqual(docs);
    expect(received(hooks.jobOnly)).toEqual(['extraction.job_completed']);
    expect(received(hooks.quotaOnly)).toEqual([]);
    for (const off of [hooks.paused, hooks.disabled, hooks.gone, hooks.deleted]) expect(received(off)).toEqual([]);
    // Dashboard webhooks get the batch.* event and nothing else.
    expect(received(hooks.dashboard)).toEqual(['batch.partial']);
    expect(received(hooks.dashboardP1)).toEqual(['batch.partial']);
    expect(received(hooks.dashboardP2)).toEqual([]);
    expect(await h.deps.db.prisma.delivery.count({ where: { webhookId: strangers.id } })).toBe(0);
    // Every row starts pending, due now, with no attempt yet.
    // Its own copy of the account: NULL in the compact history.
    const ownAccount = h.deps.db.compact ? null : accountId;
    expect(rows.every((d) => d.status === 'pending' && d.attemptCount === 0 && d.nextAttemptAt !== null && d.accountId === ownAccount)).toBe(true);
  });

  it('sends an account-level event (no parser) to every scope, a parser’s event to its scope only', async () => {
    const { accountId } = await h.integrator();
    const unscoped = await insertWebhook(h, accountId, { events: ['quota.warning'] });
    const scoped = await insertWebhook(h, accountId, { events: ['quota.warning'], parserId: 'p1' });
    const otherScope = await insertWebhook(h, accountId, { events: ['quota.warning'], parserId: 'p2' });

    const accountLevel = await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.warning', data: { usage: 80, limit: 100 } });
    expect(accountLevel.body.event.deliveries).toBe(3);
    const forP1 = await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.warning', parser_id: 'p1', data: { usage: 80, limit: 100 } });
    expect(forP1.body.event.deliveries).toBe(2);
    const targets = await h.deps.db.prisma.delivery.findMany({ where: { eventId: forP1.body.event.id }, select: { webhookId: true } });
    expect(targets.map((t) => t.webhookId).sort()).toEqual([unscoped.id, scoped.id].sort());
    expect(targets.map((t) => t.webhookId)).not.toContain(otherScope.id);
  });

  it('counts accepted events and created deliveries in the metrics', async () => {
    const { accountId } = await h.integrator();
    await insertWebhook(h, accountId, { events: ['quota.exceeded'] });
    await insertWebhook(h, accountId, { events: ['quota.exceeded'], parserId: 'x' });
    const accepted = async () => (await h.deps.metrics.eventsAccepted.get()).values.find((v) => v.labels.event === 'quota.exceeded')?.value ?? 0;
    const created = async () => (await h.deps.metrics.deliveriesCreated.get()).values[0]?.value ?? 0;
    const [acceptedBefore, createdBefore] = [await accepted(), await created()];
    await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.exceeded', data: { usage: 101, limit: 100 } }).expect(202);
    expect(await accepted()).toBe(acceptedBefore + 1);
    expect(await created()).toBe(createdBefore + 2);
  });
});

const until = (check: () => Promise<boolean> | boolean, what: string) => waitUntil(check, what, { intervalMs: 50 });

describe('Redis down at ingest', () => {
  let redisServer: OwnRedis;
  let h: ApiHarness;

  beforeAll(async () => {
    redisServer = await ownRedisServer();
    await redisServer.start();
    h = await startApiHarness({ redisUrl: redisServer.url });
    // Without a listener BullMQ prints every reconnection error of the outage.
    h.queue.on('error', () => undefined);
    await until(() => pingRedis(h.redis, 500), 'Redis answering');
  });

  afterAll(async () => {
    // Bring Redis back so the harness closes its connections cleanly, then stop it for good.
    await redisServer.stop();
    await redisServer.start();
    await until(() => pingRedis(h.redis, 500), 'Redis answering').catch(() => undefined);
    await h?.close();
    await redisServer.stop();
  });

  it('still answers 202 and leaves the delivery rows pending for the relay', async () => {
    const integrator = await h.integrator();
    const webhook = await insertWebhook(h, integrator.accountId, { events: ['extraction.document_completed', 'extraction.job_completed', 'quota.warning'] });
    const ext = await createExtraction(h, integrator.accountId, { documentCount: 2 });
    // While Redis is up, a report is enqueued as usual.
    const before = await report(h, ext.extraction_id, 'doc-1', completedReport('doc-1')).expect(202);
    const [firstDelivery] = await h.deps.db.prisma.delivery.findMany({ where: { eventId: before.body.events[0].id } });
    expect(await h.queue.getJob(firstDelivery.id)).toBeDefined();

    await redisServer.stop();
    await until(async () => !(await pingRedis(h.redis, 200)), 'Redis down');
    const failuresBefore = (await h.deps.metrics.enqueueFailures.get()).values[0]?.value ?? 0;

    const started = Date.now();
    const last = await report(h, ext.extraction_id, 'doc-2', failedReport('doc-2'));
    expect(last.status).toBe(202);
    // The producer fails fast: an outage costs the platform no long wait.
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(last.body.events.map((e: { event: string }) => e.event)).toEqual(['extraction.document_completed', 'extraction.job_completed', 'batch.partial']);

    const eventIds = last.body.events.map((e: { id: string }) => e.id);
    const rows = await h.deps.db.prisma.delivery.findMany({ where: { eventId: { in: eventIds } }, include: { eventRecord: { select: { event: true } } } });
    expect(rows.map((d) => d.eventRecord.event).sort()).toEqual(['extraction.document_completed', 'extraction.job_completed']);
    expect(rows.every((d) => d.webhookId === webhook.id && d.status === 'pending' && d.nextAttemptAt !== null)).toBe(true);
    expect((await h.deps.metrics.enqueueFailures.get()).values[0]?.value).toBe(failuresBefore + 2);

    const published = await h.platform.post('/internal/v1/events', { account_id: integrator.accountId, event: 'quota.warning', data: { usage: 81, limit: 100 } });
    expect(published.status).toBe(202);
    expect(published.body.event.deliveries).toBe(1);
    expect(await h.deps.db.prisma.delivery.count({ where: { eventId: published.body.event.id, status: 'pending' } })).toBe(1);

    // Manual actions that need the queue now say so instead of pretending.
    const retry = await request(h.app).post(`/v1/deliveries/${firstDelivery.id}/retry`).set(integrator.auth);
    expect(retry.status).toBe(503);
    expect(retry.body.error).toEqual({ code: 'SERVICE_UNAVAILABLE', message: expect.stringMatching(/try again/) });

    const test = await request(h.app).post(`/v1/webhooks/${webhook.id}/test`).set(integrator.auth);
    expect(test.status).toBe(503);
    expect(test.body.error.code).toBe('SERVICE_UNAVAILABLE');
    // The refused test is cancelled, so the relay never delivers a test the caller was told failed.
    const testDelivery = await h.deps.db.prisma.delivery.findFirstOrThrow({ where: { webhookId: webhook.id, eventRecord: { test: true } } });
    expect(testDelivery.status).toBe('cancelled');
  });
});
