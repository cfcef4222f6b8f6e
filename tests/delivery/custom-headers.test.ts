import { sealCustomHeaders } from '@hookline/domain';
import { verifyCallback } from '../support/verifier';
import { deliveryReaches, startStack, type Stack } from './stack';

// Custom headers (docs/api.md, "Custom headers") as a real receiver gets them:
// on every callback, test sends included, changed by a patch, never able to
// replace a header Hookline sets, and never in the worker's logs.

describe('custom headers', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack?.close());
  beforeEach(() => stack.freshAccount());

  it('arrive with every callback, a test send included, beside Hookline\'s own signed headers', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url, secret: 'static-verify-token', headers: { Authorization: 'Bearer tok_custom_1', 'X-Tenant': 'acme' } });
    await stack.publish('quota.warning', {}, 1);
    const [cb] = await r.waitFor(1);
    expect(cb.headers.authorization).toBe('Bearer tok_custom_1');
    expect(cb.headers['x-tenant']).toBe('acme');
    expect(cb.headers['x-webhook-secret']).toBe('static-verify-token');
    expect(verifyCallback(wh.signing_secret, cb.body, cb.headers)).toEqual({ standard: true, brand: true });

    const test = await stack.v1.post(`/v1/webhooks/${wh.id}/test`);
    expect(test.body.attempt.status).toBe('succeeded');
    const [, sent] = await r.waitFor(2);
    expect(sent.headers.authorization).toBe('Bearer tok_custom_1');

    // The worker's log lines carry no header value.
    const logged = JSON.stringify(stack.worker.logs);
    expect(logged).not.toContain('tok_custom_1');
  });

  it('a patch changes what the next callback carries; removing them sends none', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url, headers: { 'X-Version': 'one' } });
    expect((await stack.v1.patch(`/v1/webhooks/${wh.id}`, { headers: { 'X-Version': 'two', 'X-Extra': 'yes' } })).status).toBe(200);
    await stack.publish('quota.warning', {}, 1);
    const [first] = await r.waitFor(1);
    expect([first.headers['x-version'], first.headers['x-extra']]).toEqual(['two', 'yes']);

    expect((await stack.v1.patch(`/v1/webhooks/${wh.id}`, { headers: null })).status).toBe(200);
    await stack.publish('quota.warning', {}, 1);
    const [, second] = await r.waitFor(2);
    expect([second.headers['x-version'], second.headers['x-extra']]).toEqual([undefined, undefined]);
  });

  it('a stored header with a reserved name (written before it was reserved) is dropped at send time, the others sent', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url });
    const sealed = sealCustomHeaders(stack.api.deps.secretBox, {
      'x-perfectparser-event': 'forged', 'X-PerfectParser-Forged': 'forged', 'Webhook-Forged': 'forged', 'CONTENT-TYPE': 'text/plain', Host: 'evil.example', 'X-Kept': 'kept',
    });
    await stack.api.database.db.sql.query('UPDATE webhooks SET custom_headers_enc = $1 WHERE id = $2', [sealed, wh.id]);
    await stack.publish('quota.warning', {}, 1);
    const [cb] = await r.waitFor(1);
    expect(cb.headers['x-kept']).toBe('kept');
    expect(cb.headers['x-perfectparser-event']).toBe('quota.warning');
    expect([cb.headers['x-perfectparser-forged'], cb.headers['webhook-forged']]).toEqual([undefined, undefined]);
    expect(cb.headers.host).toBe(new URL(r.url).host);
    expect(cb.headers['webhook-id']).toBe(cb.headers['x-perfectparser-delivery']);
    expect(cb.headers['content-type']).toBe('application/json');
    expect(verifyCallback(wh.signing_secret, cb.body, cb.headers)).toEqual({ standard: true, brand: true });
    await deliveryReaches(stack, String(cb.headers['x-perfectparser-delivery']), 'succeeded');
  });
});
