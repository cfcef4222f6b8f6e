import { deliveryReaches, onlyDelivery, startStack, type Stack } from './stack';

// With ALLOW_PRIVATE_TARGETS=false (the production default) no callback may
// reach a loopback or private address, whether the URL names it literally or
// through a hostname that resolves to it.

describe('SSRF guard end to end (ALLOW_PRIVATE_TARGETS=false)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ worker: { config: { ALLOW_PRIVATE_TARGETS: false } } });
  });
  afterAll(() => stack?.close());
  beforeEach(() => stack.freshAccount());

  const cases: Array<[string, (port: number) => string]> = [
    ['a literal loopback IP', (port) => `http://127.0.0.1:${port}/hooks`],
    ['a hostname resolving to 127.0.0.1', (port) => `http://localhost:${port}/hooks`],
    ['an IPv4-mapped IPv6 loopback', (port) => `http://[::ffff:127.0.0.1]:${port}/hooks`],
    ['a literal private IP', () => 'http://10.0.0.1:9/hooks'],
    ['the cloud metadata address', () => 'http://169.254.169.254/latest/meta-data'],
  ];

  it.each(cases)('blocks %s: attempt error blocked_address, nothing received', async (_name, url) => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: url(r.port), max_retries: 0 });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'failed');
    expect(attempts).toEqual([expect.objectContaining({ status: 'failed', error: 'blocked_address', response_status: null })]);
    expect(r.received).toHaveLength(0);
  });

  it('a blocked attempt is retried like any failure (the address may be fixed by DNS later)', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: `http://localhost:${r.port}/hooks`, max_retries: 1 });
    await stack.publish('quota.warning', {}, 1);
    const delivery = await onlyDelivery(stack, wh.id);
    const { attempts } = await deliveryReaches(stack, delivery.id, 'failed', 5_000);
    expect(attempts.map((a) => [a.attempt_number, a.error])).toEqual([[1, 'blocked_address'], [2, 'blocked_address']]);
    expect(r.received).toHaveLength(0);
  });
});
