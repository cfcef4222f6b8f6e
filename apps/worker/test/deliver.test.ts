import { randomBytes } from 'node:crypto';
import { createLogger } from '@hookline/config';
import { publishEvent } from '../../../tests/support/publish-event';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';
import { createSecretBox, generateSigningSecret, newId } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import { createRedis } from '@hookline/queue';
import type IORedis from 'ioredis';
import { createDeliverer, type DeliverResult } from '../src/deliver';
import { createEndpointGate, type EndpointGate } from '../src/endpoint-gate';
import { createSender, type Sender } from '../src/sender';
import { startReceiver, type Receiver } from '../../../tests/support/receiver';
import { verifyCallback } from '../../../tests/support/verifier';
import { cleanPrefix, TEST_REDIS_URL } from '../../../tests/support/api-harness';
import { waitUntil } from '../../../tests/support/wait-until';

// The processor against a real PostgreSQL database and a real HTTP receiver,
// without BullMQ: what each outcome writes, and what it throws to BullMQ.

const secretBox = createSecretBox(randomBytes(32));
const logger = createLogger({ level: 'error', service: 'deliver-test', silent: true });
const config = {
  WEBHOOK_BRAND: 'PerfectParser', RETRY_SCHEDULE: [300, 600, 1200], RETRY_JITTER: 0, AUTO_DISABLE_AFTER: 3 * 86_400_000, DELIVERY_TIMEOUT: 2_000,
  ENDPOINT_CONCURRENCY: 10, CIRCUIT_BREAKER_THRESHOLD: 1_000, CIRCUIT_BREAKER_COOLDOWN: 1_000,
};
const prefix = `test-deliver-${randomBytes(4).toString('hex')}`;

let database: TestDatabase;
let receiver: Receiver;
let sender: Sender;
let redis: IORedis;
let gate: EndpointGate;

beforeAll(async () => {
  database = await createTestDatabase();
  redis = createRedis(TEST_REDIS_URL, 'worker');
  // Jobs are run directly here, never parked: promote has nothing to do.
  gate = createEndpointGate({ redis, prefix, leaseTtlMs: 30_000, promote: async () => false });
  receiver = await startReceiver();
  sender = createSender({ timeoutMs: 2_000, allowPrivateTargets: true, userAgent: 'Hookline/test' });
});

afterAll(async () => {
  if (redis) await cleanPrefix(redis, prefix);
  redis?.disconnect();
  sender?.close();
  await receiver?.close();
  await database?.drop();
});

beforeEach(() => {
  receiver.respond({ status: 200, body: 'ok' });
});

function deliverer(overrides: Partial<typeof config> = {}) {
  const metrics = createMetrics({ app: 'deliver-test', defaultMetrics: false });
  return { metrics, ...createDeliverer({ db: database.db, sender, gate, secretBox, logger, metrics, config: { ...config, ...overrides } }) };
}

type WebhookOpts = {
  isActive?: boolean; retryEnabled?: boolean; maxRetries?: number; staticSecret?: string; url?: string; failingSince?: Date;
  maxInFlight?: number; rateLimitPerSecond?: number;
};

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
      maxInFlight: opts.maxInFlight ?? null,
      rateLimitPerSecond: opts.rateLimitPerSecond ?? null,
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
/** Past the open circuit's circuit_retry_at, the time the deliverer compares with now. */
const cooldownOver = async (id: string) => {
  const retryAt = (await webhookRow(id)).circuitRetryAt!.getTime();
  await waitUntil(() => Date.now() > retryAt, 'the circuit\'s cooldown over');
};

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
    expect(result).toEqual({ outcome: 'skipped', next: { kind: 'done' } });
    expect(receiver.received.length).toBe(before);
    expect(await attempts(id)).toHaveLength(1);
  });

  it('a missing delivery is dropped without error', async () => {
    const { result } = await run(deliverer(), 'dlv_doesnotexist000000000000');
    expect(result).toEqual({ outcome: 'missing', next: { kind: 'done' } });
  });

  it('schedules a retry: pending_retry, next_attempt_at = next_retry_at, a retry after the schedule delay', async () => {
    const { emit } = await setup();
    const id = await emit();
    receiver.respond({ status: 500, body: 'boom' });
    const started = Date.now();
    const { result } = await run(deliverer(), id);
    expect(result?.next).toEqual({ kind: 'retry', delayMs: 300 });
    const row = await delivery(id);
    expect(row.status).toBe('pending_retry');
    const [attempt] = await attempts(id);
    expect(attempt).toMatchObject({ status: 'failed', responseStatus: 500, responseBody: 'boom', error: null });
    expect(attempt.nextRetryAt?.getTime()).toBe(row.nextAttemptAt?.getTime());
    expect(row.nextAttemptAt!.getTime()).toBeGreaterThanOrEqual(started + 300 - 5);

    // The second failure uses the second entry of the schedule.
    const second = await run(deliverer(), id);
    expect(second.result?.next).toEqual({ kind: 'retry', delayMs: 600 });
    expect((await attempts(id)).map((a) => a.attemptNumber)).toEqual([1, 2]);
  });

  it('a job that runs again before its retry is due (stalled recovery, a relayed job) sends nothing and waits for its turn', async () => {
    // The worker died (or lost Redis) after recording attempt 1 but before BullMQ
    // moved the job to delayed: stalled recovery runs it again at once.
    const { emit } = await setup();
    const id = await emit();
    receiver.respond({ status: 500 });
    const d = deliverer({ RETRY_SCHEDULE: [60_000] });
    expect((await run(d, id)).result?.next.kind).toBe('retry');
    const before = receiver.received.length;
    const { result } = await run(d, id);
    // Put back without an attempt (no BullMQ attempt counted either).
    expect(result).toMatchObject({ outcome: 'held', next: { kind: 'later' } });
    const waitMs = result?.next.kind === 'later' ? result.next.delayMs : 0;
    expect(waitMs).toBeGreaterThan(55_000);
    expect(waitMs).toBeLessThanOrEqual(60_000);
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
    const { result } = await run(deliverer(), id);
    expect(result?.next).toEqual({ kind: 'retry', delayMs: 7_000 });
  });

  it('the last retry fails for good: failed, webhook failing, the job stops', async () => {
    const { webhook, emit } = await setup({ maxRetries: 1 });
    const id = await emit();
    receiver.respond({ status: 503 });
    const d = deliverer();
    expect((await run(d, id)).result?.next.kind).toBe('retry');
    const { result } = await run(d, id);
    expect(result?.next.kind).toBe('stop');
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
    expect((await run(deliverer(), id)).result?.next.kind).toBe('stop');
    expect(await delivery(id)).toMatchObject({ status: 'failed', attemptCount: 1 });
  });

  it('a 410 disables the webhook at once (gone), without retry', async () => {
    const { webhook, emit } = await setup();
    const id = await emit();
    receiver.respond({ status: 410 });
    expect((await run(deliverer(), id)).result?.next.kind).toBe('stop');
    expect(await delivery(id)).toMatchObject({ status: 'failed', attemptCount: 1 });
    const wh = await webhookRow(webhook.id);
    expect(wh).toMatchObject({ isActive: false, disabledReason: 'gone' });
    expect(wh.disabledAt).toBeInstanceOf(Date);
  });

  it('auto-disables a webhook failing for longer than AUTO_DISABLE_AFTER', async () => {
    const { webhook, emit } = await setup({ maxRetries: 0, failingSince: new Date(Date.now() - 60_000) });
    const id = await emit();
    receiver.respond({ status: 500 });
    expect((await run(deliverer({ AUTO_DISABLE_AFTER: 30_000 }), id)).result?.next.kind).toBe('stop');
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
    for (const id of ids) expect((await run(d, id)).result).toEqual({ outcome: 'cancelled', next: { kind: 'done' } });
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
    expect((await run(deliverer(), id)).result?.next.kind).toBe('stop');
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
    expect((await run(d, id, true)).result?.next.kind).toBe('stop');
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
    expect(outcomes.every((o) => o.result && o.result.next.kind !== 'done')).toBe(true);
    expect((await attempts(id)).map((a) => a.attemptNumber)).toEqual([1, 2, 3]);
    expect((await delivery(id)).attemptCount).toBe(3);
  });

  it('deliveries running at once share statements and each still gets its own outcome', async () => {
    const { emit } = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 30; i += 1) ids.push(await emit());
    const failing = new Set(ids.filter((_, i) => i % 2 === 1));
    receiver.respond((req) => (failing.has(String(req.headers['x-perfectparser-delivery'])) ? { status: 500 } : { status: 200 }));
    // Room for all 30 at once (the in-flight cap has tests of its own).
    const d = deliverer({ ENDPOINT_CONCURRENCY: 100 });
    const outcomes = await Promise.all(ids.map((id) => run(d, id)));
    ids.forEach((id, i) => {
      if (failing.has(id)) expect(outcomes[i].result?.next.kind).toBe('retry');
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
    const d = createDeliverer({ db: { ...database.db, sql: flaky }, sender, gate, secretBox, logger, metrics, config });
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
    const { result } = await run(deliverer(), id);
    expect(result?.next.kind).toBe('retry');
    const [attempt] = await attempts(id);
    expect(attempt).toMatchObject({ status: 'failed', responseStatus: null, responseBody: null, error: 'connection_refused' });
  });
});

describe('endpoint isolation', () => {
  // Jobs get an id here (as BullMQ gives them), so a held one is put in its webhook's line.
  const job = (deliveryId: string, extra: { once?: boolean } = {}) => ({ deliveryId, jobId: deliveryId, enqueuedAt: Date.now(), ...extra });
  const heldCount = async (metrics: ReturnType<typeof deliverer>['metrics'], reason: string) =>
    (await metrics.held.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  it('over max_in_flight: the extra deliveries are held without an attempt, their rows untouched', async () => {
    const { webhook, emit } = await setup({ maxInFlight: 2 });
    const ids = [await emit(), await emit(), await emit(), await emit(), await emit()];
    receiver.respond({ status: 200, delayMs: 300 });
    const d = deliverer();
    const results = await Promise.all(ids.map((id) => d.deliver(job(id))));
    expect(results.filter((r) => r.outcome === 'succeeded')).toHaveLength(2);
    const held = results.filter((r) => r.outcome === 'held');
    expect(held).toHaveLength(3);
    for (const r of held) expect(r.next).toMatchObject({ kind: 'later', park: { webhookId: webhook.id, reason: 'in_flight', cap: 2 } });
    expect(await heldCount(d.metrics, 'in_flight')).toBe(3);
    for (const [i, r] of results.entries()) {
      if (r.outcome !== 'held') continue;
      expect(await delivery(ids[i])).toMatchObject({ status: 'pending', attemptCount: 0, lastAttemptAt: null });
      expect(await attempts(ids[i])).toHaveLength(0);
    }
    // Every slot was given back.
    expect((await gate.inspect(webhook.id)).inFlight).toBe(0);
  });

  it('over rate_limit_per_second: starts are paced 1000/rate ms apart, the rest held until their turn', async () => {
    const { emit } = await setup({ rateLimitPerSecond: 2 });
    const ids = [await emit(), await emit(), await emit(), await emit()];
    const d = deliverer();
    const before = receiver.received.length;
    let pending = ids;
    for (let round = 0; pending.length && round < 20; round += 1) {
      const results = await Promise.all(pending.map((id) => d.deliver(job(id))));
      for (const r of results.filter((x) => x.outcome === 'held')) {
        expect(r.next).toMatchObject({ kind: 'later', park: { reason: 'rate' } });
        const waitMs = r.next.kind === 'later' ? r.next.delayMs : 0;
        expect(waitMs).toBeGreaterThan(0);
        expect(waitMs).toBeLessThanOrEqual(500 * pending.length);
      }
      pending = pending.filter((_, i) => results[i].outcome === 'held');
      // Time itself: the deliverer is called by hand here, so the test lets the rate's next turn come.
      if (pending.length) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(pending).toHaveLength(0);
    const times = receiver.received.slice(before).map((cb) => cb.receivedAt);
    expect(times).toHaveLength(4);
    // Two per second, paced: each start at least ~500 ms after the one before.
    for (let i = 1; i < times.length; i += 1) expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(450);
    expect(await heldCount(d.metrics, 'rate')).toBeGreaterThanOrEqual(3);
  });

  it('circuit: opens after the threshold, holds without touching the schedule, probes once, reopens for twice as long, closes on success', async () => {
    const { webhook, emit } = await setup();
    const d = deliverer({ CIRCUIT_BREAKER_THRESHOLD: 3, CIRCUIT_BREAKER_COOLDOWN: 400 });
    receiver.respond({ status: 503 });
    const failed = [await emit(), await emit(), await emit()];
    for (const id of failed) expect((await d.deliver(job(id))).outcome).toBe('retrying');
    const opened = await webhookRow(webhook.id);
    expect(opened.circuit).toBe('open');
    expect(opened.circuitRetryAt!.getTime()).toBeGreaterThan(Date.now());
    expect(opened.circuitRetryAt!.getTime()).toBeLessThanOrEqual(Date.now() + 400);

    // Held: no request, no attempt, the retry schedule of a waiting delivery untouched.
    const waiting = await delivery(failed[0]);
    await database.db.prisma.delivery.update({ where: { id: failed[0] }, data: { nextAttemptAt: new Date(Date.now() - 1) } });
    const fresh = await emit();
    const before = receiver.received.length;
    for (const id of [fresh, failed[0]]) {
      const r = await d.deliver(job(id));
      expect(r).toMatchObject({ outcome: 'held', next: { kind: 'later', park: { reason: 'circuit' } } });
      const waitMs = r.next.kind === 'later' ? r.next.delayMs : 0;
      expect(waitMs).toBeLessThanOrEqual(400 + 1_000);
    }
    expect(receiver.received.length).toBe(before);
    expect(await delivery(fresh)).toMatchObject({ status: 'pending', attemptCount: 0 });
    expect(await delivery(failed[0])).toMatchObject({ status: 'pending_retry', attemptCount: waiting.attemptCount });

    // Cooldown over: exactly one probe goes; it fails, and the circuit reopens for twice the cooldown.
    await cooldownOver(webhook.id);
    const probes = await Promise.all([d.deliver(job(fresh)), d.deliver(job(await emit()))]);
    expect(probes.filter((r) => r.outcome === 'retrying')).toHaveLength(1);
    expect(probes.filter((r) => r.outcome === 'held')).toHaveLength(1);
    expect(receiver.received.length).toBe(before + 1);
    const reopened = await webhookRow(webhook.id);
    expect(reopened).toMatchObject({ circuit: 'open', circuitCooldownMs: 800 });

    // Next probe succeeds: closed, cooldown forgotten, deliveries flow.
    await cooldownOver(webhook.id);
    receiver.respond({ status: 200 });
    expect((await d.deliver(job(await emit()))).outcome).toBe('succeeded');
    expect(await webhookRow(webhook.id)).toMatchObject({ circuit: 'closed', circuitRetryAt: null, circuitCooldownMs: null });
    expect((await d.deliver(job(await emit()))).outcome).toBe('succeeded');
    const transitions = (await d.metrics.circuitTransitions.get()).values.map((v) => [v.labels.to, v.value]);
    expect(Object.fromEntries(transitions)).toEqual({ open: 2, half_open: 2, closed: 1 });
    expect((await gate.inspect(webhook.id)).failures).toBe(0);
  });

  it('a manual retry or a test send is not held by an open circuit, and its success closes it', async () => {
    const { webhook, emit } = await setup();
    await database.db.prisma.webhook.update({ where: { id: webhook.id }, data: { circuit: 'open', circuitRetryAt: new Date(Date.now() + 60_000), circuitCooldownMs: 60_000 } });
    const d = deliverer();
    const id = await emit();
    expect((await d.deliver(job(id))).outcome).toBe('held');
    expect((await d.deliver(job(id, { once: true }))).outcome).toBe('succeeded');
    expect(await webhookRow(webhook.id)).toMatchObject({ circuit: 'closed', circuitRetryAt: null });
  });

  it('4xx answers other than 429 neither open the circuit nor count toward it', async () => {
    const { webhook, emit } = await setup({ retryEnabled: false });
    const d = deliverer({ CIRCUIT_BREAKER_THRESHOLD: 2 });
    receiver.respond({ status: 500 });
    await d.deliver(job(await emit()));
    receiver.respond({ status: 404 });
    await d.deliver(job(await emit()));
    receiver.respond({ status: 500 });
    await d.deliver(job(await emit()));
    expect((await webhookRow(webhook.id)).circuit).toBe('closed');
    receiver.respond({ status: 429 });
    await d.deliver(job(await emit()));
    expect((await webhookRow(webhook.id)).circuit).toBe('open');
  });
});
