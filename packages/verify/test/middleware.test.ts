import { createHmac, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Webhook } from 'standardwebhooks';
import { verifyMiddleware, readRawBody, WebhookVerificationError, type VerifyMiddlewareOptions, type WebhookRequest } from '../src/index';

// verifyMiddleware in real servers on 127.0.0.1 (Express 5 and bare node:http),
// over real HTTP: where it is mounted, what it answers, what it hands on.

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const BODY = JSON.stringify({ id: 'evt_1', event: 'extraction.job_completed', created_at: '2026-11-30T08:00:00.000Z', test: true, data: { extraction_id: 'ext_1', status: 'completed' } });

function signed(body: string, opts: { secret?: string; timestamp?: number } = {}): Record<string, string> {
  const id = `dlv_${randomBytes(6).toString('hex')}`;
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': new Webhook(opts.secret ?? secret).sign(id, new Date(timestamp * 1000), body),
  };
}

type Seen = { body: unknown; rawBody: Buffer | undefined };

const servers: Server[] = [];
async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});

/** An Express app: `before` runs ahead of the middleware on the route, `seen` records what the route got. */
async function expressApp(options: Partial<VerifyMiddlewareOptions> = {}, before: express.RequestHandler[] = [], globalJson = false) {
  const seen: Seen[] = [];
  const app = express();
  if (globalJson) app.use(express.json());
  app.post('/hooks', ...before, verifyMiddleware({ secret, ...options }), (req: WebhookRequest, res: express.Response) => {
    seen.push({ body: req.body, rawBody: req.rawBody });
    res.json({ received: true });
  });
  app.post('/throws', verifyMiddleware({ secret, ...options }), () => {
    throw new Error('the route failed');
  });
  const url = await listen(app);
  return { url, seen };
}

const post = (url: string, headers: Record<string, string>, body: string) => fetch(url, { method: 'POST', headers, body });

describe('verifyMiddleware in Express', () => {
  it('reads the raw body itself, verifies it, and hands the parsed event on as req.body (req.rawBody: the bytes)', async () => {
    const { url, seen } = await expressApp();
    const res = await post(`${url}/hooks`, signed(BODY), BODY);
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0].body).toEqual(JSON.parse(BODY));
    expect(seen[0].rawBody?.toString('utf8')).toBe(BODY);
  });

  it('answers 400 with a small JSON error and never calls the route for a bad callback', async () => {
    const { url, seen } = await expressApp();
    const tampered = await post(`${url}/hooks`, signed(BODY), BODY.replace('"test":true', '"test":false'));
    expect(tampered.status).toBe(400);
    expect(tampered.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await tampered.json()).toEqual({ error: { code: 'invalid_signature', message: 'no webhook-signature matches the secret' } });
    const wrongSecret = await post(`${url}/hooks`, signed(BODY, { secret: `whsec_${randomBytes(32).toString('base64')}` }), BODY);
    expect(wrongSecret.status).toBe(400);
    const stale = await post(`${url}/hooks`, signed(BODY, { timestamp: Math.floor(Date.now() / 1000) - 301 }), BODY);
    expect(await stale.json()).toMatchObject({ error: { code: 'timestamp_too_old' } });
    const unsigned = await post(`${url}/hooks`, { 'content-type': 'application/json' }, BODY);
    expect(await unsigned.json()).toMatchObject({ error: { code: 'missing_headers' } });
    expect(seen).toHaveLength(0);
  });

  it('passes its options on: brand, static secret, tolerance, hexFallback', async () => {
    const { url, seen } = await expressApp({ brand: 'Acme', staticSecret: 'static-token', tolerance: 10, hexFallback: true });
    const hex = createHmac('sha256', secret).update(BODY).digest('hex');
    expect((await post(`${url}/hooks`, { 'x-acme-signature': hex, 'x-webhook-secret': 'static-token' }, BODY)).status).toBe(200);
    expect((await post(`${url}/hooks`, { 'x-acme-signature': hex }, BODY)).status).toBe(400);
    expect((await post(`${url}/hooks`, { ...signed(BODY, { timestamp: Math.floor(Date.now() / 1000) - 20 }), 'x-webhook-secret': 'static-token' }, BODY)).status).toBe(400);
    expect(seen).toHaveLength(1);
    const strict = await expressApp({ hexFallback: false });
    expect((await post(`${strict.url}/hooks`, { 'x-perfectparser-signature': hex }, BODY)).status).toBe(400);
  });

  it('uses the Buffer of an express.raw() that ran before it', async () => {
    const { url, seen } = await expressApp({}, [express.raw({ type: 'application/json' })]);
    expect((await post(`${url}/hooks`, signed(BODY), BODY)).status).toBe(200);
    expect(seen[0].body).toEqual(JSON.parse(BODY));
    expect(seen[0].rawBody?.equals(Buffer.from(BODY))).toBe(true);
  });

  it('refuses to guess after express.json() consumed the body: the error goes to Express (500), not a verdict', async () => {
    const { url, seen } = await expressApp({}, [], true);
    const res = await post(`${url}/hooks`, signed(BODY), BODY);
    expect(res.status).toBe(500);
    expect(seen).toHaveLength(0);
  });

  it('answers 413 past its limit, whether Content-Length says so or the stream shows it', async () => {
    const { url, seen } = await expressApp({ limit: 64 });
    const big = await post(`${url}/hooks`, signed(BODY), BODY);
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: { code: 'payload_too_large' } });

    // Chunked: no Content-Length, so only the bytes read tell.
    const status = await new Promise<number>((done, fail) => {
      const req = httpRequest(`${url}/hooks`, { method: 'POST', headers: signed(BODY) }, (res) => {
        res.resume();
        done(res.statusCode ?? 0);
      });
      req.on('error', fail);
      req.write(BODY.slice(0, 50));
      setTimeout(() => req.end(BODY.slice(50)), 50);
    });
    expect(status).toBe(413);
    expect(seen).toHaveLength(0);
  });

  it('lets onError answer a refusal its own way', async () => {
    const refusals: string[] = [];
    const { url } = await expressApp({
      onError: (error, _req, res) => {
        refusals.push(error.code);
        res.statusCode = 401;
        res.end();
      },
    });
    expect((await post(`${url}/hooks`, signed(BODY), `${BODY} `)).status).toBe(401);
    expect(refusals).toEqual(['invalid_signature']);
  });

  it('leaves an error thrown by the route to Express: it is not a verification failure', async () => {
    const { url } = await expressApp();
    const res = await post(`${url}/throws`, signed(BODY), BODY);
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type') ?? '').not.toMatch(/json/);
  });

  it('throws at set-up, not per request, on a bad secret or limit', () => {
    expect(() => verifyMiddleware({ secret: 'not-a-whsec' })).toThrow(WebhookVerificationError);
    expect(() => verifyMiddleware({ secret, limit: 0 })).toThrow(TypeError);
    expect(() => verifyMiddleware({ secret, limit: 1.5 })).toThrow(TypeError);
  });
});

describe('verifyMiddleware and readRawBody on bare node:http', () => {
  it('works as (req, res, next) in a plain request handler', async () => {
    const check = verifyMiddleware({ secret });
    const seen: unknown[] = [];
    const url = await listen((req: WebhookRequest, res) => {
      check(req, res, (err) => {
        if (err) {
          res.statusCode = 500;
          return res.end();
        }
        seen.push(req.body);
        res.end('ok');
      });
    });
    expect((await post(url, signed(BODY), BODY)).status).toBe(200);
    expect((await post(url, signed(BODY), '{}')).status).toBe(400);
    expect(seen).toEqual([JSON.parse(BODY)]);
  });

  it('readRawBody collects the stream, or takes a string body a text parser left', async () => {
    const bodies: string[] = [];
    const url = await listen((req: WebhookRequest, res) => {
      readRawBody(req, { limit: 1024 }).then(
        (raw) => {
          bodies.push(raw.toString('utf8'));
          res.end();
        },
        (err: WebhookVerificationError) => {
          bodies.push(err.code);
          res.statusCode = err.status;
          res.end();
        },
      );
    });
    await post(url, {}, 'äöü bytes');
    await post(url, {}, 'x'.repeat(2048));
    expect(bodies).toEqual(['äöü bytes', 'payload_too_large']);
    const fromText = await readRawBody({ body: 'as text', headers: {} } as WebhookRequest);
    expect(fromText.toString('utf8')).toBe('as text');
  });

  it('readRawBody rejects (a plain Error, not a verdict) when the client goes away mid-body', async () => {
    let outcome: Promise<unknown> = Promise.resolve();
    const arrived = new Promise<void>((ready) => {
      void listen((req: WebhookRequest) => {
        outcome = readRawBody(req).then(() => 'read', (err: Error) => err);
        ready();
      }).then((url) => {
        const req = httpRequest(url, { method: 'POST', headers: { 'content-length': '100' } });
        req.on('error', () => undefined);
        req.write('only part of it');
        setTimeout(() => req.destroy(), 100);
      });
    });
    await arrived;
    const err = await outcome;
    // Node's own 'aborted' error or ours, whichever the stream reports first (Node's comes from
    // another realm under jest, hence no instanceof Error here).
    expect(err).not.toBeInstanceOf(WebhookVerificationError);
    expect((err as Error).message).toMatch(/aborted/);
  });
});
