import { eventDataSchemas, type EventDataName } from '@hookline/domain';
import type { ReceivedCallback } from '../support/receiver';
import { verifyCallback } from '../support/verifier';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { allDeliveriesFinal, eventually, startStack, type Stack } from './stack';

// Operational events end to end (real API, worker and receivers):
// webhook.failing, webhook.disabled and delivery.exhausted reach the account's
// other webhooks subscribed to them, signed like any callback; never the
// webhook they are about; never caused by the delivery of an operational
// event; exactly once per transition, with two workers racing.
//
// AUTO_DISABLE_AFTER is 1 ms here: the first spent delivery marks a webhook
// failing, the next one disables it (failing_too_long). The circuit breaker is
// out of the way (threshold 1000), so failures are not held by it.

const OPS = ['webhook.failing', 'webhook.disabled', 'delivery.exhausted'];

type Callback = { id: string; event: string; test: boolean; data: Record<string, unknown> };
const parse = (r: ReceivedCallback): Callback => JSON.parse(r.body) as Callback;
const named = (r: { received: ReceivedCallback[] }, event: string) => r.received.map(parse).filter((c) => c.event === event);
/**
 * The distinct events of one name a receiver got, as a receiver that deduplicates on the event id
 * sees them: delivery is at least once (a worker that stalls past its lock may send a callback
 * again, with the same id), but each transition must be one event.
 */
const distinct = (r: { received: ReceivedCallback[] }, event: string) => [...new Map(named(r, event).map((c) => [c.id, c])).values()];

/** The data of each callback, checked against its event's published schema. */
function expectValid(callbacks: Callback[]) {
  for (const c of callbacks) {
    const parsed = eventDataSchemas[c.event as EventDataName].safeParse(c.data);
    expect([c.event, parsed.success ? null : parsed.error.issues]).toEqual([c.event, null]);
  }
}

describe('operational events', () => {
  let stack: Stack;
  let second: WorkerHarness;
  beforeAll(async () => {
    const config = { AUTO_DISABLE_AFTER: 1, CIRCUIT_BREAKER_THRESHOLD: 1_000 };
    stack = await startStack({ worker: { config } });
    // A second worker on the same database and queue: transitions race between the two.
    second = await startWorkerHarness({ databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, config });
  });
  afterAll(async () => {
    await second?.close();
    await stack?.close();
  });
  beforeEach(() => stack.freshAccount());

  it('are in the catalog as API events with their data schemas, and the platform cannot publish them', async () => {
    const types = await stack.v1.get('/v1/event-types');
    expect(types.status).toBe(200);
    for (const name of OPS) {
      expect(types.body.data).toContainEqual(expect.objectContaining({ name, source: 'api', schema: expect.objectContaining({ title: `${name} data` }) }));
      const res = await stack.api.platform.post('/internal/v1/events', { account_id: stack.account.accountId, event: name, data: {} });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'INVALID_PAYLOAD', details: [{ path: 'event', message: expect.stringContaining('sent by Hookline itself') }] });
    }
  });

  it('a delivery that spends its retries: delivery.exhausted and webhook.failing reach the other webhook, signed; the next one disables it, once', async () => {
    const failingReceiver = await stack.receiver({ status: 500, body: 'down' });
    const listener = await stack.receiver();
    // The troubled webhook subscribes to the operational events too: it must never get one about itself.
    const troubled = await stack.createWebhook({ url: failingReceiver.url, events: ['quota.warning', ...OPS], max_retries: 1 });
    const ops = await stack.createWebhook({ url: listener.url, events: OPS });

    const eventId = await stack.publish('quota.warning', {}, 1);
    await listener.waitFor(2, 10_000);
    const exhausted = named(listener, 'delivery.exhausted');
    const failing = named(listener, 'webhook.failing');
    const [delivery] = await stack.deliveries(troubled.id);
    expect(exhausted.map((c) => c.data)).toEqual([{
      delivery_id: delivery.id, webhook_id: troubled.id, event_id: eventId, event: 'quota.warning', attempt_count: 2, last_error: null, last_response_status: 500,
    }]);
    const state = await stack.webhook(troubled.id);
    expect(state.status).toBe('failing');
    expect(failing.map((c) => c.data)).toEqual([{ webhook_id: troubled.id, url: troubled.url, failing_since: state.failing_since, last_error: null, last_response_status: 500 }]);
    expectValid([...exhausted, ...failing]);
    // Delivered like any callback: signed with the listener's secret, named in the headers.
    for (const callback of listener.received) {
      expect(verifyCallback(ops.signing_secret, callback.body, callback.headers)).toEqual({ standard: true, brand: true });
      expect(callback.headers['x-perfectparser-event']).toBe(parse(callback).event);
    }

    // Failing already: the next spent delivery disables it (failing_too_long), and is exhausted too; no second webhook.failing.
    const second = await stack.publish('quota.warning', {}, 1);
    await listener.waitFor(4, 10_000);
    await allDeliveriesFinal(stack);
    expect(named(listener, 'webhook.failing')).toHaveLength(1);
    expect(named(listener, 'webhook.disabled').map((c) => c.data)).toEqual([{ webhook_id: troubled.id, url: troubled.url, reason: 'failing_too_long' }]);
    expect(named(listener, 'delivery.exhausted').map((c) => c.data.event_id)).toEqual([eventId, second]);
    expectValid(listener.received.map(parse));
    expect(await stack.webhook(troubled.id)).toMatchObject({ status: 'disabled', disabled_reason: 'failing_too_long' });

    // The troubled webhook heard nothing about itself: it got its own quota.warning attempts only.
    expect(failingReceiver.received.map((c) => parse(c).event)).toEqual(Array(4).fill('quota.warning'));
    expect((await stack.deliveries(troubled.id)).map((d) => d.event)).toEqual(['quota.warning', 'quota.warning']);
  });

  it('a 410 Gone: webhook.disabled (gone) and delivery.exhausted, no webhook.failing', async () => {
    const gone = await stack.receiver({ status: 410, body: 'gone' });
    const listener = await stack.receiver();
    const troubled = await stack.createWebhook({ url: gone.url });
    await stack.createWebhook({ url: listener.url, events: OPS });
    const eventId = await stack.publish('quota.warning', {}, 1);
    await listener.waitFor(2, 10_000);
    await allDeliveriesFinal(stack);
    const events = listener.received.map(parse);
    expect(events.map((c) => c.event).sort()).toEqual(['delivery.exhausted', 'webhook.disabled']);
    expect(named(listener, 'webhook.disabled')[0].data).toEqual({ webhook_id: troubled.id, url: troubled.url, reason: 'gone' });
    expect(named(listener, 'delivery.exhausted')[0].data).toMatchObject({ webhook_id: troubled.id, event_id: eventId, attempt_count: 1, last_response_status: 410 });
    expectValid(events);
  });

  it('a failing test send announces nothing: it is not the delivery of an event', async () => {
    const down = await stack.receiver({ status: 500 });
    const listener = await stack.receiver();
    const troubled = await stack.createWebhook({ url: down.url });
    await stack.createWebhook({ url: listener.url, events: OPS });
    const res = await stack.v1.post(`/v1/webhooks/${troubled.id}/test`);
    expect(res.status).toBe(200);
    expect(res.body.attempt).toMatchObject({ status: 'failed', response_status: 500 });
    await allDeliveriesFinal(stack);
    expect(listener.received).toHaveLength(0);
  });

  it('deliveries of operational events never cause operational events, even when they fail, fail the webhook and disable it', async () => {
    const down = await stack.receiver({ status: 500 });
    const alsoDown = await stack.receiver({ status: 500 });
    const listener = await stack.receiver();
    const troubled = await stack.createWebhook({ url: down.url, max_retries: 0 });
    // A listener that is itself down: its operational deliveries fail, it becomes failing, then disabled.
    const brokenOps = await stack.createWebhook({ url: alsoDown.url, events: OPS, max_retries: 0 });
    await stack.createWebhook({ url: listener.url, events: OPS });

    await stack.publish('quota.warning', {}, 1);
    await listener.waitFor(2, 10_000); // exhausted + failing about `troubled`
    await stack.publish('quota.warning', {}, 1);
    await listener.waitFor(4, 10_000); // exhausted + disabled about `troubled`
    await eventually(async () => (await stack.webhook(brokenOps.id)).status === 'disabled', 10_000, 'the broken listener disabled');
    await allDeliveriesFinal(stack);

    // The broken listener went failing and disabled through its operational deliveries, and nobody heard of it.
    expect(alsoDown.received.length).toBeGreaterThanOrEqual(2);
    expect(await stack.webhook(brokenOps.id)).toMatchObject({ status: 'disabled', disabled_reason: 'failing_too_long' });
    const heard = listener.received.map(parse);
    expect(heard.map((c) => c.data.webhook_id)).toEqual(Array(4).fill(troubled.id));
    expect(heard.map((c) => c.event).sort()).toEqual(['delivery.exhausted', 'delivery.exhausted', 'webhook.disabled', 'webhook.failing']);
  });

  it('exactly once per transition with two workers: one webhook.failing, one webhook.disabled, one delivery.exhausted per failed delivery', async () => {
    const down = await stack.receiver({ status: 503, body: 'busy', delayMs: 50 });
    const listener = await stack.receiver();
    const troubled = await stack.createWebhook({ url: down.url, max_retries: 0, max_in_flight: 20 });
    await stack.createWebhook({ url: listener.url, events: OPS });
    // All 30 written before either worker starts on them (the first failures would disable the webhook meanwhile).
    await Promise.all([stack.worker, second].map((h) => h.delivery.worker.pause()));
    try {
      for (let i = 0; i < 30; i += 1) await stack.publish('quota.warning', { n: i }, 1);
    } finally {
      for (const h of [stack.worker, second]) void h.delivery.worker.resume();
    }

    // Every delivery of the troubled webhook ends: failed, or cancelled once the webhook was disabled.
    const finals = await eventually(async () => {
      const list = await stack.deliveries(troubled.id);
      return list.length === 30 && list.every((d) => d.status === 'failed' || d.status === 'cancelled') ? list : undefined;
    }, 20_000, 'every delivery final');
    const failed = finals.filter((d) => d.status === 'failed').map((d) => d.id).sort();
    await eventually(async () => distinct(listener, 'delivery.exhausted').length >= failed.length, 10_000, 'the exhausted events');
    await allDeliveriesFinal(stack);

    // One event per transition: a second event about the same delivery or webhook would carry
    // another id and be counted here.
    const exhausted = distinct(listener, 'delivery.exhausted').map((c) => String(c.data.delivery_id)).sort();
    expect(exhausted).toEqual(failed);
    expect(distinct(listener, 'webhook.failing')).toHaveLength(1);
    expect(await stack.webhook(troubled.id)).toMatchObject({ status: 'disabled', disabled_reason: 'failing_too_long' });
    expect(distinct(listener, 'webhook.disabled')).toHaveLength(1);
    // Both workers attempted: the race was real.
    const workedOn = (h: WorkerHarness) => h.logs.filter((l) => l.message === 'delivery attempt' && l.webhook_id === troubled.id).length;
    expect(workedOn(stack.worker)).toBeGreaterThan(0);
    expect(workedOn(second)).toBeGreaterThan(0);
    expectValid(listener.received.map(parse));
  });
});
