import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { classifyError, createSender, parseRetryAfter, type Sender } from '../src/sender';

type Seen = { method: string; url: string; headers: http.IncomingHttpHeaders; body: string };

type Receiver = {
  port: number;
  /** Requests fully received, in order. */
  requests: Seen[];
  /** TCP connections accepted (counted before any HTTP parsing). */
  connections: number;
  /** TCP connections still open on the server side. */
  readonly open: number;
  url(path?: string, host?: string): string;
  close(): Promise<void>;
};

/** A real HTTP server on 127.0.0.1 whose handler runs once the request body is in. */
async function startReceiver(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void = (_req, res) => res.end('ok'),
): Promise<Receiver> {
  const sockets = new Set<Socket>();
  const receiver = {
    requests: [] as Seen[],
    connections: 0,
    get open() {
      return sockets.size;
    },
  } as Receiver;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      receiver.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', (socket: Socket) => {
    receiver.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = (path = '/hook', host = '127.0.0.1') => `http://${host}:${receiver.port}${path}`;
  receiver.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return receiver;
}

/** A port that was just free: nothing listens there. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const payload = JSON.stringify({ id: 'evt_1', event: 'extraction.job_completed', data: { ok: true, text: 'ünïcødé' } });
const headers = {
  'Content-Type': 'application/json',
  'X-PerfectParser-Event': 'extraction.job_completed',
  'X-PerfectParser-Delivery': 'dlv_123',
  'webhook-id': 'dlv_123',
};

/** A sender (private targets allowed) for one describe block, and receivers it closes afterwards. */
function senderAgainstReceivers(timeoutMs: number) {
  let current: Sender;
  const receivers: Receiver[] = [];
  beforeAll(() => {
    current = createSender({ timeoutMs, allowPrivateTargets: true, userAgent: 'Hookline/1.0.0' });
  });
  afterAll(async () => {
    current.close();
    await Promise.all(receivers.map((r) => r.close()));
  });
  return {
    sender: { send: (request: Parameters<Sender['send']>[0]) => current.send(request) },
    receiver: async (...args: Parameters<typeof startReceiver>) => {
      const r = await startReceiver(...args);
      receivers.push(r);
      return r;
    },
  };
}

describe('createSender against a local receiver (private targets allowed)', () => {
  const { receiver, sender } = senderAgainstReceivers(2_000);

  it('POSTs the exact body and headers and reports a 2xx as ok', async () => {
    const r = await receiver((_req, res) => res.writeHead(202, { 'x-reply': 'yes' }).end('accepted'));
    const result = await sender.send({ url: r.url(), headers, body: payload });

    expect(result).toMatchObject({ ok: true, status: 202, body: 'accepted', error: null, retryAfterMs: null });
    expect(result.headers?.['x-reply']).toBe('yes');
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(r.requests).toHaveLength(1);
    const [seen] = r.requests;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/hook');
    expect(seen.body).toBe(payload);
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.headers['x-perfectparser-event']).toBe('extraction.job_completed');
    expect(seen.headers['x-perfectparser-delivery']).toBe('dlv_123');
    expect(seen.headers['webhook-id']).toBe('dlv_123');
    expect(seen.headers['user-agent']).toBe('Hookline/1.0.0');
    expect(seen.headers['content-length']).toBe(String(Buffer.byteLength(payload)));
  });

  it('reuses keep-alive connections', async () => {
    const r = await receiver();
    for (let i = 0; i < 3; i += 1) {
      expect((await sender.send({ url: r.url(), headers, body: payload })).ok).toBe(true);
    }
    expect(r.requests).toHaveLength(3);
    expect(r.connections).toBe(1);
  });

  it('keeps only the first 2048 bytes of a 1 MB response', async () => {
    const big = 'abcdefghij'.repeat(100_000);
    const r = await receiver((_req, res) => res.end(big));
    const result = await sender.send({ url: r.url(), headers, body: payload });
    expect(result.ok).toBe(true);
    expect(result.body).toBe(big.slice(0, 2048));
  });

  it('stops reading an endless response instead of buffering it', async () => {
    let written = 0;
    let finished = false;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const r = await receiver((_req, res) => {
      res.writeHead(200);
      const pump = () => {
        // Stop when the client has gone away, or after 1 GB as a safety net.
        while (!res.destroyed && written < 1024 ** 3) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        finished = !res.destroyed;
        res.end();
      };
      pump();
    });
    const result = await sender.send({ url: r.url(), headers, body: payload });
    expect(result).toMatchObject({ ok: true, status: 200, error: null });
    expect(result.body).toHaveLength(2048);
    expect(finished).toBe(false);
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('does not follow a 302: the Location target receives nothing', async () => {
    const target = await receiver();
    const r = await receiver((_req, res) => res.writeHead(302, { location: target.url('/elsewhere') }).end());
    const result = await sender.send({ url: r.url(), headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: 302, error: 'redirect', body: '' });
    expect(target.connections).toBe(0);
  });

  it('reports a 500 as a failed response without an error code', async () => {
    const r = await receiver((_req, res) => res.writeHead(500).end('boom'));
    const result = await sender.send({ url: r.url(), headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: 500, body: 'boom', error: null, retryAfterMs: null });
  });

  it('parses Retry-After on a 429', async () => {
    const r = await receiver((_req, res) => res.writeHead(429, { 'retry-after': '7' }).end());
    const result = await sender.send({ url: r.url(), headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: 429, error: null, retryAfterMs: 7000 });
  });

  it('parses an HTTP-date Retry-After on a 503', async () => {
    const when = new Date(Date.now() + 30_000).toUTCString();
    const r = await receiver((_req, res) => res.writeHead(503, { 'retry-after': when }).end());
    const result = await sender.send({ url: r.url(), headers, body: payload });
    expect(result.status).toBe(503);
    // HTTP dates have one-second resolution.
    expect(result.retryAfterMs).toBeGreaterThan(28_000);
    expect(result.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('ignores Retry-After on other statuses', async () => {
    const r = await receiver((_req, res) => res.writeHead(500, { 'retry-after': '7' }).end());
    expect((await sender.send({ url: r.url(), headers, body: payload })).retryAfterMs).toBeNull();
  });

  it('times out a receiver that never answers', async () => {
    const quick = createSender({ timeoutMs: 300, allowPrivateTargets: true, userAgent: 'Hookline/1.0.0' });
    const r = await receiver(() => undefined);
    const result = await quick.send({ url: r.url(), headers, body: payload });
    quick.close();
    expect(result).toMatchObject({ ok: false, status: null, body: null, error: 'timeout' });
    expect(result.durationMs).toBeGreaterThanOrEqual(280);
    expect(result.durationMs).toBeLessThan(1_000);
    expect(r.requests).toHaveLength(1);
  });

  it('reports a closed port as connection_refused', async () => {
    const port = await closedPort();
    const result = await sender.send({ url: `http://127.0.0.1:${port}/hook`, headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: null, body: null, error: 'connection_refused' });
  });

  it('reports a dropped connection as connection_reset', async () => {
    const r = await receiver((req) => req.socket.destroy());
    const result = await sender.send({ url: r.url(), headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: null, error: 'connection_reset' });
  });

  it('reports TLS to a plain HTTP server as tls_error', async () => {
    const r = await receiver();
    const result = await sender.send({ url: `https://127.0.0.1:${r.port}/hook`, headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: null, error: 'tls_error' });
  });

  it('reports an unresolvable host as dns_failure', async () => {
    const result = await sender.send({ url: 'http://does-not-exist.invalid/hook', headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: null, error: 'dns_failure' });
  });

  it.each(['not a url', 'ftp://127.0.0.1/x', 'file:///etc/passwd', ''])('rejects %p as invalid_url', async (url) => {
    expect(await sender.send({ url, headers, body: payload })).toMatchObject({ ok: false, status: null, error: 'invalid_url' });
  });

  it('reaches literal, localhost and numeric hosts when private targets are allowed', async () => {
    const r = await receiver();
    for (const host of ['127.0.0.1', 'localhost', '2130706433']) {
      expect(await sender.send({ url: r.url('/hook', host), headers, body: payload })).toMatchObject({ ok: true, status: 200 });
    }
    expect(r.requests).toHaveLength(3);
  });
});

describe('the timeout bounds the whole attempt, response body included', () => {
  const timeoutMs = 600;
  // Room for a loaded 2-core machine; an attempt that waited for the body would take seconds.
  const margin = 250;
  const { receiver, sender } = senderAgainstReceivers(timeoutMs);

  /** When the server side of `socket` closes (performance.now()), or a rejection after `withinMs`. */
  function closedBy(socket: Socket, withinMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server socket still open after ${withinMs} ms`)), withinMs);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(performance.now());
      });
    });
  }

  /** A receiver that sends its status line and headers at once, then one byte every 200 ms, never ending. */
  async function trickler(status: number) {
    let closed: Promise<number> | undefined;
    const r = await receiver((req, res) => {
      closed = closedBy(req.socket, 10_000);
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.write('x');
      const timer = setInterval(() => res.write('x'), 200);
      req.socket.once('close', () => clearInterval(timer));
    });
    return { r, closed: () => closed as Promise<number> };
  }

  it('ends a 2xx whose body trickles forever at the timeout, as delivered, and closes the socket', async () => {
    const { r, closed } = await trickler(200);
    const started = performance.now();
    const result = await sender.send({ url: r.url(), headers, body: payload });
    const wall = performance.now() - started;

    // The headers (and the 2xx) arrived well within the timeout: the receiver accepted the event.
    expect(result).toMatchObject({ ok: true, status: 200, error: null });
    expect(result.body).toMatch(/^x{1,4}$/);
    expect(result.durationMs).toBeGreaterThanOrEqual(timeoutMs - 5);
    expect(result.durationMs).toBeLessThan(timeoutMs + margin);
    expect(wall).toBeLessThan(timeoutMs + margin);
    // The connection is dropped, not parked half-read in the keep-alive pool.
    expect((await closed()) - started).toBeLessThan(timeoutMs + margin);
    expect(r.open).toBe(0);
  });

  it('ends a 5xx whose body trickles forever at the timeout with the status it sent', async () => {
    const { r, closed } = await trickler(503);
    const result = await sender.send({ url: r.url(), headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: 503, error: null });
    expect(result.durationMs).toBeGreaterThanOrEqual(timeoutMs - 5);
    expect(result.durationMs).toBeLessThan(timeoutMs + margin);
    await closed();
    expect(r.open).toBe(0);
  });

  it('reports headers that never complete as a timeout', async () => {
    // A raw TCP server: node:http cannot send half a header block.
    let closed: Promise<number> | undefined;
    const server = net.createServer((socket) => {
      closed = closedBy(socket, 10_000);
      socket.on('data', () => undefined);
      socket.write('HTTP/1.1 200 OK\r\n');
      const timer = setInterval(() => socket.write('X'), 100);
      socket.once('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const started = performance.now();
      const result = await sender.send({ url: `http://127.0.0.1:${port}/hook`, headers, body: payload });
      expect(result).toMatchObject({ ok: false, status: null, body: null, error: 'timeout' });
      expect(result.durationMs).toBeGreaterThanOrEqual(timeoutMs - 5);
      expect(result.durationMs).toBeLessThan(timeoutMs + margin);
      expect((await (closed as Promise<number>)) - started).toBeLessThan(timeoutMs + margin);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('keeps a body that trickles but completes within the timeout, and the connection for reuse', async () => {
    const patient = createSender({ timeoutMs: 3_000, allowPrivateTargets: true, userAgent: 'Hookline/1.0.0' });
    try {
      const r = await receiver((_req, res) => {
        res.writeHead(200);
        const parts = ['a', 'b', 'c', 'd', 'e'];
        const next = () => {
          const part = parts.shift();
          if (part === undefined) return void res.end();
          res.write(part);
          setTimeout(next, 100);
        };
        next();
      });
      const result = await patient.send({ url: r.url(), headers, body: payload });
      expect(result).toMatchObject({ ok: true, status: 200, body: 'abcde', error: null });
      expect(result.durationMs).toBeGreaterThanOrEqual(400);
      expect(result.durationMs).toBeLessThan(3_000);
      // Read to its end, the response leaves its socket usable for the next attempt.
      expect((await patient.send({ url: r.url(), headers, body: payload })).body).toBe('abcde');
      expect(r.connections).toBe(1);
    } finally {
      patient.close();
    }
  });

  it('reads only 2 KiB of a 50 MB answer: fast, no memory, socket closed', async () => {
    const patient = createSender({ timeoutMs: 10_000, allowPrivateTargets: true, userAgent: 'Hookline/1.0.0' });
    // Allocated before the baseline: the server's copy is not what is measured.
    const big = Buffer.alloc(50 * 1024 * 1024, 'y');
    let written = 0;
    let closed: Promise<number> | undefined;
    const r = await receiver((req, res) => {
      closed = closedBy(req.socket, 10_000);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
      // Slices of one buffer, written as fast as the client takes them: `written`
      // counts what the connection actually accepted.
      const pump = () => {
        while (!res.destroyed && written < big.length) {
          const slice = big.subarray(written, written + 64 * 1024);
          written += slice.length;
          if (!res.write(slice)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end();
      };
      pump();
    });

    const baseline = process.memoryUsage();
    let peakRss = baseline.rss;
    let peakExternal = baseline.external + baseline.heapUsed;
    const sample = setInterval(() => {
      const now = process.memoryUsage();
      peakRss = Math.max(peakRss, now.rss);
      peakExternal = Math.max(peakExternal, now.external + now.heapUsed);
    }, 1);
    try {
      const result = await patient.send({ url: r.url(), headers, body: payload });
      await closed;
      expect(result).toMatchObject({ ok: true, status: 200, error: null });
      expect(result.body).toBe('y'.repeat(2048));
      expect(result.durationMs).toBeLessThan(1_000);
    } finally {
      clearInterval(sample);
      patient.close();
    }
    const mib = 1024 * 1024;
    expect((peakRss - baseline.rss) / mib).toBeLessThan(20);
    expect((peakExternal - baseline.external - baseline.heapUsed) / mib).toBeLessThan(20);
    // The client stopped reading: most of the 50 MB never left the server.
    expect(written).toBeLessThan(big.length / 2);
    expect(r.open).toBe(0);
  });
});

describe('createSender SSRF guard (private targets not allowed)', () => {
  let sender: Sender;
  let r: Receiver;
  let v6: http.Server | undefined;
  let v6Connections = 0;
  let v6Port = 0;

  beforeAll(async () => {
    sender = createSender({ timeoutMs: 2_000, allowPrivateTargets: false, userAgent: 'Hookline/1.0.0' });
    r = await startReceiver();
    // An IPv6 loopback listener, where the machine has one, proves `[::1]` is stopped before connecting.
    const server = http.createServer((_req, res) => res.end('ok'));
    server.on('connection', () => (v6Connections += 1));
    v6Port = await new Promise<number>((resolve) => {
      server.once('error', () => resolve(0));
      server.listen(0, '::1', () => resolve((server.address() as AddressInfo).port));
    });
    if (v6Port) v6 = server;
  });
  afterAll(async () => {
    sender.close();
    await r.close();
    if (v6) await new Promise<void>((resolve) => v6?.close(() => resolve()));
  });

  const blockedHosts = [
    '127.0.0.1',
    'localhost', // resolves to 127.0.0.1 / ::1: stopped by the guarded lookup
    '2130706433', // 127.0.0.1 as one decimal number
    '0x7f.1', // 127.0.0.1 in hex shorthand
    '0177.0.0.1', // 127.0.0.1 in octal
    '127.1',
    '0',
    '[::ffff:127.0.0.1]',
    '[::ffff:7f00:1]',
  ];

  it.each(blockedHosts)('blocks http://%s:PORT/ without connecting', async (host) => {
    const before = { connections: r.connections, requests: r.requests.length };
    const result = await sender.send({ url: r.url('/hook', host), headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: null, body: null, error: 'blocked_address' });
    expect({ connections: r.connections, requests: r.requests.length }).toEqual(before);
  });

  it('blocks [::1] without connecting', async () => {
    if (!v6Port) console.warn('no IPv6 loopback here: [::1] checked against the IPv4 receiver only');
    const port = v6Port || r.port;
    const result = await sender.send({ url: `http://[::1]:${port}/hook`, headers, body: payload });
    expect(result).toMatchObject({ ok: false, status: null, error: 'blocked_address' });
    expect(v6Connections).toBe(0);
    expect(r.connections).toBe(0);
  });

  it('blocks https targets the same way', async () => {
    const before = r.connections;
    for (const host of ['127.0.0.1', 'localhost']) {
      const result = await sender.send({ url: `https://${host}:${r.port}/hook`, headers, body: payload });
      expect(result.error).toBe('blocked_address');
    }
    expect(r.connections).toBe(before);
  });

  it('blocks link-local metadata and private ranges', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/', 'http://[fe80::1]/', 'http://0.0.0.0:1/']) {
      expect((await sender.send({ url, headers, body: payload })).error).toBe('blocked_address');
    }
  });

  it('still reports an unresolvable host as dns_failure', async () => {
    const result = await sender.send({ url: 'http://does-not-exist.invalid/hook', headers, body: payload });
    expect(result.error).toBe('dns_failure');
  });

  it('receiver saw nothing at all from the blocked sends', () => {
    expect(r.connections).toBe(0);
    expect(r.requests).toHaveLength(0);
  });
});

describe('classifyError', () => {
  const withCode = (code: string) => Object.assign(new Error(code), { code });

  it.each([
    ['ETIMEDOUT', 'timeout'],
    ['ECONNREFUSED', 'connection_refused'],
    ['ENOTFOUND', 'dns_failure'],
    ['EAI_AGAIN', 'dns_failure'],
    ['EBLOCKED', 'blocked_address'],
    ['CERT_HAS_EXPIRED', 'tls_error'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls_error'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls_error'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls_error'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'tls_error'],
    ['EPROTO', 'tls_error'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls_error'],
    ['ECONNRESET', 'connection_reset'],
    ['EPIPE', 'connection_reset'],
    ['EHOSTUNREACH', 'network_error'],
    ['HPE_INVALID_CONSTANT', 'network_error'],
  ])('maps %s to %s', (code, expected) => {
    expect(classifyError(withCode(code))).toBe(expected);
  });

  it('looks through a generic wrapper to its cause', () => {
    const wrapped = Object.assign(new Error('wrapped'), { code: 'ERR_GOT_REQUEST_ERROR', cause: withCode('ECONNRESET') });
    expect(classifyError(wrapped)).toBe('connection_reset');
  });

  it('maps anything unrecognisable to network_error', () => {
    expect(classifyError(new Error('??'))).toBe('network_error');
    expect(classifyError('string')).toBe('network_error');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it.each([
    ['7', 7000],
    [' 120 ', 120_000],
    ['0', 0],
    ['Wed, 01 Jan 2025 00:00:30 GMT', 30_000],
    ['Tue, 31 Dec 2024 23:59:00 GMT', 0],
    ['soon', null],
    ['-5', null],
    ['1.5', null],
    [undefined, null],
  ])('parses %p as %p', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });
});
