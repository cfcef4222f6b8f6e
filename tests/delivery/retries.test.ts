import { deliveryReaches, eventually, jobEnded, onlyDelivery, startStack, type Stack } from './stack';

// Failures and retries end to end, on the compressed schedule of the worker
// harness: RETRY_SCHEDULE 300ms,600ms,1200ms; DELIVERY_TIMEOUT 2s.

describe('retries', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack?.close());
  beforeEach(() => stack.freshAccount());

  it('retries on the schedule until a success, with the same delivery id, every attempt logged', async () => {
    const r = await stack.receiver((_req, i) => (i < 2 ? { status: 500, body: `fail ${i + 1}` } : { status: 200, body: 'ok' }));
    const wh = await stack.createWebhook({ url: `${r.url}?token=query-secret-abc`, secret: 'static-secret-xyz' });
    await stack.publish('quota.warning', { usage: 80 }, 1);
    const calls = await r.waitFor(3);
    const delivery = await onlyDelivery(stack, wh.id);
    const { delivery: final, attempts } = await deliveryReaches(stack, delivery.id, 'succeeded');

    expect(calls.map((c) => c.headers['x-perfectparser-delivery'])).toEqual([delivery.id, delivery.id, delivery.id]);
    expect(calls.map((c) => c.headers['webhook-id'])).toEqual([delivery.id, delivery.id, delivery.id]);
    // Same event, same bytes on every try (only the timestamp-bound signature may change).
    expect(new Set(calls.map((c) => c.body)).size).toBe(1);
    expect(calls[1].receivedAt - calls[0].receivedAt).toBeGreaterThanOrEqual(290);
    expect(calls[2].receivedAt - calls[1].receivedAt).toBeGreaterThanOrEqual(590);

    expect(final.attempt_count).toBe(3);
    expect(attempts.map((a) => [a.attempt_number, a.status, a.response_status, a.response_body])).toEqual([
      [1, 'failed', 500, 'fail 1'],
      [2, 'failed', 500, 'fail 2'],
      [3, 'succeeded', 200, 'ok'],
    ]);
    expect(attempts[0].next_retry_at).not.toBeNull();
    expect(Date.parse(attempts[0].next_retry_at!) - Date.parse(attempts[0].created_at)).toBe(300);
    expect(Date.parse(attempts[1].next_retry_at!) - Date.parse(attempts[1].created_at)).toBe(600);
    expect(attempts[2].next_retry_at).toBeNull();

    // One JSON log line per attempt, numbered; the host only, never a secret or the query string.
    const lines = stack.worker.attemptLogs(delivery.id);
    expect(lines.map((l) => [l.attempt_number, l.outcome, l.status])).toEqual([
      [1, 'retrying', 500],
      [2, 'retrying', 500],
      [3, 'succeeded', 200],
    ]);
    expect(lines.map((l) => l.attempt_id)).toEqual(attempts.map((a) => a.id));
    expect(lines[0]).toMatchObject({ webhook_id: wh.id, host: `127.0.0.1:${r.port}`, error: null });
    expect(typeof lines[0].duration_ms).toBe('number');
    const everything = JSON.stringify(stack.worker.logs);
    for (const secret of [wh.signing_secret, 'static-secret-xyz', 'query-secret-abc']) expect(everything).not.toContain(secret);
  });

  it('spent retries fail the delivery and mark the webhook failing; the next success clears it', async () => {
    const r = await stack.receiver({ status: 500 });
    const wh = await stack.createWebhook({ url: r.url, max_retries: 2 });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'failed');
    expect(attempts.map((a) => a.attempt_number)).toEqual([1, 2, 3]);
    expect(attempts[2].next_retry_at).toBeNull();
    expect(r.received).toHaveLength(3);
    const failing = await stack.webhook(wh.id);
    expect(failing.status).toBe('failing');
    expect(failing.failing_since).not.toBeNull();

    r.respond({ status: 200 });
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(4);
    const healthy = await eventually(async () => {
      const w = await stack.webhook(wh.id);
      return w.status === 'active' ? w : undefined;
    }, 5_000, 'webhook active again');
    expect(healthy.failing_since).toBeNull();
  });

  it('retry_enabled false: one attempt, then failed', async () => {
    const r = await stack.receiver({ status: 502 });
    const wh = await stack.createWebhook({ url: r.url, retry_enabled: false });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'failed');
    await jobEnded(stack, delivery.id);
    expect(attempts).toHaveLength(1);
    expect(r.received).toHaveLength(1);
  });

  it('max_retries 0: one attempt', async () => {
    const r = await stack.receiver({ status: 500 });
    const wh = await stack.createWebhook({ url: r.url, max_retries: 0 });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    await deliveryReaches(stack, delivery.id, 'failed');
    await jobEnded(stack, delivery.id);
    expect(r.received).toHaveLength(1);
    expect((await stack.delivery(delivery.id)).attempts).toHaveLength(1);
  });

  it('a receiver that hangs past DELIVERY_TIMEOUT fails the attempt with "timeout"', async () => {
    const r = await stack.receiver({ status: 200, hang: true });
    const wh = await stack.createWebhook({ url: r.url, max_retries: 0 });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'failed', 10_000);
    expect(attempts).toEqual([expect.objectContaining({ status: 'failed', error: 'timeout', response_status: null, response_body: null })]);
    expect(attempts[0].duration_ms).toBeGreaterThanOrEqual(1_900);
    expect(attempts[0].duration_ms).toBeLessThan(4_000);
  });

  it('does not follow a redirect: a 302 is a failure ("redirect") and the Location target sees nothing', async () => {
    const target = await stack.receiver();
    const r = await stack.receiver({ status: 302, headers: { location: target.url } });
    const wh = await stack.createWebhook({ url: r.url, max_retries: 0 });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'failed');
    expect(attempts).toEqual([expect.objectContaining({ status: 'failed', error: 'redirect', response_status: 302 })]);
    await jobEnded(stack, delivery.id);
    expect(r.received).toHaveLength(1);
    expect(target.received).toHaveLength(0);
  });

  it('honours Retry-After on a 429: the next attempt comes no sooner', async () => {
    const r = await stack.receiver((_req, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 }));
    const wh = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    const [first, second] = await r.waitFor(2, 10_000);
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(2_000);
    const delivery = await onlyDelivery(stack, wh.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'succeeded');
    expect(attempts[0]).toMatchObject({ status: 'failed', response_status: 429, error: null });
    expect(Date.parse(attempts[0].next_retry_at!) - Date.parse(attempts[0].created_at)).toBe(2_000);
  });

  it('a Retry-After sooner than the schedule does not hurry the retry', async () => {
    const r = await stack.receiver((_req, i) => (i === 0 ? { status: 503, headers: { 'retry-after': '0' } } : { status: 200 }));
    await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    const [first, second] = await r.waitFor(2, 5_000);
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(290);
  });
});
