import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// A real HTTP receiver on 127.0.0.1 for delivery tests. Each request is recorded
// with its raw body; the reply is scripted per call.

export type ReceivedCallback = { method: string; path: string; headers: IncomingHttpHeaders; body: string; receivedAt: number };
export type Reply = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number; hang?: boolean };
export type Responder = (req: ReceivedCallback, index: number) => Reply;

export type Receiver = {
  url: string;
  port: number;
  received: ReceivedCallback[];
  /** Requests open right now (arrived, not yet answered), and the most ever open at once. */
  open(): number;
  maxOpen(): number;
  respond(responder: Responder | Reply): void;
  /** Resolves once `count` callbacks arrived (rejects after timeoutMs). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedCallback[]>;
  close(): Promise<void>;
};

export async function startReceiver(initial: Responder | Reply = { status: 200, body: '{"received":true}' }): Promise<Receiver> {
  let responder: Responder = typeof initial === 'function' ? initial : () => initial;
  const received: ReceivedCallback[] = [];
  const waiters: Array<() => void> = [];
  let open = 0;
  let maxOpen = 0;
  const server: Server = createServer((req, res) => {
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    let counted = true;
    const done = () => {
      if (counted) open -= 1;
      counted = false;
    };
    res.on('finish', done);
    res.on('close', done);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry: ReceivedCallback = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now() };
      const index = received.push(entry) - 1;
      waiters.splice(0).forEach((wake) => wake());
      const reply = responder(entry, index);
      if (reply.hang) return;
      const send = () => {
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        res.end(reply.body ?? '');
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    received,
    open: () => open,
    maxOpen: () => maxOpen,
    respond(next) {
      responder = typeof next === 'function' ? next : () => next;
    },
    waitFor(count, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`receiver got ${received.length} of ${count} callbacks in ${timeoutMs} ms`)), timeoutMs);
        const check = () => {
          if (received.length >= count) {
            clearTimeout(deadline);
            resolve(received.slice());
          } else waiters.push(check);
        };
        check();
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
