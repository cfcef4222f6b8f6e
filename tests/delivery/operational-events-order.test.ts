import type { ReceivedCallback } from '../support/receiver';
import { eventually, startStack, type Stack } from './stack';

// A webhook that starts failing is announced once (webhook.failing) to the
// account's other subscribing webhooks, whatever the order of its failures:
// here its first spent delivery is forced to be the delivery of an
// operational event (which announces nothing and only marks it failing), and
// its ordinary deliveries fail afterwards. Real API, worker and receivers.
// (AUTO_DISABLE_AFTER stays at its 3 days: nothing is disabled here.)

const OPS = ['webhook.failing', 'webhook.disabled', 'delivery.exhausted'];

type Callback = { event: string; data: Record<string, unknown> };
const parse = (r: ReceivedCallback): Callback => JSON.parse(r.body) as Callback;

describe('operational events, whatever the order of a webhook\'s failures', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ worker: { config: { CIRCUIT_BREAKER_THRESHOLD: 1_000 } } });
  });
  afterAll(() => stack?.close());

  it('a webhook first failed by an operational delivery is announced once when its ordinary deliveries fail', async () => {
    const down = await stack.receiver({ status: 500, body: 'down' });
    const alsoDown = await stack.receiver({ status: 503, body: 'busy' });
    const listener = await stack.receiver();
    // `other` fails first; the operational events about it are the first deliveries `troubled` fails.
    const other = await stack.createWebhook({ url: alsoDown.url, events: ['quota.exceeded'], max_retries: 0 });
    const troubled = await stack.createWebhook({ url: down.url, events: ['quota.warning', ...OPS], max_retries: 0 });
    const ops = await stack.createWebhook({ url: listener.url, events: OPS });

    await stack.publish('quota.exceeded', {}, 1);
    await listener.waitFor(2, 10_000); // delivery.exhausted and webhook.failing about `other`
    const marked = await eventually(async () => {
      const state = await stack.webhook(troubled.id);
      return state.status === 'failing' ? state : undefined;
    }, 10_000, 'troubled marked failing by its operational deliveries');
    // Its only failures so far are operational deliveries: they announce nothing.
    await eventually(async () => down.received.length === 2, 10_000, 'both operational deliveries tried');
    expect(down.received.map((c) => parse(c).event).sort()).toEqual(['delivery.exhausted', 'webhook.failing']);
    expect(listener.received.map(parse).map((c) => c.data.webhook_id)).toEqual([other.id, other.id]);

    // Now an ordinary delivery of its fails: the failing spell is announced, once, with its start.
    await stack.publish('quota.warning', {}, 1);
    await listener.waitFor(4, 10_000);
    await stack.publish('quota.warning', {}, 1);
    await listener.waitFor(5, 10_000);
    await eventually(async () => down.received.length === 4, 10_000, 'both ordinary deliveries tried');
    // Everything has ended: the troubled webhook's deliveries failed, the listener's five delivered.
    await eventually(async () => (await stack.deliveries(troubled.id)).every((d) => d.status === 'failed'), 10_000, 'troubled\'s deliveries ended');
    await eventually(async () => {
      const list = await stack.deliveries(ops.id);
      return list.length === 5 && list.every((d) => d.status === 'succeeded');
    }, 10_000, 'the listener\'s five deliveries');
    const heard = listener.received.map(parse);
    const aboutTroubled = heard.filter((c) => c.data.webhook_id === troubled.id);
    expect(aboutTroubled.map((c) => c.event).sort()).toEqual(['delivery.exhausted', 'delivery.exhausted', 'webhook.failing']);
    const failing = aboutTroubled.filter((c) => c.event === 'webhook.failing');
    expect(failing.map((c) => c.data)).toEqual([{
      webhook_id: troubled.id, url: troubled.url, failing_since: marked.failing_since, last_error: null, last_response_status: 500,
    }]);
    expect(heard.filter((c) => c.event === 'webhook.failing').map((c) => c.data.webhook_id)).toEqual([other.id, troubled.id]);
    // Nothing about itself reached it (its own two quota.warning only, after the two operational ones).
    expect(down.received.slice(2).map((c) => parse(c).event)).toEqual(['quota.warning', 'quota.warning']);
    expect((await stack.webhook(troubled.id)).failing_since).toBe(marked.failing_since);
  });
});
