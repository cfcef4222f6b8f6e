import { verifyBrandSignature, verifyCallback, verifyStandardWebhook } from '../support/verifier';
import { allDeliveriesFinal, deliveryReaches, eventually, onlyDelivery, sleep, startStack, type Stack } from '../delivery/stack';

// The integrator API and the delivery rules of docs/api.md at their edges, end to end (real API, worker,
// PostgreSQL, Redis and receivers): the end of the 24 h rotation window,
// retry_enabled / max_retries edits reaching retries already scheduled, the
// 24 h cap on Retry-After, the 2 KiB response_body, the attempt object's
// fields and formats, quota events, recovery, and a delete racing a manual
// retry. Retries here come every second (flat schedule), so a PATCH made
// after an attempt lands before the next one.

const ISO_MS_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const DAY_MS = 24 * 3_600_000;
const STEP_MS = 1_000;

describe('delivery edges', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ worker: { config: { RETRY_SCHEDULE: [STEP_MS, STEP_MS, STEP_MS, STEP_MS, STEP_MS] } } });
  });
  afterAll(() => stack?.close());
  beforeEach(() => stack.freshAccount());

  it('after the 24 h rotation window the old secret no longer signs: one signature per header, the new secret’s', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url });
    const rotated = await stack.v1.post(`/v1/webhooks/${wh.id}/rotate-secret`);
    const fresh: string = rotated.body.webhook.signing_secret;
    // 24 h later, as the database sees it.
    await stack.api.database.db.prisma.webhook.update({ where: { id: wh.id }, data: { previousSecretExpires: new Date(Date.now() - 1_000) } });

    await stack.publish('quota.warning', { usage: 80 }, 1);
    const [cb] = await r.waitFor(1);
    expect(String(cb.headers['x-perfectparser-signature']).split(',')).toHaveLength(1);
    expect(String(cb.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(verifyCallback(fresh, cb.body, cb.headers)).toEqual({ standard: true, brand: true });
    expect(verifyCallback(wh.signing_secret, cb.body, cb.headers)).toEqual({ standard: false, brand: false });
  });

  it('retry_enabled set to false while a retry waits: the waiting retry is the last attempt', async () => {
    const r = await stack.receiver({ status: 500 });
    const wh = await stack.createWebhook({ url: r.url, max_retries: 5 });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    await deliveryReaches(stack, delivery.id, 'pending_retry');
    expect((await stack.v1.patch(`/v1/webhooks/${wh.id}`, { retry_enabled: false })).body.webhook.retry_enabled).toBe(false);

    const { attempts } = await deliveryReaches(stack, delivery.id, 'failed', 10_000);
    expect(attempts.map((a) => [a.attempt_number, a.next_retry_at === null])).toEqual([[1, false], [2, true]]);
    await sleep(STEP_MS * 1.5); // past the slot a third attempt would have had
    expect(r.received).toHaveLength(2);
    expect((await stack.webhook(wh.id)).status).toBe('failing');
  });

  it('max_retries lowered while a retry waits stops the retries there; raised, it extends them', async () => {
    const lowered = await stack.receiver({ status: 500 });
    const a = await stack.createWebhook({ url: lowered.url, max_retries: 5 });
    const raised = await stack.receiver({ status: 503 });
    const b = await stack.createWebhook({ url: raised.url, max_retries: 1 });
    await stack.publish('quota.warning', {}, 2);
    const [da, db] = [await onlyDelivery(stack, a.id), await onlyDelivery(stack, b.id)];
    await Promise.all([deliveryReaches(stack, da.id, 'pending_retry'), deliveryReaches(stack, db.id, 'pending_retry')]);
    await stack.v1.patch(`/v1/webhooks/${a.id}`, { max_retries: 1 }).expect(200);
    await stack.v1.patch(`/v1/webhooks/${b.id}`, { max_retries: 3 }).expect(200);

    const lowerEnd = await deliveryReaches(stack, da.id, 'failed', 10_000);
    expect(lowerEnd.attempts.map((x) => x.attempt_number)).toEqual([1, 2]);
    const raiseEnd = await deliveryReaches(stack, db.id, 'failed', 15_000);
    expect(raiseEnd.attempts.map((x) => x.attempt_number)).toEqual([1, 2, 3, 4]);
    expect(raiseEnd.attempts.map((x) => x.next_retry_at === null)).toEqual([false, false, false, true]);
    expect(lowered.received).toHaveLength(2);
    expect(raised.received).toHaveLength(4);
  });

  it('Retry-After is honoured up to 24 h and no further (seconds on a 429, an HTTP date on a 503)', async () => {
    const seconds = await stack.receiver({ status: 429, headers: { 'retry-after': String(30 * 86_400) } });
    const date = await stack.receiver({ status: 503, headers: { 'retry-after': new Date(Date.now() + 30 * DAY_MS).toUTCString() } });
    const w1 = await stack.createWebhook({ url: seconds.url });
    const w2 = await stack.createWebhook({ url: date.url });
    await stack.publish('quota.warning', {}, 2);
    for (const wh of [w1, w2]) {
      const delivery = await onlyDelivery(stack, wh.id);
      const { delivery: waiting, attempts } = await deliveryReaches(stack, delivery.id, 'pending_retry');
      const [attempt] = attempts;
      expect(Date.parse(attempt.next_retry_at!) - Date.parse(attempt.created_at)).toBe(DAY_MS);
      expect(waiting.next_attempt_at).toBe(attempt.next_retry_at);
      // The queue holds the retry for the same 24 h (the job is delayed, not due). The attempt is
      // recorded before the job moves back to the queue, so wait for the move.
      const job = await stack.api.queue.getJob(delivery.id);
      const state = await eventually(async () => {
        const now = await job?.getState();
        return now === 'active' ? undefined : now;
      }, 10_000, 'the retry job to leave the active state');
      expect(state).toBe('delayed');
    }
  });

  it('response_body keeps the first 2 KiB of the answer, on failed and succeeded attempts alike', async () => {
    const big = 'A'.repeat(1_000) + 'B'.repeat(1_048) + 'C'.repeat(20_000);
    const failing = await stack.receiver({ status: 500, body: big });
    const ok = await stack.receiver({ status: 200, body: big });
    const w1 = await stack.createWebhook({ url: failing.url, max_retries: 0 });
    const w2 = await stack.createWebhook({ url: ok.url });
    await stack.publish('quota.warning', {}, 2);
    const failed = await deliveryReaches(stack, (await onlyDelivery(stack, w1.id)).id, 'failed');
    const succeeded = await deliveryReaches(stack, (await onlyDelivery(stack, w2.id)).id, 'succeeded');
    for (const { attempts } of [failed, succeeded]) {
      expect(attempts[0].response_body).toBe(big.slice(0, 2048));
    }
    const recent = await stack.v1.get(`/v1/webhooks/${w2.id}`);
    expect(recent.body.recent_attempts[0].response_body).toHaveLength(2048);
  });

  it('attempts and deliveries carry exactly the contract’s fields, prefixed ids and ISO times in UTC with milliseconds', async () => {
    const r = await stack.receiver((_req, i) => (i === 0 ? { status: 500, body: 'no' } : { status: 204 }));
    const wh = await stack.createWebhook({ url: r.url, events: ['quota.exceeded'] });
    const eventId = await stack.publish('quota.exceeded', { usage: 120, limit: 100 }, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    const { delivery: done, attempts } = await deliveryReaches(stack, delivery.id, 'succeeded');

    expect(Object.keys(done).sort()).toEqual(['attempt_count', 'created_at', 'event', 'event_id', 'id', 'last_attempt_at', 'next_attempt_at', 'status', 'webhook_id']);
    expect(done).toMatchObject({ id: expect.stringMatching(/^dlv_/), webhook_id: wh.id, event_id: eventId, event: 'quota.exceeded', attempt_count: 2, next_attempt_at: null });
    expect((done as unknown as { created_at: string }).created_at).toMatch(ISO_MS_Z);
    expect((done as unknown as { last_attempt_at: string }).last_attempt_at).toMatch(ISO_MS_Z);
    expect(eventId).toMatch(/^evt_/);

    expect(attempts).toHaveLength(2);
    for (const attempt of attempts) {
      expect(Object.keys(attempt).sort()).toEqual(['attempt_number', 'created_at', 'delivery_id', 'duration_ms', 'error', 'event', 'event_id', 'id', 'next_retry_at', 'response_body', 'response_status', 'status']);
      expect(attempt).toMatchObject({ id: expect.stringMatching(/^att_/), delivery_id: delivery.id, event_id: eventId, event: 'quota.exceeded', error: null });
      expect(attempt.created_at).toMatch(ISO_MS_Z);
      expect(Number.isInteger(attempt.duration_ms) && attempt.duration_ms >= 0).toBe(true);
    }
    expect(attempts[0]).toMatchObject({ attempt_number: 1, status: 'failed', response_status: 500, response_body: 'no', next_retry_at: expect.stringMatching(ISO_MS_Z) });
    expect(attempts[1]).toMatchObject({ attempt_number: 2, status: 'succeeded', response_status: 204, next_retry_at: null });

    // The quota event as the integrator receives it.
    const [, cb] = r.received;
    expect(JSON.parse(cb.body)).toEqual({ id: eventId, event: 'quota.exceeded', created_at: expect.stringMatching(ISO_MS_Z), test: false, data: { usage: 120, limit: 100 } });
    expect(cb.headers['x-perfectparser-event']).toBe('quota.exceeded');
    expect(verifyBrandSignature(wh.signing_secret, cb.body, cb.headers) && verifyStandardWebhook(wh.signing_secret, cb.body, cb.headers)).toBe(true);
  });

  it('quota.warning and quota.exceeded reach only the webhooks subscribed to them', async () => {
    const warn = await stack.receiver();
    const exceed = await stack.receiver();
    await stack.createWebhook({ url: warn.url, events: ['quota.warning'] });
    await stack.createWebhook({ url: exceed.url, events: ['quota.exceeded'] });
    await stack.publish('quota.warning', { usage: 80 }, 1);
    await stack.publish('quota.exceeded', { usage: 101 }, 1);
    const [w] = await warn.waitFor(1);
    const [e] = await exceed.waitFor(1);
    expect([JSON.parse(w.body).event, JSON.parse(e.body).event]).toEqual(['quota.warning', 'quota.exceeded']);
    await allDeliveriesFinal(stack);
    expect([warn.received.length, exceed.received.length]).toEqual([1, 1]);
  });

  it('recover gives a failed delivery of the window one more attempt, under its own delivery id', async () => {
    const r = await stack.receiver({ status: 500 });
    const wh = await stack.createWebhook({ url: r.url, max_retries: 0 });
    const since = new Date(Date.now() - 1_000).toISOString();
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    await deliveryReaches(stack, delivery.id, 'failed');
    r.respond({ status: 200 });

    // A window that ended before the delivery was created requeues nothing.
    const before = await stack.v1.post(`/v1/webhooks/${wh.id}/recover`, { since: '2020-01-01T00:00:00Z', until: since });
    expect(before.status).toBe(202);
    expect(before.body).toEqual({ requeued: 0 });

    const res = await stack.v1.post(`/v1/webhooks/${wh.id}/recover`, { since });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ requeued: 1 });
    const { attempts } = await deliveryReaches(stack, delivery.id, 'succeeded');
    expect(attempts.map((a) => a.status)).toEqual(['failed', 'succeeded']);
    const calls = await r.waitFor(2);
    expect(calls.map((c) => c.headers['x-perfectparser-delivery'])).toEqual([delivery.id, delivery.id]);
    expect((await stack.webhook(wh.id)).status).toBe('active');
  });

  it('a webhook deleted while a manual retry and a scheduled retry wait gets neither', async () => {
    const r = await stack.receiver({ status: 500 });
    const wh = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    await deliveryReaches(stack, delivery.id, 'pending_retry');

    await stack.worker.delivery.worker.pause();
    try {
      expect((await stack.v1.post(`/v1/deliveries/${delivery.id}/retry`)).status).toBe(202);
      expect((await stack.v1.delete(`/v1/webhooks/${wh.id}`)).status).toBe(204);
    } finally {
      await stack.worker.delivery.worker.resume();
    }
    // Both jobs (the manual one and the scheduled retry) run and end without a send.
    await eventually(async () => {
      const jobs = await stack.api.queue.getJobs(['waiting', 'active', 'delayed', 'prioritized']);
      return jobs.every((job) => job.data.deliveryId !== delivery.id);
    }, 10_000, 'both jobs done');
    expect(r.received).toHaveLength(1);
    const row = await stack.api.database.db.prisma.delivery.findUniqueOrThrow({ where: { id: delivery.id } });
    expect(row).toMatchObject({ status: 'cancelled', attemptCount: 1 });
    expect((await stack.v1.get(`/v1/deliveries/${delivery.id}`)).status).toBe(404);
  });
});
