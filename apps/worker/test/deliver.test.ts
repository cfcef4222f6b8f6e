import { randomBytes } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { createLogger } from '@hookline/config';
import { publishEvent } from '../../../tests/support/publish-event';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';
import { createSecretBox, generateSigningSecret, newId } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import { RetryLaterError } from '../src/backoff';
import { createDeliverer, type DeliverResult } from '../src/deliver';
import { createSender, type Sender } from '../src/sender';
import { startReceiver, type Receiver } from '../../../tests/support/receiver';
import { verifyCallback } from '../../../tests/support/verifier';

// The processor against a real PostgreSQL database and a real HTTP receiver,
// without BullMQ: what each outcome writes, and what it throws to BullMQ.

const secretBox = createSecretBox(randomBytes(32));
const logger = createLogger({ level: 'error', service: 'deliver-test', silent: true });
const config = { WEBHOOK_BRAND: 'PerfectParser', RETRY_SCHEDULE: [300, 600, 1200], AUTO_DISABLE_AFTER: 3 * 86_400_000 };

let database: TestDatabase;
let receiver: Receiver;
let sender: Sender;

beforeAll(async () => {
  database = await createTestDatabase();
  receiver = await startReceiver();
  sender = createSender({ timeoutMs: 2_000, allowPrivateTargets: true, userAgent: 'Hookline/test' });
});

afterAll(async () => {
  sender?.close();
  await receiver?.close();
  await database?.drop();
});

beforeEach(() => {
  receiver.respond({ status: 200, body: 'ok' });
});

function deliverer(overrides: Partial<typeof config> = {}) {
  const metrics = createMetrics({ app: 'deliver-test', defaultMetrics: false });
  return { metrics, ...createDeliverer({ db: database.db, sender, secretBox, logger, metrics, config: { ...config, ...overrides } }) };
}

type WebhookOpts = { isActive?: boolean; retryEnabled?: boolean; maxRetries?: number; staticSecret?: string; url?: string; failingSince?: Date };

async function setup(opts: WebhookOpts = {}) {
  const prisma = database.db.prisma;
  const account = await prisma.account.create({ data: { id: newId('account'), name: 'Acme', plan: 'pro' } });
  const signingSecret = generateSigningSecret();
  const webhook = await prisma.webhook.create({
    data: {
      id: newId('webhook'),
      accountId: account.id,
      url: opts.url ?? receiver.url,
      events: ['extraction.document_completed'],
      signingSecretEnc: secretBox.encrypt(signingSecret),
      staticSecretEnc: opts.staticSecret ? secretBox.encrypt(opts.staticSecret) : null,
      isActive: opts.isActive ?? true,
      retryEnabled: opts.retryEnabled ?? true,
      maxRetries: opts.maxRetries ?? 5,
      failingSince: opts.failingSince ?? null,
    },
  });
  const emit = async (test = false) => {
    const written = await publishEvent(prisma, {
      accountId: account.id,
      event: 'extraction.document_completed',
      parserId: null,
      data: { extraction_id: 'ext_1', document_id: 'doc_1', status: 'completed', file_name: 'a.pdf', result: { total: 12.5 } },
      ...(test ? { test: true, onlyWebhookId: webhook.id } : {}),
    });
    return written.deliveryIds[0];
  };
  return { account, webhook, signingSecret, emit };
}

const delivery = (id: string) => database.db.prisma.delivery.findUniqueOrThrow({ where: { id } });
const attempts = (deliveryId: string) => database.db.prisma.attempt.findMany({ where: { deliveryId }, orderBy: { attemptNumber: 'asc' } });
const webhookRow = (id: string) => database.db.prisma.webhook.findUniqueOrThrow({ where: { id } });

/** Runs the processor and returns what it resolved or threw. */
async function run(d: ReturnType<typeof deliverer>, deliveryId: string, once = false): Promise<{ result?: DeliverResult; error?: Error }> {
  try {
    return { result: await d.deliver({ deliveryId, ...(once ? { once: true } : {}) }) };
  } catch (error) {
    return { error: error as Error };
  }
}

describe('deliver', () => {
  it('sends a signed callback and records a succeeded attempt', async () => {
    const { webhook, signingSecret, emit } = await setup({ staticSecret: 'static-token-123' });
    const id = await emit();
    const before = receiver.received.length;
    const d = deliverer();
    const { result, error } = await run(d, id);
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ outcome: 'succeeded', attemptNumber: 1 });

    const seen = receiver.received[before];
    expect(seen.headers['x-perfectparser-delivery']).toBe(id);
    expect(seen.headers['x-webhook-secret']).toBe('static-token-123');
    expect(verifyCallback(signingSecret, seen.body, seen.headers)).toEqual({ standard: true, brand: true });

    const row = await delivery(id);
    expect(row).toMatchObject({ status: 'succeeded', attemptCount: 1 });
    expect(row.completedAt).toBeInstanceOf(Date);
    const [attempt] = await attempts(id);
    expect(attempt).toMatchObject({ attemptNumber: 1, status: 'succeeded', responseStatus: 200, responseBody: 'ok', error: null, webhookId: webhook.id, nextRetryAt: null });
    expect(await d.metrics.deliveries.get()).toMatchObject({ values: [{ labels: { outcome: 'succeeded' }, value: 1 }] });
  });

  it('runs twice safely: a finished delivery is skipped, nothing is sent again', async () => {
    const { emit } = await setup();
    const id = await emit();
    const d = deliverer();
    await run(d, id);
    const before = receiver.received.length;
    const { result } = await run(d, id);
    expect(result).toEqual({ outcome: 'skipped' });
    expect(receiver.received.length).toBe(before);
    expect(await attempts(id)).toHaveLength(1);
  });

  it('a missing delivery is dropped without error', async () => {
    const { result } = await run(deliverer(), 'dlv_doesnotexist000000000000');
    expect(result).toEqual({ outcome: 'missing' });
  });

  it('schedules a retry: pending_retry, next_attempt_at = next_retry_at, RetryLaterError with the schedule delay', async () => {
    const { emit } = await setup();
    const id = await emit();
    receiver.respond({ status: 500, body: 'boom' });
    const started = Date.now();
    const { error } = await run(deliverer(), id);
    expect(error).toBeInstanceOf(RetryLaterError);
    expect((error as RetryLaterError).delayMs).toBe(300);
    const row = await delivery(id);
    expect(row.status).toBe('pending_retry');
    const [attempt] = await attempts(id);
    expect(attempt).toMatchObject({ status: 'failed', responseStatus: 500, responseBody: 'boom', error: null });
    expect(attempt.nextRetryAt?.getTime()).toBe(row.nextAttemptAt?.getTime());
    expect(row.nextAttemptAt!.getTime()).toBeGreaterThanOrEqual(started + 300 - 5);

    // The second failure uses the second entry of the schedule.
    const second = await run(deliverer(), id);
    expect((second.error as RetryLaterError).delayMs).toBe(600);
    expect((await attempts(id)).map((a) => a.attemptNumber)).toEqual([1, 2]);
  });

  it('a job that runs again before its retry is due (stalled recovery, a relayed job) sends nothing and waits for its turn', async () => {
    // The worker died (or lost Redis) after recording attempt 1 but before BullMQ
    // moved the job to delayed: stalled recovery runs it again at once.
    const { emit } = await setup();
    const id = await emit();
    receiver.respond({ status: 500 });
    const d = deliverer({ RETRY_SCHEDULE: [60_000] });
    expect((await run(d, id)).error).toBeInstanceOf(RetryLaterError);
    const before = receiver.received.length;
    const { error } = await run(d, id);
    expect(error).toBeInstanceOf(RetryLaterError);
    expect((error as RetryLaterError).delayMs).toBeGreaterThan(55_000);
    expect((error as RetryLaterError).delayMs).toBeLessThanOrEqual(60_000);
    expect(receiver.received.length).toBe(before);
    expect(await delivery(id)).toMatchObject({ status: 'pending_retry', attemptCount: 1 });

    // Once due it is sent; a manual retry (once) never waits.
    await database.db.prisma.delivery.update({ where: { id }, data: { nextAttemptAt: new Date(Date.now() - 1) } });
    receiver.respond({ status: 200 });
    expect((await run(d, id)).result).toMatchObject({ outcome: 'succeeded', attemptNumber: 2 });
    const other = await emit();
    receiver.respond({ status: 500 });
    await run(d, other);
    receiver.respond({ status: 200 });
    expect((await run(d, other, true)).result).toMatchObject({ outcome: 'succeeded', attemptNumber: 2 });
  });

  it('honours Retry-After on a 429 when it is later than the schedule', async () => {
    const { emit } = await setup();
    const id = await emit();
    receiver.respond({ status: 429, headers: { 'retry-after': '7' } });
    const { error } = await run(deliverer(), id);
    expect((error as RetryLaterError).delayMs).toBe(7_000);
  });

  it('the last retry fails for good: failed, webhook failing, UnrecoverableError', async () => {
    const { webhook, emit } = await setup({ maxRetries: 1 });
    const id = await emit();
    receiver.respond({ status: 503 });
    const d = deliverer();
    expect((await run(d, id)).error).toBeInstanceOf(RetryLaterError);
    const { error } = await run(d, id);
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(await delivery(id)).toMatchObject({ status: 'failed', attemptCount: 2 });
    const wh = await webhookRow(webhook.id);
    expect(wh.failingSince).toBeInstanceOf(Date);
    expect(wh.disabledReason).toBeNull();

    // The next success clears failing_since.
    receiver.respond({ status: 204 });
    const next = await emit();
    expect((await run(d, next)).result?.outcome).toBe('succeeded');
    expect((await webhookRow(webhook.id)).failingSince).toBeNull();
  });

  it('retry_enabled false: one attempt, then failed', async () => {
    const { emit } = await setup({ retryEnabled: false });
    const id = await emit();
    receiver.respond({ status: 500 });
    expect((await run(deliverer(), id)).error).toBeInstanceOf(UnrecoverableError);
    expect(await delivery(id)).toMatchObject({ status: 'failed', attemptCount: 1 });
  });

  it('a 410 disables the webhook at once (gone), without retry', async () => {
    const { webhook, emit } = await setup();
    const id = await emit();
    receiver.respond({ status: 410 });
    expect((await run(deliverer(), id)).error).toBeInstanceOf(UnrecoverableError);
    expect(await delivery(id)).toMatchObject({ status: 'failed', attemptCount: 1 });
    const wh = await webhookRow(webhook.id);
    expect(wh).toMatchObject({ isActive: false, disabledReason: 'gone' });
    expect(wh.disabledAt).toBeInstanceOf(Date);
  });

  it('auto-disables a webhook failing for longer than AUTO_DISABLE_AFTER', async () => {
    const { webhook, emit } = await setup({ maxRetries: 0, failingSince: new Date(Date.now() - 60_000) });
    const id = await emit();
    receiver.respond({ status: 500 });
    expect((await run(deliverer({ AUTO_DISABLE_AFTER: 30_000 }), id)).error).toBeInstanceOf(UnrecoverableError);
    expect(await webhookRow(webhook.id)).toMatchObject({ isActive: false, disabledReason: 'failing_too_long' });
  });

  it('cancels a delivery of a paused, disabled or deleted webhook without sending', async () => {
    // The outbox creates deliveries for active webhooks only: the state changes after the event.
    const [paused, disabled, deleted] = [await setup(), await setup(), await setup()];
    const ids = [await paused.emit(), await disabled.emit(), await deleted.emit()];
    const prisma = database.db.prisma;
    await prisma.webhook.update({ where: { id: paused.webhook.id }, data: { isActive: false } });
    await prisma.webhook.update({ where: { id: disabled.webhook.id }, data: { disabledReason: 'gone', isActive: false } });
    await prisma.webhook.update({ where: { id: deleted.webhook.id }, data: { deletedAt: new Date() } });
    const before = receiver.received.length;
    const d = deliverer();
    for (const id of ids) expect((await run(d, id)).result).toEqual({ outcome: 'cancelled' });
    expect(receiver.received.length).toBe(before);
    for (const id of ids) expect(await delivery(id)).toMatchObject({ status: 'cancelled', attemptCount: 0 });
  });

  it('a test event and a manual retry (once) still reach a paused webhook', async () => {
    const { emit, webhook } = await setup();
    const testId = await emit(true);
    const normalId = await emit();
    await database.db.prisma.webhook.update({ where: { id: webhook.id }, data: { isActive: false } });
    const d = deliverer();
    expect((await run(d, testId)).result?.outcome).toBe('succeeded');
    expect((await run(d, normalId, true)).result?.outcome).toBe('succeeded');
  });

  it('a failing test event is never retried', async () => {
    const { emit } = await setup();
    const id = await emit(true);
    receiver.respond({ status: 500 });
    expect((await run(deliverer(), id)).error).toBeInstanceOf(UnrecoverableError);
    expect(await delivery(id)).toMatchObject({ status: 'failed', attemptCount: 1 });
  });

  it('a failed manual retry leaves a waiting delivery waiting, and a finished one failed', async () => {
    const { emit } = await setup();
    const id = await emit();
    receiver.respond({ status: 500 });
    const d = deliverer();
    await run(d, id);
    const waiting = await delivery(id);
    expect(waiting.status).toBe('pending_retry');
    expect((await run(d, id, true)).error).toBeInstanceOf(UnrecoverableError);
    const after = await delivery(id);
    expect(after).toMatchObject({ status: 'pending_retry', attemptCount: 2 });
    expect(after.nextAttemptAt?.getTime()).toBe(waiting.nextAttemptAt?.getTime());

    // A manual retry of a failed delivery is one more attempt, whatever its state.
    const failed = await emit();
    await database.db.prisma.delivery.update({ where: { id: failed }, data: { status: 'failed' } });
    receiver.respond({ status: 200 });
    expect((await run(d, failed)).result?.outcome).toBe('skipped');
    expect((await run(d, failed, true)).result?.outcome).toBe('succeeded');
    expect(await delivery(failed)).toMatchObject({ status: 'succeeded', attemptCount: 1 });
  });

  it('allocates attempt numbers atomically when two runs of one delivery race', async () => {
    const { emit } = await setup();
    const id = await emit();
    receiver.respond({ status: 500, delayMs: 50 });
    const d = deliverer();
    const outcomes = await Promise.all([run(d, id), run(d, id), run(d, id, true)]);
    expect(outcomes.every((o) => o.error)).toBe(true);
    expect((await attempts(id)).map((a) => a.attemptNumber)).toEqual([1, 2, 3]);
    expect((await delivery(id)).attemptCount).toBe(3);
  });

  it('deliveries running at once share statements and each still gets its own outcome', async () => {
    const { emit } = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 30; i += 1) ids.push(await emit());
    const failing = new Set(ids.filter((_, i) => i % 2 === 1));
    receiver.respond((req) => (failing.has(String(req.headers['x-perfectparser-delivery'])) ? { status: 500 } : { status: 200 }));
    const d = deliverer();
    const outcomes = await Promise.all(ids.map((id) => run(d, id)));
    ids.forEach((id, i) => {
      if (failing.has(id)) expect(outcomes[i].error).toBeInstanceOf(RetryLaterError);
      else expect(outcomes[i].result).toMatchObject({ outcome: 'succeeded', attemptNumber: 1 });
    });
    const rows = await database.db.prisma.delivery.findMany({ where: { id: { in: ids } } });
    for (const row of rows) expect(row).toMatchObject({ status: failing.has(row.id) ? 'pending_retry' : 'succeeded', attemptCount: 1 });
    expect(await database.db.prisma.attempt.count({ where: { deliveryId: { in: ids } } })).toBe(30);
  });

  it('a shared record statement that committed but lost its answer logs each attempt once, not twice', async () => {
    const { emit } = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 10; i += 1) ids.push(await emit());
    // The connection drops after PostgreSQL committed the batch (the answer is lost):
    // the rows are written although the call failed.
    let dropped = false;
    const sql = database.db.sql;
    const flaky = {
      ...sql,
      async query<T>(text: string, params?: unknown[]): Promise<T[]> {
        const rows = await sql.query<T>(text, params);
        if (!dropped && text.includes('INSERT INTO attempts') && (params?.[0] as string[]).length > 1) {
          dropped = true;
          throw new Error('Connection terminated unexpectedly');
        }
        return rows;
      },
    };
    const metrics = createMetrics({ app: 'deliver-test', defaultMetrics: false });
    const d = createDeliverer({ db: { ...database.db, sql: flaky }, sender, secretBox, logger, metrics, config });
    const outcomes = await Promise.all(ids.map((id) => d.deliver({ deliveryId: id })));
    expect(dropped).toBe(true);
    expect(outcomes.every((o) => o.outcome === 'succeeded')).toBe(true);
    for (const id of ids) {
      expect((await attempts(id)).map((a) => a.attemptNumber)).toEqual([1]);
      expect(await delivery(id)).toMatchObject({ status: 'succeeded', attemptCount: 1 });
    }
  });

  it('signs with both secrets during a rotation', async () => {
    const { webhook, signingSecret, emit } = await setup();
    const next = generateSigningSecret();
    await database.db.prisma.webhook.update({
      where: { id: webhook.id },
      data: { signingSecretEnc: secretBox.encrypt(next), previousSecretEnc: secretBox.encrypt(signingSecret), previousSecretExpires: new Date(Date.now() + 60_000) },
    });
    const before = receiver.received.length;
    await run(deliverer(), await emit());
    const seen = receiver.received[before];
    expect(String(seen.headers['x-perfectparser-signature']).split(',')).toHaveLength(2);
    expect(String(seen.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifyCallback(next, seen.body, seen.headers)).toEqual({ standard: true, brand: true });
    expect(verifyCallback(signingSecret, seen.body, seen.headers)).toEqual({ standard: true, brand: true });

    // Past its expiry the previous secret signs no more.
    await database.db.prisma.webhook.update({ where: { id: webhook.id }, data: { previousSecretExpires: new Date(Date.now() - 1_000) } });
    await run(deliverer(), await emit());
    const later = receiver.received[receiver.received.length - 1];
    expect(String(later.headers['x-perfectparser-signature']).split(',')).toHaveLength(1);
    expect(verifyCallback(signingSecret, later.body, later.headers)).toEqual({ standard: false, brand: false });
    expect(verifyCallback(next, later.body, later.headers)).toEqual({ standard: true, brand: true });
  });

  it('records a connection failure as an attempt with its error code', async () => {
    const { emit } = await setup({ url: 'http://127.0.0.1:1/hooks' });
    const id = await emit();
    const { error } = await run(deliverer(), id);
    expect(error).toBeInstanceOf(RetryLaterError);
    const [attempt] = await attempts(id);
    expect(attempt).toMatchObject({ status: 'failed', responseStatus: null, responseBody: null, error: 'connection_refused' });
  });
});
