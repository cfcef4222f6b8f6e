import { startConnectProxy, type ConnectProxy } from '../support/connect-proxy';
import { verifyCallback } from '../support/verifier';
import { eventually, onlyDelivery, startStack, type Stack } from './stack';

// The egress proxy (docs/operations.md, "Egress proxy"): every callback goes
// through a real CONNECT proxy on 127.0.0.1; a failure of the proxy is not the
// endpoint's (no attempt used up, no circuit, no failing_since) and the
// delivery arrives once the proxy is back; a response that came through the
// tunnel is the endpoint's own; a private target is refused before the proxy
// hears of it.

const proxyFailures = async (stack: Stack, reason: string) =>
  Number(new RegExp(`hookline_proxy_failures_total\\{reason="${reason}"[^}]*\\} (\\d+)`).exec(await stack.worker.metrics.registry.metrics())?.[1] ?? 0);
const authorityOf = (url: string) => new URL(url).host;

describe('egress proxy', () => {
  let proxy: ConnectProxy;
  let stack: Stack;
  beforeAll(async () => {
    proxy = await startConnectProxy();
    stack = await startStack({ worker: { config: { DELIVERY_PROXY_URL: proxy.url, DELIVERY_PROXY_RETRY: 100 } } });
  });
  afterAll(async () => {
    await stack?.close();
    await proxy?.close();
  });
  beforeEach(async () => {
    await stack.freshAccount();
    proxy.refuseWith = null;
    await proxy.start().catch(() => undefined); // already running: nothing to do
  });

  it('every callback goes through a CONNECT tunnel to the target, signed as ever', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url, headers: { Authorization: 'Bearer via-proxy' } });
    const before = proxy.connects.length;
    for (let i = 0; i < 3; i++) await stack.publish('quota.warning', { usage: 80 + i }, 1);
    const got = await r.waitFor(3);
    for (const cb of got) {
      expect(verifyCallback(wh.signing_secret, cb.body, cb.headers)).toEqual({ standard: true, brand: true });
      expect(cb.headers.authorization).toBe('Bearer via-proxy');
    }
    const tunnels = proxy.connects.slice(before);
    expect(tunnels.length).toBeGreaterThanOrEqual(1);
    expect(new Set(tunnels.map((c) => c.authority))).toEqual(new Set([authorityOf(r.url)]));
    await eventually(async () => (await stack.deliveries(wh.id)).every((d) => d.status === 'succeeded') || undefined, 5_000, 'all succeeded');
  });

  it('a stopped proxy opens no circuit, sets no failing_since and uses up no retry; the delivery arrives once it is back', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url, max_retries: 1 });
    await proxy.stop();
    const refusedBefore = await proxyFailures(stack, 'econnrefused');
    await stack.publish('quota.warning', {}, 1);
    // Tried through the dead proxy more often than the circuit threshold (5) and max_retries (1) would allow endpoint failures.
    await eventually(async () => (await proxyFailures(stack, 'econnrefused')) - refusedBefore >= 6 || undefined, 30_000, 'proxy failures');

    const waiting = await onlyDelivery(stack, wh.id);
    expect(waiting).toMatchObject({ status: 'pending', attempt_count: 0 });
    expect((await stack.delivery(waiting.id)).attempts).toEqual([]);
    const webhook = await stack.webhook(wh.id);
    expect(webhook).toMatchObject({ status: 'active', failing_since: null, circuit: 'closed' });
    expect(r.received).toHaveLength(0);

    // A test send is answered with its one attempt: it says the proxy failed, and changes nothing on the webhook.
    const test = await stack.v1.post(`/v1/webhooks/${wh.id}/test`);
    expect(test.status).toBe(200);
    expect(test.body.attempt).toMatchObject({ status: 'failed', error: 'proxy_error', response_status: null });
    expect(await stack.webhook(wh.id)).toMatchObject({ failing_since: null, circuit: 'closed' });

    await proxy.start();
    await r.waitFor(1);
    const done = await eventually(async () => {
      const d = await stack.delivery(waiting.id);
      return d.delivery.status === 'succeeded' ? d : undefined;
    }, 10_000, 'delivered');
    expect(done.delivery.attempt_count).toBe(1);
    expect(done.attempts).toEqual([expect.objectContaining({ attempt_number: 1, status: 'succeeded', response_status: 200, error: null })]);
  });

  it('a CONNECT the proxy refuses (502 of its own) is the proxy\'s failure; a 502 from the endpoint through the tunnel is the endpoint\'s', async () => {
    const r = await stack.receiver({ status: 502, body: 'endpoint says bad gateway' });
    const wh = await stack.createWebhook({ url: r.url, max_retries: 0 });

    proxy.refuseWith = 502;
    const before = await proxyFailures(stack, 'connect_502');
    await stack.publish('quota.warning', {}, 1);
    await eventually(async () => (await proxyFailures(stack, 'connect_502')) - before >= 3 || undefined, 30_000, 'refused CONNECTs');
    const held = await onlyDelivery(stack, wh.id);
    expect(held).toMatchObject({ status: 'pending', attempt_count: 0 });
    expect(r.received).toHaveLength(0);

    proxy.refuseWith = null;
    await r.waitFor(1);
    const failed = await eventually(async () => {
      const d = await stack.delivery(held.id);
      return d.delivery.status === 'failed' ? d : undefined;
    }, 10_000, 'failed by the endpoint');
    expect(failed.attempts).toEqual([expect.objectContaining({ status: 'failed', response_status: 502, response_body: 'endpoint says bad gateway', error: null })]);
    // The endpoint's own failure counts as ever: its retries (none) are spent and it is failing.
    expect((await stack.webhook(wh.id)).failing_since).not.toBeNull();
  });
});

describe('egress proxy with credentials, and DELIVERY_NO_PROXY', () => {
  let proxy: ConnectProxy;
  let stack: Stack;
  beforeAll(async () => {
    proxy = await startConnectProxy({ credentials: { user: 'hook', password: 's3cret pass' } });
  });
  afterAll(async () => {
    await stack?.close();
    await proxy?.close();
  });

  it('sends the URL\'s credentials as Proxy-Authorization; a 407 is the proxy\'s failure; a NO_PROXY host is reached directly', async () => {
    const withCredentials = `http://hook:${encodeURIComponent('s3cret pass')}@127.0.0.1:${proxy.port}`;
    stack = await startStack({ worker: { config: { DELIVERY_PROXY_URL: withCredentials, DELIVERY_NO_PROXY: ['localhost'], DELIVERY_PROXY_RETRY: 100 } } });
    const r = await stack.receiver();
    await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(1);
    expect(proxy.connects.at(-1)).toEqual({ authority: authorityOf(r.url), authorization: `Basic ${Buffer.from('hook:s3cret pass').toString('base64')}` });
    // The worker never logs the proxy's credentials.
    expect(JSON.stringify(stack.worker.logs)).not.toContain('s3cret');

    // localhost is in DELIVERY_NO_PROXY: reached directly, the proxy hears nothing.
    const direct = await stack.receiver();
    const seen = proxy.connects.length;
    await stack.createWebhook({ url: direct.url.replace('127.0.0.1', 'localhost') });
    await stack.publish('quota.warning', {}, 2);
    await direct.waitFor(1);
    await r.waitFor(2);
    // (The second callback to r may reuse its open tunnel: no new CONNECT is needed for it.)
    expect(proxy.connects.slice(seen).filter((c) => c.authority.startsWith('localhost'))).toEqual([]);
    await stack.close();

    // Without credentials the proxy answers 407: the proxy's failure, nothing recorded against the endpoint.
    stack = await startStack({ worker: { config: { DELIVERY_PROXY_URL: proxy.url, DELIVERY_PROXY_RETRY: 100 } } });
    const refused = await stack.receiver();
    const wh = await stack.createWebhook({ url: refused.url });
    await stack.publish('quota.warning', {}, 1);
    await eventually(async () => (await proxyFailures(stack, 'connect_407')) >= 3 || undefined, 30_000, '407s');
    expect(await onlyDelivery(stack, wh.id)).toMatchObject({ status: 'pending', attempt_count: 0 });
    expect(await stack.webhook(wh.id)).toMatchObject({ failing_since: null, circuit: 'closed' });
  });
});

describe('egress proxy and private targets', () => {
  let proxy: ConnectProxy;
  let stack: Stack;
  beforeAll(async () => {
    proxy = await startConnectProxy();
    // The API accepts the loopback URLs (its own check is for IP literals and localhost, here switched off);
    // the worker refuses private targets, as in production.
    stack = await startStack({ worker: { config: { ALLOW_PRIVATE_TARGETS: false, DELIVERY_PROXY_URL: proxy.url, DELIVERY_PROXY_RETRY: 100 } } });
  });
  afterAll(async () => {
    await stack?.close();
    await proxy?.close();
  });

  it('a target that is or resolves to a private address fails with blocked_address, and the proxy logs no request', async () => {
    const r = await stack.receiver();
    const byName = await stack.createWebhook({ url: r.url.replace('127.0.0.1', 'localhost'), max_retries: 0 });
    const byAddress = await stack.createWebhook({ url: r.url.replace('127.0.0.1', '127.0.0.2'), max_retries: 0 });
    await stack.publish('quota.warning', {}, 2);
    for (const wh of [byName, byAddress]) {
      const delivery = await eventually(async () => {
        const d = await stack.delivery((await onlyDelivery(stack, wh.id)).id);
        return d.delivery.status === 'failed' ? d : undefined;
      }, 10_000, 'refused');
      expect(delivery.attempts).toEqual([expect.objectContaining({ status: 'failed', error: 'blocked_address', response_status: null })]);
    }
    expect(proxy.connects).toEqual([]);
    expect(r.received).toHaveLength(0);
  });
});
