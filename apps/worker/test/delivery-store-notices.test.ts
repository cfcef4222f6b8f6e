import { randomBytes } from 'node:crypto';
import { createSecretBox, generateSigningSecret, newId } from '@hookline/domain';
import { publishEvent } from '../../../tests/support/publish-event';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';
import { createDeliveryStore, type AttemptRecord, type DeliveryStore, type Notice } from '../src/delivery-store';

// The statements behind operational events and ordered job callbacks, on a
// real PostgreSQL: a transition raced by many callers is won once, and only
// its winner writes the notice, in the same transaction, to every other
// subscribed webhook and never the one it is about; a document callback that
// ends answers the held job callbacks of its extraction to its webhook.

const secretBox = createSecretBox(randomBytes(32));
const OPS = ['webhook.failing', 'webhook.disabled', 'delivery.exhausted'];
const DOC = 'extraction.document_completed';
const JOB = 'extraction.job_completed';

let database: TestDatabase;
let store: DeliveryStore;

beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 12 });
  store = createDeliveryStore(database.db);
});
afterAll(() => database?.drop());

async function account() {
  const prisma = database.db.prisma;
  const acct = await prisma.account.create({ data: { id: newId('account'), name: 'Acme', plan: 'pro' } });
  const webhook = (events: string[]) =>
    prisma.webhook.create({
      data: { id: newId('webhook'), accountId: acct.id, url: `https://example.com/${randomBytes(4).toString('hex')}`, events, signingSecretEnc: secretBox.encrypt(generateSigningSecret()) },
    });
  return { id: acct.id, webhook };
}

const failingNotice = (accountId: string, webhookId: string) => (since: Date): Notice => ({
  accountId, aboutWebhookId: webhookId, event: 'webhook.failing',
  data: { webhook_id: webhookId, url: 'https://example.com/x', failing_since: since.toISOString(), last_error: 'timeout', last_response_status: null },
});
const disabledNotice = (accountId: string, webhookId: string, reason: 'gone' | 'failing_too_long'): Notice => ({
  accountId, aboutWebhookId: webhookId, event: 'webhook.disabled', data: { webhook_id: webhookId, url: 'https://example.com/x', reason },
});

const eventsOf = (accountId: string, event: string) => database.db.prisma.event.findMany({ where: { accountId, event }, include: { deliveries: true } });

describe('operational notices: one per transition, with it, never to the webhook concerned', () => {
  it('markFailing raced by 12 callers: one marks it and writes webhook.failing, delivered to the listener only', async () => {
    const a = await account();
    const troubled = await a.webhook(['quota.warning', ...OPS]);
    const listener = await a.webhook(OPS);
    await a.webhook(['quota.warning']); // not subscribed: gets nothing
    const at = new Date(Date.now() - 1_000);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => store.markFailing(troubled.id, new Date(at.getTime() + i), failingNotice(a.id, troubled.id))));

    const winners = results.filter((r) => r.deliveries.length > 0);
    expect(winners).toHaveLength(1);
    expect(winners[0].deliveries).toEqual([{ id: expect.stringMatching(/^dlv_/), webhookId: listener.id }]);
    // Every caller learns the one failing_since that was set.
    const row = await database.db.prisma.webhook.findUniqueOrThrow({ where: { id: troubled.id } });
    for (const r of results) expect(r.failingSince.getTime()).toBe(row.failingSince!.getTime());
    const events = await eventsOf(a.id, 'webhook.failing');
    expect(events).toHaveLength(1);
    expect(events[0].deliveries.map((d) => [d.webhookId, d.status])).toEqual([[listener.id, 'pending']]);
    expect(events[0]).toMatchObject({ parserId: null, data: { webhook_id: troubled.id, failing_since: row.failingSince!.toISOString() } });
  });

  it('a failing spell begun without a notice (an operational delivery) is announced by the first caller with one, once, with the spell\'s start', async () => {
    const a = await account();
    const troubled = await a.webhook(['quota.warning', ...OPS]);
    const listener = await a.webhook(OPS);
    const began = new Date(Date.now() - 5_000);
    const silent = await store.markFailing(troubled.id, began, null);
    expect(silent).toEqual({ failingSince: began, deliveries: [] });
    expect(await eventsOf(a.id, 'webhook.failing')).toHaveLength(0);

    const later = new Date();
    const results = await Promise.all(Array.from({ length: 6 }, () => store.markFailing(troubled.id, later, failingNotice(a.id, troubled.id))));
    expect(results.filter((r) => r.deliveries.length > 0).map((r) => r.deliveries.map((d) => d.webhookId))).toEqual([[listener.id]]);
    for (const r of results) expect(r.failingSince.getTime()).toBe(began.getTime());
    const events = await eventsOf(a.id, 'webhook.failing');
    expect(events.map((e) => (e.data as { failing_since: string }).failing_since)).toEqual([began.toISOString()]);
    // Announced already: neither kind of caller announces this spell again.
    expect((await store.markFailing(troubled.id, new Date(), failingNotice(a.id, troubled.id))).deliveries).toEqual([]);
    expect((await store.markFailing(troubled.id, new Date(), null)).deliveries).toEqual([]);
    expect(await eventsOf(a.id, 'webhook.failing')).toHaveLength(1);

    // A success ends the spell; the next spell is announced again.
    expect(await store.clearFailing(troubled.id, new Date())).toBe(true);
    expect(await database.db.prisma.webhook.findUniqueOrThrow({ where: { id: troubled.id } })).toMatchObject({ failingSince: null, failingAnnounced: false });
    expect((await store.markFailing(troubled.id, new Date(), failingNotice(a.id, troubled.id))).deliveries).toHaveLength(1);
    expect(await eventsOf(a.id, 'webhook.failing')).toHaveLength(2);
  });

  it('disableGone and disableFailingTooLong raced together: one disable, one webhook.disabled', async () => {
    const a = await account();
    const troubled = await a.webhook(['quota.warning']);
    const listener = await a.webhook(OPS);
    await database.db.prisma.webhook.update({ where: { id: troubled.id }, data: { failingSince: new Date(Date.now() - 60_000) } });
    const at = new Date();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      i % 2 ? store.disableGone(troubled.id, at, disabledNotice(a.id, troubled.id, 'gone')) : store.disableFailingTooLong(troubled.id, at, disabledNotice(a.id, troubled.id, 'failing_too_long'))));
    expect(results.filter((r) => r.won)).toHaveLength(1);
    expect(results.filter((r) => r.deliveries.length > 0).map((r) => r.deliveries[0].webhookId)).toEqual([listener.id]);
    const events = await eventsOf(a.id, 'webhook.disabled');
    expect(events).toHaveLength(1);
    const row = await database.db.prisma.webhook.findUniqueOrThrow({ where: { id: troubled.id } });
    expect((events[0].data as { reason: string }).reason).toBe(row.disabledReason);
  });

  it('without a notice (a delivery of an operational event) the transition happens and nothing is written', async () => {
    const a = await account();
    const troubled = await a.webhook(OPS);
    await a.webhook(OPS);
    const marked = await store.markFailing(troubled.id, new Date(), null);
    expect(marked.deliveries).toEqual([]);
    expect((await store.disableGone(troubled.id, new Date(), null)).won).toBe(true);
    expect(await database.db.prisma.webhook.findUniqueOrThrow({ where: { id: troubled.id } })).toMatchObject({ disabledReason: 'gone' });
    expect(await database.db.prisma.event.count({ where: { accountId: a.id } })).toBe(0);
  });

  it('recordExhausted raced by two runs on one attempt count: one records and writes delivery.exhausted, the other is refused and writes nothing', async () => {
    const a = await account();
    const troubled = await a.webhook(['quota.warning']);
    const listener = await a.webhook(OPS);
    const written = await publishEvent(database.db.prisma, { accountId: a.id, event: 'quota.warning', parserId: null, data: { usage: 1, limit: 2 } });
    const deliveryId = written.deliveryIds[0];
    const item = (): AttemptRecord => ({
      deliveryId, status: 'failed', at: new Date(), nextAttemptAt: null, expectedCount: 0, attemptId: newId('attempt'), attemptStatus: 'failed',
      responseStatus: 500, responseBody: 'down', error: null, durationMs: 3, wakeExtraction: null,
    });
    const notice: Notice = {
      accountId: a.id, aboutWebhookId: troubled.id, event: 'delivery.exhausted',
      data: { delivery_id: deliveryId, webhook_id: troubled.id, event_id: written.eventId, event: 'quota.warning', attempt_count: 1, last_error: null, last_response_status: 500 },
    };
    const [first, second] = await Promise.all([store.recordExhausted(item(), notice), store.recordExhausted(item(), notice)]);
    const won = [first, second].filter((r) => r !== null);
    expect(won).toHaveLength(1);
    expect(won[0].deliveries.map((d) => d.webhookId)).toEqual([listener.id]);
    expect(await eventsOf(a.id, 'delivery.exhausted')).toHaveLength(1);
    expect(await database.db.prisma.attempt.count({ where: { deliveryId } })).toBe(1);
    expect(await database.db.prisma.delivery.findUniqueOrThrow({ where: { id: deliveryId } })).toMatchObject({ status: 'failed', attemptCount: 1 });
  });
});

describe('recording an attempt again (its first commit\'s answer lost with the connection)', () => {
  it('records it once: the repeat is refused by the guard, and current() finds the attempt by its id', async () => {
    const a = await account();
    await a.webhook(['quota.warning']);
    const written = await publishEvent(database.db.prisma, { accountId: a.id, event: 'quota.warning', parserId: null, data: { usage: 1, limit: 2 } });
    const deliveryId = written.deliveryIds[0];
    const item: AttemptRecord = {
      deliveryId, status: 'succeeded', at: new Date(), nextAttemptAt: null, expectedCount: 0, attemptId: newId('attempt'), attemptStatus: 'succeeded',
      responseStatus: 200, responseBody: 'ok', error: null, durationMs: 3, wakeExtraction: null,
    };
    expect(await store.record(item)).toEqual({ wake: [] });
    // The very same statement, as the worker's retry sends it.
    expect(await store.record({ ...item })).toBeNull();
    expect(await store.current(deliveryId, item.attemptId)).toEqual({ status: 'succeeded', attempt_count: 1, mine: 1 });
    expect(await database.db.prisma.attempt.count({ where: { deliveryId } })).toBe(1);
  });
});

describe('ordered job callbacks: the statements', () => {
  async function extractionEvents(accountId: string, extractionId: string, documents: number) {
    const summary = { extraction_id: extractionId, parser_id: null, status: 'completed', document_count: documents, completed_count: documents, failed_count: 0 };
    const docs = [];
    for (let i = 1; i <= documents; i += 1) {
      docs.push(await publishEvent(database.db.prisma, {
        accountId, event: DOC, parserId: null, data: { extraction_id: extractionId, document_id: `doc-${i}`, parser_id: null, status: 'completed', file_name: null, result: null },
      }));
    }
    const job = await publishEvent(database.db.prisma, { accountId, event: JOB, parserId: null, data: summary });
    return { docs, job };
  }

  it('waitingDocuments counts the document callbacks of that extraction to that webhook not yet ended, and when the last is due', async () => {
    const a = await account();
    const hook = await a.webhook([DOC, JOB]);
    const other = await a.webhook([DOC, JOB]);
    const { docs } = await extractionEvents(a.id, 'ext-wait', 3);
    await extractionEvents(a.id, 'ext-unrelated', 1);
    const ids = await Promise.all(docs.map(async (w) => (await database.db.prisma.delivery.findFirstOrThrow({ where: { eventId: w.eventId, webhookId: hook.id } })).id));
    expect(await store.waitingDocuments('ext-wait', hook.id)).toMatchObject({ waiting: 3 });

    const due = new Date(Date.now() + 60_000);
    await database.db.prisma.delivery.update({ where: { id: ids[0] }, data: { status: 'succeeded' } });
    await database.db.prisma.delivery.update({ where: { id: ids[1] }, data: { status: 'cancelled' } });
    await database.db.prisma.delivery.update({ where: { id: ids[2] }, data: { status: 'pending_retry', nextAttemptAt: due } });
    expect(await store.waitingDocuments('ext-wait', hook.id)).toEqual({ waiting: 1, latest: due });
    await database.db.prisma.delivery.update({ where: { id: ids[2] }, data: { status: 'failed' } });
    expect(await store.waitingDocuments('ext-wait', hook.id)).toEqual({ waiting: 0, latest: null });
    // The other webhook's document callbacks are its own business.
    expect(await store.waitingDocuments('ext-wait', other.id)).toMatchObject({ waiting: 3 });
  });

  it('recording the end of a document callback answers the waiting job callbacks of its extraction to its webhook; other attempts answer none', async () => {
    const a = await account();
    const hook = await a.webhook([DOC, JOB]);
    await a.webhook([DOC, JOB]);
    const { docs, job } = await extractionEvents(a.id, 'ext-wake', 2);
    const deliveryOf = async (eventId: string) => (await database.db.prisma.delivery.findFirstOrThrow({ where: { eventId, webhookId: hook.id } })).id;
    const jobDelivery = await deliveryOf(job.eventId);
    const record = async (deliveryId: string, status: AttemptRecord['status'], wakeExtraction: string | null) =>
      store.record({
        deliveryId, status, at: new Date(), nextAttemptAt: status === 'pending_retry' ? new Date(Date.now() + 1_000) : null, expectedCount: 0, attemptId: newId('attempt'),
        attemptStatus: status === 'succeeded' ? 'succeeded' : 'failed', responseStatus: 200, responseBody: null, error: null, durationMs: 1, wakeExtraction,
      });
    expect(await record(await deliveryOf(docs[0].eventId), 'pending_retry', null)).toEqual({ wake: [] });
    expect(await record(await deliveryOf(docs[1].eventId), 'succeeded', 'ext-wake')).toEqual({ wake: [jobDelivery] });
    // Once the job callback ended, there is nothing left to wake.
    await database.db.prisma.delivery.update({ where: { id: jobDelivery }, data: { status: 'succeeded' } });
    const again = await publishEvent(database.db.prisma, {
      accountId: a.id, event: DOC, parserId: null, data: { extraction_id: 'ext-wake', document_id: 'late', parser_id: null, status: 'completed', file_name: null, result: null },
    });
    expect(await record(await deliveryOf(again.eventId), 'succeeded', 'ext-wake')).toEqual({ wake: [] });
  });
});
