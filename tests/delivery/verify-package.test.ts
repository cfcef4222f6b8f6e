import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { verifyMiddleware, type DocumentCompletedData, type ExtractionSummaryData, type VerifyMiddleware, type VerifyMiddlewareOptions, type WebhookEvent, type WebhookRequest } from '@hookline/verify';
import { waitUntil } from '../support/wait-until';
import { deliveryReaches, eventually, startStack, type Stack } from './stack';

// @hookline/verify end to end: the real API and worker deliver real callbacks
// to a real Express app on 127.0.0.1 whose webhook routes use verifyMiddleware
// (mounted before any JSON parser, as the docs show). What it accepts, what it
// refuses, and what Hookline records of its answers.

type Accepted = { route: string; event: WebhookEvent; raw: string; headers: IncomingHttpHeaders };

type ExpressReceiver = {
  url(route: string): string;
  accepted: Accepted[];
  /** (Re)configures a route's middleware, e.g. with the secret once the webhook exists. */
  configure(route: string, options: VerifyMiddlewareOptions): void;
  close(): Promise<void>;
};

async function startExpressReceiver(routes: string[]): Promise<ExpressReceiver> {
  const accepted: Accepted[] = [];
  const middlewares = new Map<string, VerifyMiddleware>();
  const app = express();
  for (const route of routes) {
    app.post(
      route,
      (req: WebhookRequest, res, next) => {
        const mw = middlewares.get(route);
        if (!mw) return res.status(503).json({ error: 'not configured yet' });
        mw(req, res, next);
      },
      (req: WebhookRequest, res: express.Response) => {
        accepted.push({ route, event: req.body as WebhookEvent, raw: req.rawBody!.toString('utf8'), headers: req.headers });
        res.json({ received: true });
      },
    );
  }
  // The rest of the app parses JSON as usual, after the webhook routes.
  app.use(express.json());
  const server: Server = await new Promise((ready) => {
    const s = app.listen(0, '127.0.0.1', () => ready(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: (route) => `http://127.0.0.1:${port}${route}`,
    accepted,
    configure: (route, options) => middlewares.set(route, verifyMiddleware(options)),
    async close() {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}

/** The headers of a received callback, as strings, to replay it. */
function replayHeaders(headers: IncomingHttpHeaders, drop: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string' || drop.includes(name)) continue;
    if (['host', 'content-length', 'connection', 'accept-encoding'].includes(name)) continue;
    out[name] = value;
  }
  return out;
}

const post = (url: string, headers: Record<string, string>, body: string) => fetch(url, { method: 'POST', headers, body });

describe('@hookline/verify against real callbacks', () => {
  let stack: Stack;
  let receiver: ExpressReceiver;
  const STATIC = 'static-token-for-verify';

  beforeAll(async () => {
    stack = await startStack();
    receiver = await startExpressReceiver(['/hooks', '/strict']);
  });
  afterAll(async () => {
    await receiver?.close();
    await stack?.close();
  });
  // Each test its own account: its webhooks get none of another test's events.
  beforeEach(() => stack.freshAccount());

  const sendTest = async (webhookId: string) => {
    const res = await stack.v1.post(`/v1/webhooks/${webhookId}/test`);
    expect(res.status).toBe(200);
    return res.body.attempt as { delivery_id: string; status: string; response_status: number; response_body: string };
  };
  const acceptedDelivery = (deliveryId: string) => eventually(async () => receiver.accepted.find((a) => a.headers['webhook-id'] === deliveryId), 5_000, `callback ${deliveryId} accepted`);

  it('accepts real callbacks (a test send and an extraction\'s) and hands the route the parsed, typed event', async () => {
    const webhook = await stack.createWebhook({ url: receiver.url('/hooks'), events: ['extraction.document_completed', 'extraction.job_completed'], secret: STATIC });
    receiver.configure('/hooks', { secret: webhook.signing_secret, staticSecret: STATIC });

    const attempt = await sendTest(webhook.id);
    expect(attempt).toMatchObject({ status: 'succeeded', response_status: 200 });
    const test = await acceptedDelivery(attempt.delivery_id);
    expect(test.event).toEqual(JSON.parse(test.raw));
    // The first event it subscribes to, in the catalog's order.
    expect(test.event).toMatchObject({ event: 'extraction.document_completed', test: true });
    expect(test.event.id).toMatch(/^evt_/);

    const ext = await stack.api.platform.post('/internal/v1/extractions', { account_id: stack.account.accountId, parser_id: 'invoices', document_count: 1 });
    expect(ext.status).toBe(201);
    const extractionId = ext.body.extraction.extraction_id as string;
    const report = await stack.api.platform.post(`/internal/v1/extractions/${extractionId}/documents/doc_1`, { status: 'completed', file_name: 'a.pdf', result: { total: 12.5, vendor: 'Ünïcødé GmbH' } });
    expect(report.status).toBe(202);
    const byEvent = (name: string) => eventually(async () => receiver.accepted.find((a) => a.event.event === name && !a.event.test), 15_000, `${name} accepted`);
    const document = (await byEvent('extraction.document_completed')).event as WebhookEvent<DocumentCompletedData>;
    const job = (await byEvent('extraction.job_completed')).event as WebhookEvent<ExtractionSummaryData>;
    expect(document.data).toMatchObject({ extraction_id: extractionId, document_id: 'doc_1', status: 'completed', result: { total: 12.5, vendor: 'Ünïcødé GmbH' } });
    expect(job.data).toMatchObject({ extraction_id: extractionId, status: 'completed', document_count: 1, completed_count: 1, failed_count: 0 });
    const deliveries = await stack.deliveries(webhook.id);
    for (const d of deliveries) await deliveryReaches(stack, d.id, 'succeeded');
  });

  it('after rotate-secret accepts the two-signature callbacks with the old or the new secret; another secret is refused and Hookline logs why', async () => {
    const webhook = await stack.createWebhook({ url: receiver.url('/hooks'), events: ['extraction.job_completed'] });
    const oldSecret = webhook.signing_secret;
    receiver.configure('/hooks', { secret: oldSecret });
    const rotated = await stack.v1.post(`/v1/webhooks/${webhook.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const newSecret = rotated.body.webhook.signing_secret as string;
    expect(newSecret).not.toBe(oldSecret);

    // The receiver still holds the old secret.
    const first = await sendTest(webhook.id);
    expect(first).toMatchObject({ status: 'succeeded', response_status: 200 });
    const { headers } = await acceptedDelivery(first.delivery_id);
    expect(String(headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(String(headers['x-perfectparser-signature']).split(',')).toHaveLength(2);

    // It deploys the new one.
    receiver.configure('/hooks', { secret: newSecret });
    const second = await sendTest(webhook.id);
    expect(second).toMatchObject({ status: 'succeeded', response_status: 200 });
    await acceptedDelivery(second.delivery_id);

    // A secret of another webhook: refused, and the reason is in Hookline's attempt log.
    const other = await stack.createWebhook({ url: receiver.url('/strict'), events: ['extraction.job_completed'] });
    receiver.configure('/hooks', { secret: other.signing_secret });
    const third = await sendTest(webhook.id);
    expect(third).toMatchObject({ status: 'failed', response_status: 400 });
    expect(JSON.parse(third.response_body)).toEqual({ error: { code: 'invalid_signature', message: 'no webhook-signature matches the secret' } });
    expect(receiver.accepted.some((a) => a.headers['webhook-id'] === third.delivery_id)).toBe(false);
  });

  it('refuses a tampered real callback, and a replayed one once it is older than the tolerance or stripped to the hex header', async () => {
    const webhook = await stack.createWebhook({ url: receiver.url('/strict'), events: ['extraction.job_completed'] });
    // Strict: a 1-second tolerance (so a replay is stale quickly) and no hex-only fallback.
    receiver.configure('/strict', { secret: webhook.signing_secret, tolerance: 1, hexFallback: false });
    receiver.configure('/hooks', { secret: webhook.signing_secret });
    const attempt = await sendTest(webhook.id);
    expect(attempt).toMatchObject({ status: 'succeeded', response_status: 200 });
    const captured = await acceptedDelivery(attempt.delivery_id);
    const headers = replayHeaders(captured.headers);

    const tampered = await post(receiver.url('/hooks'), headers, captured.raw.replace('"test":true', '"test":false'));
    expect(tampered.status).toBe(400);
    expect(await tampered.json()).toMatchObject({ error: { code: 'invalid_signature' } });

    // Within the tolerance a replay verifies (the receiver deduplicates on webhook-id) …
    expect((await post(receiver.url('/hooks'), headers, captured.raw)).status).toBe(200);
    // … past it, it is refused.
    const sentAt = Number(headers['webhook-timestamp']);
    await waitUntil(() => Date.now() / 1000 - sentAt > 2.05, 'past the 2 s tolerance', { intervalMs: 100 });
    const stale = await post(receiver.url('/strict'), headers, captured.raw);
    expect(stale.status).toBe(400);
    expect(await stale.json()).toMatchObject({ error: { code: 'timestamp_too_old' } });

    // Stripped of its Standard Webhooks headers, only X-PerfectParser-Signature is left, which signs
    // no timestamp: the default hexFallback accepts it at any age, hexFallback: false refuses it.
    const stripped = replayHeaders(captured.headers, ['webhook-id', 'webhook-timestamp', 'webhook-signature']);
    expect(stripped['x-perfectparser-signature']).toBeDefined();
    expect((await post(receiver.url('/hooks'), stripped, captured.raw)).status).toBe(200);
    const strictStripped = await post(receiver.url('/strict'), stripped, captured.raw);
    expect(strictStripped.status).toBe(400);
    expect(await strictStripped.json()).toMatchObject({ error: { code: 'missing_headers' } });
    expect(receiver.accepted.filter((a) => a.route === '/strict').map((a) => a.headers['webhook-id'])).toEqual([attempt.delivery_id]);
  });
});
