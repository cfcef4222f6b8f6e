import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callbackLine, forward } from '../src';
import { run } from '../src/main';

// The tool's local request (forward.ts): the same body and headers to the
// local URL, and an account of its answer that the attempt log can hold.

let server: Server;
let base: string;
const seen: { headers: Record<string, unknown>; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (req.url === '/hang') return;
      if (req.url === '/big') return void res.end('y'.repeat(10_000));
      res.writeHead(429, { 'retry-after': '3' }).end('slow down');
    });
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});

describe('forward', () => {
  it('POSTs the body and headers as given, and reports the status, body and Retry-After', async () => {
    const result = await forward(new URL(`${base}/hooks`), { 'Content-Type': 'application/json', 'webhook-id': 'dlv_1', 'User-Agent': 'Hookline/1.0.0' }, '{"a":1}', 2_000);
    expect(result).toMatchObject({ status: 429, body: 'slow down', error: null, retry_after: '3' });
    expect(seen.at(-1)).toMatchObject({ body: '{"a":1}', headers: { 'content-type': 'application/json', 'webhook-id': 'dlv_1', 'user-agent': 'Hookline/1.0.0' } });
  });

  it('keeps the first 2 KiB of a large answer', async () => {
    expect((await forward(new URL(`${base}/big`), {}, '{}', 2_000)).body).toHaveLength(2048);
  });

  it('names what went wrong when no answer came: nothing listening, or too slow', async () => {
    const closed = createServer();
    await new Promise<void>((ready) => closed.listen(0, '127.0.0.1', ready));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((done) => closed.close(done));
    expect(await forward(new URL(`http://127.0.0.1:${port}/hooks`), {}, '{}', 2_000)).toMatchObject({ status: null, error: 'connection_refused' });
    expect(await forward(new URL(`${base}/hang`), {}, '{}', 200)).toMatchObject({ status: null, error: 'timeout' });
  });

  it('prints one line per callback: time, event, delivery id, local status or error, ms', () => {
    const at = new Date('2026-12-07T10:00:00.000Z');
    expect(callbackLine(at, { event: 'quota.warning', delivery_id: 'dlv_1' }, { status: 200, body: '', error: null, duration_ms: 12, retry_after: null }))
      .toMatch(/^2026-12-07T10:00:00\.000Z\s+quota\.warning\s+dlv_1\s+200\s+12 ms$/);
    expect(callbackLine(at, { event: 'quota.warning', delivery_id: 'dlv_1' }, { status: null, body: null, error: 'connection_refused', duration_ms: 1, retry_after: null }))
      .toContain('connection_refused');
  });
});

describe('the command', () => {
  const io = () => {
    const out: string[] = [];
    return { out, io: { out: (l: string) => out.push(l), err: (l: string) => out.push(l), env: {} } };
  };

  it('says what is missing before it calls anything', async () => {
    const a = io();
    expect(await run(['listen', '--forward-to', `${base}/hooks`], a.io)).toBe(1);
    expect(a.out).toEqual(['hookline: no API key: pass --api-key or set HOOKLINE_API_KEY']);
    const b = io();
    expect(await run(['listen', '--api-key', 'k'], b.io)).toBe(1);
    expect(b.out[0]).toMatch(/--forward-to <url> is required/);
    const c = io();
    expect(await run(['trigger', '--api-key', 'k'], c.io)).toBe(1);
    expect(c.out[0]).toMatch(/name one event/);
    const d = io();
    expect(await run(['nonsense'], d.io)).toBe(2);
    expect(d.out[0]).toMatch(/^Usage:/);
  });

  it('reports an unreachable Hookline in one line', async () => {
    const a = io();
    expect(await run(['trigger', 'quota.warning', '--api-key', 'k', '--url', 'http://127.0.0.1:1'], a.io)).toBe(1);
    expect(a.out[0]).toMatch(/^hookline: cannot reach Hookline at http:\/\/127\.0\.0\.1:1/);
  });
});
