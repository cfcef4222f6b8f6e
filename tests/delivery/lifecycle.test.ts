import { waitUntil } from '../support/wait-until';
import { deliveryReaches, eventually, jobEnded, onlyDelivery, startStack, type Stack } from './stack';

// What the webhook's state does to its deliveries: pause and delete cancel
// pending retries, a 410 disables at once, a webhook failing for longer than
// AUTO_DISABLE_AFTER (1 ms here) is disabled.

describe('webhook lifecycle and deliveries', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ worker: { config: { AUTO_DISABLE_AFTER: 1 } } });
  });
  afterAll(() => stack?.close());
  beforeEach(() => stack.freshAccount());

  it('pausing a webhook cancels its pending retry when its turn comes; the receiver sees nothing more', async () => {
    const r = await stack.receiver({ status: 500 });
    const wh = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(1);
    const delivery = await onlyDelivery(stack, wh.id);
    await deliveryReaches(stack, delivery.id, 'pending_retry');
    expect((await stack.v1.patch(`/v1/webhooks/${wh.id}`, { is_active: false })).status).toBe(200);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'cancelled', 5_000);
    expect(attempts).toHaveLength(1);
    await jobEnded(stack, delivery.id);
    expect(r.received).toHaveLength(1);
  });

  it('deleting a webhook cancels its pending retries; the receiver sees nothing more', async () => {
    const r = await stack.receiver({ status: 500 });
    const wh = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(1);
    const delivery = await onlyDelivery(stack, wh.id);
    await deliveryReaches(stack, delivery.id, 'pending_retry');
    expect((await stack.v1.delete(`/v1/webhooks/${wh.id}`)).status).toBe(204);
    // Its retry job still comes due; the worker must end it without a send.
    await jobEnded(stack, delivery.id);
    expect(r.received).toHaveLength(1);
    // A deleted webhook's deliveries are gone from the API; the row says cancelled.
    const row = await stack.api.database.db.prisma.delivery.findUniqueOrThrow({ where: { id: delivery.id } });
    expect(row).toMatchObject({ status: 'cancelled', attemptCount: 1 });
  });

  it('a delivery pending when its webhook was paused is cancelled by the worker without a send', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url });
    // Pause between ingest and delivery: ingest with no worker running is the simplest way to get there.
    await stack.worker.delivery.worker.pause();
    try {
      await stack.publish('quota.warning', {}, 1);
      expect((await stack.v1.patch(`/v1/webhooks/${wh.id}`, { is_active: false })).status).toBe(200);
    } finally {
      await stack.worker.delivery.worker.resume();
    }
    const delivery = await onlyDelivery(stack, wh.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'cancelled');
    expect(attempts).toHaveLength(0);
    expect(r.received).toHaveLength(0);
  });

  it('a 410 Gone disables the webhook at once; later events create no delivery', async () => {
    const r = await stack.receiver({ status: 410, body: 'gone' });
    const wh = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'failed');
    expect(attempts).toEqual([expect.objectContaining({ response_status: 410, status: 'failed', next_retry_at: null })]);
    const disabled = await stack.webhook(wh.id);
    expect(disabled).toMatchObject({ status: 'disabled', disabled_reason: 'gone', is_active: false });

    // The API answers after its commit: no delivery was written for it, and once the first one's job has ended nothing more can be sent.
    await stack.publish('quota.warning', {}, 0);
    await jobEnded(stack, delivery.id);
    expect(r.received).toHaveLength(1);
    expect(await stack.deliveries(wh.id)).toHaveLength(1);
  });

  it('a webhook failing for longer than AUTO_DISABLE_AFTER is disabled (failing_too_long)', async () => {
    const r = await stack.receiver({ status: 500 });
    const wh = await stack.createWebhook({ url: r.url, max_retries: 0 });
    await stack.publish('quota.warning', {}, 1);
    const failing = await eventually(async () => {
      const w = await stack.webhook(wh.id);
      return w.status === 'failing' ? w : undefined;
    }, 5_000, 'webhook failing');

    // The next delivery that fails for good must come after failing_since + 1 ms.
    await waitUntil(() => Date.now() > Date.parse(String(failing.failing_since)) + 1, 'AUTO_DISABLE_AFTER past');
    await stack.publish('quota.warning', {}, 1);
    const disabled = await eventually(async () => {
      const w = await stack.webhook(wh.id);
      return w.status === 'disabled' ? w : undefined;
    }, 5_000, 'webhook disabled');
    expect(disabled).toMatchObject({ disabled_reason: 'failing_too_long', is_active: false });
    await stack.publish('quota.warning', {}, 0);
    expect(r.received).toHaveLength(2);

    // Re-enabling (PATCH is_active: true) makes it receive again.
    r.respond({ status: 200 });
    expect((await stack.v1.patch(`/v1/webhooks/${wh.id}`, { is_active: true })).status).toBe(200);
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(3);
    const healthy = await eventually(async () => {
      const w = await stack.webhook(wh.id);
      return w.status === 'active' ? w : undefined;
    }, 5_000, 'webhook active');
    expect(healthy.disabled_reason).toBeNull();
  });
});
