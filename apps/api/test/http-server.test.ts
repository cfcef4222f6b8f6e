import { connect, type Socket } from 'node:net';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { apiEnvSchema, parseEnv, standaloneEnvSchema } from '@hookline/config';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { createHttpServer, HTTP_LIMITS } from '../src/serve';

// The HTTP server itself, over raw sockets: requests Node's parser refuses get
// the JSON envelope (never an empty answer), slow clients are cut off, and
// credentials are checked before a body is read.

const HEADERS_TIMEOUT_MS = 500;

let h: ApiHarness;
let server: Server;
let port: number;
beforeAll(async () => {
  h = await startApiHarness();
  server = createHttpServer(h.app, { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: 2_000 });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
  await h.close();
});

/** `promise`'s value, or `fallback` after `ms` (the timer does not outlive the test). */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((done) => (timer = setTimeout(() => done(fallback), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type RawAnswer = { status: number; headers: Record<string, string>; body: string; closed: boolean };

/** Writes `raw` on a fresh connection and reads until the server closes it (or `waitMs` passes). */
function rawExchange(raw: string | Buffer, waitMs = 5_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(parse(false));
    }, waitMs);
    const parse = (closed: boolean): RawAnswer => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2) as [string?, string?];
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body, closed };
    };
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parse(true));
    });
    socket.write(raw);
  });
}

function expectRawEnvelope(answer: RawAnswer, status: number): void {
  expect(answer.status).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
  expect(answer.headers.connection).toBe('close');
  const parsed = JSON.parse(answer.body) as { error: { code: string; message: string } };
  expect(parsed).toEqual({ error: { code: 'INVALID_PAYLOAD', message: expect.any(String) } });
  expect(parsed.error.message.length).toBeGreaterThan(10);
  expect(answer.closed).toBe(true);
}

describe('requests the HTTP parser refuses get the JSON envelope', () => {
  it('a bad header line', async () => {
    expectRawEnvelope(await rawExchange('GET /healthz HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n'), 400);
  });

  it('headers over 16 KiB: 431', async () => {
    const answer = await rawExchange(`GET /v1/webhooks HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    expectRawEnvelope(answer, 431);
    expect(JSON.parse(answer.body).error.message).toMatch(/headers are too large/);
  });

  it('a Content-Length that is not a number', async () => {
    expectRawEnvelope(await rawExchange('POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}'), 400);
  });

  it('a request line of garbage', async () => {
    expectRawEnvelope(await rawExchange('\x01\x02 garbage !!\r\n\r\n'), 400);
    expectRawEnvelope(await rawExchange('GET /healthz HTTP/9.x\r\nHost: x\r\n\r\n'), 400);
  });

  it('after a good request on the same keep-alive connection', async () => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    const closed = new Promise((done) => socket.on('close', done));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    while (!text.includes('{"status":"ok"}')) await new Promise((done) => setTimeout(done, 10));
    socket.write('GET /healthz HTTP/1.1\r\nbroken header\r\n\r\n');
    await closed;
    const second = text.slice(text.indexOf('{"status":"ok"}') + '{"status":"ok"}'.length);
    expect(second).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(second.split('\r\n\r\n')[1]).error.code).toBe('INVALID_PAYLOAD');
  });
});

describe('OPTIONS', () => {
  it.each(['/v1/webhooks', '/internal/v1/events', '/healthz', '/openapi.json', '/no/such/path'])('%s: the 404 envelope saying no CORS is offered', async (path) => {
    const res = await request(server).options(path).set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'POST');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({ error: { code: 'RESOURCE_NOT_FOUND', message: expect.stringMatching(/no CORS/) } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('slow clients', () => {
  it('headers sent a byte at a time are cut off after the header timeout, while other connections are served', async () => {
    const slow: Socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    slow.on('data', (chunk) => received.push(chunk));
    slow.on('error', () => undefined);
    const closed = new Promise<number>((done) => slow.on('close', () => done(Date.now())));
    await new Promise((done) => slow.once('connect', done));
    const started = Date.now();
    const line = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'z'.repeat(1000);
    let sent = 0;
    const drip = setInterval(() => {
      if (slow.writable && sent < line.length) slow.write(line[sent++]);
    }, 100);

    // Meanwhile another connection gets its answers.
    const healthy: number[] = [];
    while (Date.now() - started < HEADERS_TIMEOUT_MS + 300) {
      healthy.push((await request(server).get('/healthz')).status);
      await new Promise((done) => setTimeout(done, 50));
    }
    const closedAt = await within(closed, 5_000, -1);
    clearInterval(drip);
    slow.destroy();

    expect(closedAt).not.toBe(-1);
    const elapsed = closedAt - started;
    expect(elapsed).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(HEADERS_TIMEOUT_MS + 1_500);
    expect(sent).toBeLessThan(line.length);
    const text = Buffer.concat(received).toString('utf8');
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(text.split('\r\n\r\n')[1])).toEqual({ error: { code: 'INVALID_PAYLOAD', message: expect.stringMatching(/too long/) } });
    expect(healthy.length).toBeGreaterThan(3);
    expect(healthy.every((status) => status === 200)).toBe(true);
  });

  it('a body sent slower than the whole-request timeout is cut off with a 408 envelope', async () => {
    const acme = await h.integrator();
    const slow = connect(port, '127.0.0.1');
    let text = '';
    slow.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    slow.on('error', () => undefined);
    const closed = new Promise<number>((done) => slow.on('close', () => done(Date.now())));
    await new Promise((done) => slow.once('connect', done));
    const started = Date.now();
    const body = JSON.stringify({ url: 'https://x.example/hooks', events: ['quota.warning'], description: 'd'.repeat(500) });
    slow.write(`POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: ${acme.auth.Authorization}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    let sent = 0;
    const drip = setInterval(() => {
      if (slow.writable && sent < body.length) slow.write(body[sent++]);
    }, 50);
    const closedAt = await within(closed, 6_000, -1);
    clearInterval(drip);
    slow.destroy();

    expect(closedAt).not.toBe(-1);
    expect(closedAt - started).toBeGreaterThanOrEqual(2_000 - 50);
    expect(closedAt - started).toBeLessThan(2_000 + 1_500);
    expect(sent).toBeLessThan(body.length);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(text.split('\r\n\r\n')[1]).error.code).toBe('INVALID_PAYLOAD');
    expect(await h.deps.db.prisma.webhook.count({ where: { accountId: acme.accountId } })).toBe(0);
  });

  it('the connection cap: a connection over it is closed at once, and the server serves again when one leaves', async () => {
    const capped = createHttpServer(h.app, { maxConnections: 1 });
    await new Promise<void>((done) => capped.listen(0, '127.0.0.1', done));
    const cappedPort = (capped.address() as AddressInfo).port;
    try {
      const first = connect(cappedPort, '127.0.0.1');
      await new Promise((done) => first.once('connect', done));
      await new Promise((done) => setTimeout(done, 50));
      const second = connect(cappedPort, '127.0.0.1');
      second.on('error', () => undefined);
      const secondClosed = await within(new Promise<boolean>((done) => second.once('close', () => done(true))), 2_000, false);
      expect(secondClosed).toBe(true);
      first.destroy();
      await new Promise((done) => setTimeout(done, 50));
      expect((await request(`http://127.0.0.1:${cappedPort}`).get('/healthz')).status).toBe(200);
    } finally {
      capped.closeAllConnections();
      await new Promise((done) => capped.close(done));
    }
  });
});

describe('credentials before bodies', () => {
  it('an unauthenticated POST of 200 KiB is 401 and its body is never parsed', async () => {
    const invalidJson = `{"url":"https://x.example","description":"${'d'.repeat(200 * 1024)}"`; // no closing brace
    for (const path of ['/v1/webhooks', '/internal/v1/accounts']) {
      const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(invalidJson)}\r\nConnection: close\r\n\r\n`;
      const answer = await rawExchange(Buffer.concat([Buffer.from(head), Buffer.from(invalidJson)]));
      expect([path, answer.status]).toEqual([path, 401]);
      expect(JSON.parse(answer.body).error.code).toBe('UNAUTHORIZED');
    }
  });
});

describe('defaults', () => {
  it('10 s for headers, 30 s for the request, 5 s keep-alive, 10000 connections; MAX_CONNECTIONS is validated', () => {
    const plain = createHttpServer(h.app);
    expect([plain.headersTimeout, plain.requestTimeout, plain.keepAliveTimeout, plain.maxConnections]).toEqual([10_000, 30_000, 5_000, 10_000]);
    expect(HTTP_LIMITS.maxConnections).toBe(10_000);
    for (const schema of [apiEnvSchema, standaloneEnvSchema]) {
      const defaults = parseEnv(schema, {});
      expect(defaults.ok && defaults.config.MAX_CONNECTIONS).toBe(10_000);
      const set = parseEnv(schema, { MAX_CONNECTIONS: '250' });
      expect(set.ok && set.config.MAX_CONNECTIONS).toBe(250);
      for (const bad of ['0', 'many', '1.5']) {
        const refused = parseEnv(schema, { MAX_CONNECTIONS: bad });
        expect(refused.ok).toBe(false);
        if (!refused.ok) expect(refused.message).toMatch(/^MAX_CONNECTIONS: [^\n]+$/);
      }
    }
  });
});
