import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { verifyBrandSignature, verifyCallback, verifyStandardWebhook } from '../support/verifier';
import { deliveryReaches, eventually, startStack, type Stack } from './stack';

// A callback as the integrator receives it (docs/api.md#callbacks): body, every
// header, both signature schemes checked with independent verifiers.

const VERSION = (JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('callbacks', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack?.close());
  beforeEach(() => stack.freshAccount());

  it('delivers extraction callbacks with the contract body and every header right', async () => {
    const withSecret = await stack.receiver();
    const without = await stack.receiver();
    const events = ['extraction.document_completed', 'extraction.job_completed'];
    const w1 = await stack.createWebhook({ url: withSecret.url, events, secret: 'static-verify-token' });
    const w2 = await stack.createWebhook({ url: without.url, events: ['extraction.document_completed'] });

    const ext = await stack.api.platform.post('/internal/v1/extractions', { account_id: stack.account.accountId, parser_id: 'invoices', document_count: 1 });
    expect(ext.status).toBe(201);
    const extractionId = ext.body.extraction.extraction_id;
    const result = { total: 1234.5, vendor: 'Ünïcødé GmbH', lines: [{ sku: 'A-1', qty: 2 }] };
    const report = await stack.api.platform.post(`/internal/v1/extractions/${extractionId}/documents/doc_1`, { status: 'completed', file_name: 'a.pdf', result });
    expect(report.status).toBe(202);

    const got = await withSecret.waitFor(2);
    const [other] = await without.waitFor(1);
    const byEvent = Object.fromEntries(got.map((cb) => [cb.headers['x-perfectparser-event'], cb]));
    const doc = byEvent['extraction.document_completed'];
    const job = byEvent['extraction.job_completed'];
    expect(doc && job).toBeTruthy();

    const deliveries = await stack.deliveries(w1.id);
    for (const cb of [doc, job]) {
      const delivery = deliveries.find((d) => d.event === cb.headers['x-perfectparser-event'])!;
      expect(cb.method).toBe('POST');
      expect(cb.path).toBe('/hooks');
      expect(cb.headers['content-type']).toBe('application/json');
      expect(cb.headers['user-agent']).toBe(`Hookline/${VERSION}`);
      expect(cb.headers['x-perfectparser-delivery']).toBe(delivery.id);
      expect(cb.headers['webhook-id']).toBe(delivery.id);
      expect(Math.abs(Number(cb.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
      expect(cb.headers['x-webhook-secret']).toBe('static-verify-token');
      expect(verifyCallback(w1.signing_secret, cb.body, cb.headers)).toEqual({ standard: true, brand: true });
      // A signature is over these exact bytes: one changed byte fails both schemes.
      expect(verifyCallback(w1.signing_secret, cb.body.replace('"test":false', '"test":true'), cb.headers)).toEqual({ standard: false, brand: false });
      expect(verifyCallback(w2.signing_secret, cb.body, cb.headers)).toEqual({ standard: false, brand: false });
    }

    const docBody = JSON.parse(doc.body);
    expect(Object.keys(docBody)).toEqual(['id', 'event', 'created_at', 'test', 'data']);
    expect(docBody).toMatchObject({ event: 'extraction.document_completed', test: false });
    expect(docBody.id).toMatch(/^evt_/);
    expect(docBody.created_at).toMatch(ISO);
    expect(docBody.data).toEqual({ extraction_id: extractionId, document_id: 'doc_1', parser_id: 'invoices', status: 'completed', file_name: 'a.pdf', result });
    expect(JSON.parse(job.body).data).toEqual({ extraction_id: extractionId, parser_id: 'invoices', status: 'completed', document_count: 1, completed_count: 1, failed_count: 0 });

    // The second webhook: same event, its own delivery id and secret, no static secret header.
    expect(other.headers['x-webhook-secret']).toBeUndefined();
    expect(other.headers['x-perfectparser-delivery']).not.toBe(doc.headers['x-perfectparser-delivery']);
    expect(verifyCallback(w2.signing_secret, other.body, other.headers)).toEqual({ standard: true, brand: true });
    expect(JSON.parse(other.body)).toEqual(docBody);

    // Logged: succeeded, one attempt with the receiver's answer.
    const logged = await deliveryReaches(stack, doc.headers['x-perfectparser-delivery'] as string, 'succeeded');
    expect(logged.delivery.attempt_count).toBe(1);
    expect(logged.attempts).toEqual([expect.objectContaining({ attempt_number: 1, status: 'succeeded', response_status: 200, response_body: '{"received":true}', error: null })]);
    expect((await stack.webhook(w1.id)).status).toBe('active');
  });

  it('a test send is delivered once, signed, with "test": true', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url, events: ['extraction.job_completed'] });
    const res = await stack.v1.post(`/v1/webhooks/${wh.id}/test`);
    expect(res.status).toBe(200);
    expect(res.body.attempt).toMatchObject({ attempt_number: 1, status: 'succeeded', response_status: 200, event: 'extraction.job_completed' });
    const [cb] = await r.waitFor(1);
    expect(JSON.parse(cb.body)).toMatchObject({ event: 'extraction.job_completed', test: true });
    expect(cb.headers['x-perfectparser-delivery']).toBe(res.body.attempt.delivery_id);
    expect(verifyCallback(wh.signing_secret, cb.body, cb.headers)).toEqual({ standard: true, brand: true });
  });

  it('during a rotation each callback carries both signatures, each verifiable with its own secret', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url });
    const rotated = await stack.v1.post(`/v1/webhooks/${wh.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const newSecret: string = rotated.body.webhook.signing_secret;
    expect(newSecret).not.toBe(wh.signing_secret);

    await stack.publish('quota.warning', { usage: 80 }, 1);
    const [cb] = await r.waitFor(1);
    const hex = String(cb.headers['x-perfectparser-signature']).split(',');
    const standard = String(cb.headers['webhook-signature']).split(' ');
    expect(hex).toHaveLength(2);
    expect(standard).toHaveLength(2);
    for (const secret of [newSecret, wh.signing_secret]) {
      expect(verifyCallback(secret, cb.body, cb.headers)).toEqual({ standard: true, brand: true });
    }
    // Each signature belongs to exactly one secret: split the headers and check them one by one.
    const only = (i: number) => ({ ...cb.headers, 'x-perfectparser-signature': hex[i], 'webhook-signature': standard[i] });
    expect(verifyCallback(newSecret, cb.body, only(0))).toEqual({ standard: true, brand: true });
    expect(verifyCallback(wh.signing_secret, cb.body, only(0))).toEqual({ standard: false, brand: false });
    expect(verifyCallback(wh.signing_secret, cb.body, only(1))).toEqual({ standard: true, brand: true });
    expect(verifyCallback(newSecret, cb.body, only(1))).toEqual({ standard: false, brand: false });
  });

  it('a paused webhook gets nothing and is not offered new events; resuming it delivers again', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url, is_active: false });
    await stack.publish('quota.warning', {}, 0);
    expect((await stack.v1.patch(`/v1/webhooks/${wh.id}`, { is_active: true })).status).toBe(200);
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(1);
    await eventually(async () => (await stack.deliveries(wh.id))[0]?.status === 'succeeded', 5_000, 'succeeded');
    expect(r.received).toHaveLength(1);
  });
});

describe('WEBHOOK_BRAND', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ worker: { config: { WEBHOOK_BRAND: 'Acme' } } });
  });
  afterAll(() => stack?.close());

  it('names the headers X-Acme-*', async () => {
    const r = await stack.receiver();
    const wh = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', { usage: 81 }, 1);
    const [cb] = await r.waitFor(1);
    const [delivery] = await stack.deliveries(wh.id);
    expect(cb.headers['x-acme-event']).toBe('quota.warning');
    expect(cb.headers['x-acme-delivery']).toBe(delivery.id);
    expect(verifyBrandSignature(wh.signing_secret, cb.body, cb.headers, 'Acme')).toBe(true);
    expect(verifyStandardWebhook(wh.signing_secret, cb.body, cb.headers)).toBe(true);
    expect(Object.keys(cb.headers).filter((name) => name.startsWith('x-perfectparser'))).toEqual([]);
  });
});
