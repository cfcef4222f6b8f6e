import request from 'supertest';
import { newId } from '@hookline/domain';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { lastDelivery, listDeliveriesWithAttempts } from '../src/services/deliveries';

// The delivery log serves rows of both shapes the same (docs/operations.md,
// "Rolling upgrades and the compact history"): rows the previous version wrote
// (a delivery carrying its account and event name, an attempt its event id and
// name) and rows of the compact history (those copies NULL, read from the
// webhook, the event and the delivery instead).

let h: ApiHarness;

beforeAll(async () => {
  h = await startApiHarness();
});

afterAll(async () => {
  h.deps.db.compact = false;
  await h?.close();
});

type Integrator = Awaited<ReturnType<ApiHarness['integrator']>>;

async function createWebhook(who: Integrator) {
  const res = await request(h.app)
    .post('/v1/webhooks')
    .set(who.auth)
    .send({ url: `http://127.0.0.1:9/${newId('webhook')}`, events: ['quota.warning', 'quota.exceeded'] });
  expect(res.status).toBe(201);
  return res.body.webhook.id as string;
}

/** Publishes one event in the given shape and records one succeeded attempt of its delivery, as a worker of that shape does. */
async function deliveredIn(shape: 'previous' | 'compact', who: Integrator, webhookId: string, event: string) {
  h.deps.db.compact = shape === 'compact';
  try {
    const res = await h.platform.post('/internal/v1/events', { account_id: who.accountId, event, data: { usage: 1, limit: 2 } }).expect(202);
    const eventId = res.body.event.id as string;
    const [delivery] = await h.deps.db.sql.query<{ id: string; account_id: string | null; event: string | null }>(
      'SELECT id, account_id, event FROM deliveries WHERE event_id = $1 AND webhook_id = $2', [eventId, webhookId],
    );
    const copies = shape === 'previous';
    expect(delivery.account_id).toBe(copies ? who.accountId : null);
    expect(delivery.event).toBe(copies ? event : null);
    const at = new Date();
    await h.deps.db.sql.query(
      `UPDATE deliveries SET status = 'succeeded', attempt_count = 1, last_attempt_at = $2, completed_at = $2, next_attempt_at = NULL WHERE id = $1`,
      [delivery.id, at],
    );
    await h.deps.db.sql.query(
      `INSERT INTO attempts (id, delivery_id, webhook_id, event_id, event, attempt_number, status, response_status, response_body, duration_ms, created_at)
       VALUES ($1, $2, $3, $4, $5, 1, 'succeeded', 200, '{}', 12, $6)`,
      [newId('attempt'), delivery.id, webhookId, copies ? eventId : null, copies ? event : null, at],
    );
    return { deliveryId: delivery.id, eventId };
  } finally {
    h.deps.db.compact = false;
  }
}

describe('the delivery log over rows of the previous version and of the compact history', () => {
  let owner: Integrator;
  let webhookId: string;
  let previous: { deliveryId: string; eventId: string };
  let compact: { deliveryId: string; eventId: string };

  beforeAll(async () => {
    owner = await h.integrator();
    webhookId = await createWebhook(owner);
    previous = await deliveredIn('previous', owner, webhookId, 'quota.warning');
    compact = await deliveredIn('compact', owner, webhookId, 'quota.exceeded');
  });

  it('GET /v1/deliveries/:id serves both shapes alike, with their event and attempts', async () => {
    for (const [row, event] of [[previous, 'quota.warning'], [compact, 'quota.exceeded']] as const) {
      const res = await request(h.app).get(`/v1/deliveries/${row.deliveryId}`).set(owner.auth);
      expect(res.status).toBe(200);
      expect(res.body.delivery).toMatchObject({ id: row.deliveryId, webhook_id: webhookId, event_id: row.eventId, event, status: 'succeeded', attempt_count: 1 });
      expect(res.body.attempts).toEqual([expect.objectContaining({ delivery_id: row.deliveryId, event_id: row.eventId, event, attempt_number: 1, status: 'succeeded', response_status: 200 })]);
    }
  });

  it('the list and its event filter find both shapes', async () => {
    const all = await request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`).set(owner.auth);
    expect(all.status).toBe(200);
    expect(all.body.data.map((d: { id: string; event: string }) => [d.id, d.event])).toEqual([[compact.deliveryId, 'quota.exceeded'], [previous.deliveryId, 'quota.warning']]);
    for (const [event, row] of [['quota.warning', previous], ['quota.exceeded', compact]] as const) {
      const res = await request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`).query({ event }).set(owner.auth);
      expect(res.body.data.map((d: { id: string }) => d.id)).toEqual([row.deliveryId]);
    }
  });

  it("the dashboard's log and a webhook's last delivery read the event name and the attempts of both shapes", async () => {
    const log = await listDeliveriesWithAttempts(h.deps, owner.accountId, webhookId, { limit: 10 });
    expect(log.data.map((d) => [d.delivery.id, d.delivery.event, d.attempts.map((a) => [a.event_id, a.event, a.response_status])])).toEqual([
      [compact.deliveryId, 'quota.exceeded', [[compact.eventId, 'quota.exceeded', 200]]],
      [previous.deliveryId, 'quota.warning', [[previous.eventId, 'quota.warning', 200]]],
    ]);
    expect(await lastDelivery(h.deps, webhookId)).toMatchObject({ status: 'succeeded', event: 'quota.exceeded', responseStatus: 200, error: null });
  });

  it("the webhook's recent attempts carry their event id and name in both shapes", async () => {
    const res = await request(h.app).get(`/v1/webhooks/${webhookId}`).set(owner.auth);
    expect(res.status).toBe(200);
    expect(res.body.recent_attempts.map((a: { delivery_id: string; event_id: string; event: string }) => [a.delivery_id, a.event_id, a.event]).sort()).toEqual(
      [[previous.deliveryId, previous.eventId, 'quota.warning'], [compact.deliveryId, compact.eventId, 'quota.exceeded']].sort(),
    );
  });

  it("another account sees neither (a compact delivery's account is its webhook's)", async () => {
    const stranger = await h.integrator();
    for (const row of [previous, compact]) {
      expect((await request(h.app).get(`/v1/deliveries/${row.deliveryId}`).set(stranger.auth)).status).toBe(404);
    }
  });
});
