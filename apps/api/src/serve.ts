import { createServer, STATUS_CODES, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Express } from 'express';
import { onShutdownSignal, type Logger } from '@hookline/config';
import { listenHubOf } from './app';

/** Limits that keep slow or greedy clients from holding the server (docs/api.md#connection-limits). */
export type HttpLimits = {
  /** The whole header block must arrive within this (default 10 s). */
  headersTimeoutMs?: number;
  /** The whole request, body included, must arrive within this (default 30 s). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (default 5 s). */
  keepAliveTimeoutMs?: number;
  /** Connections open at once; more are closed as they arrive (default 10000, MAX_CONNECTIONS). */
  maxConnections?: number;
};

export const HTTP_LIMITS = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 10_000 } as const;

/**
 * The answer to a request Node's HTTP parser refused before the app saw it
 * (a bad header line, headers over 16 KiB, a bad Content-Length, a malformed
 * request line, headers or request too slow): the same JSON envelope as every
 * other error, written raw since there is no request object, then the socket closes.
 */
export function clientErrorResponse(err: NodeJS.ErrnoException): string {
  const [status, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request headers are too large (16 KiB at most); send fewer or shorter headers.']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'The request took too long to arrive: its headers and the whole request each have a time limit; send it without pauses.']
        : [400, 'The request is not valid HTTP/1.1 (bad request line, header or Content-Length); check how it is built.'];
  const body = JSON.stringify({ error: { code: 'INVALID_PAYLOAD', message } });
  return [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // A response already started on this connection cannot be followed by another.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  socket.end(clientErrorResponse(err), () => socket.destroy());
}

/**
 * The HTTP server of the API (and of `npm start`): the app behind header,
 * request and keep-alive timeouts, a connection cap, and JSON answers to
 * requests the HTTP parser refuses.
 */
export function createHttpServer(app: Express, limits: HttpLimits = {}): Server {
  const headersTimeout = limits.headersTimeoutMs ?? HTTP_LIMITS.headersTimeoutMs;
  const server = createServer(
    {
      headersTimeout,
      requestTimeout: Math.max(limits.requestTimeoutMs ?? HTTP_LIMITS.requestTimeoutMs, headersTimeout),
      keepAliveTimeout: limits.keepAliveTimeoutMs ?? HTTP_LIMITS.keepAliveTimeoutMs,
      // Node looks for timed-out requests on this interval (30 s by default, which would stretch a 10 s limit).
      connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(headersTimeout / 4))),
    },
    app,
  );
  server.maxConnections = limits.maxConnections ?? HTTP_LIMITS.maxConnections;
  server.on('clientError', onClientError);
  listenHubOf(app)?.attach(server);
  return server;
}

/**
 * Listens until SIGTERM/SIGINT, then shuts down gracefully: stop accepting,
 * let in-flight requests finish (at most `drainMs`), run onClose, exit 0.
 */
export function serveUntilSignal(
  app: Express,
  opts: { port: number; host?: string; logger: Logger; drainMs?: number; limits?: HttpLimits; onListening?: (port: number) => void; onClose: () => Promise<void> },
): Promise<Server> {
  return new Promise((resolveServer, reject) => {
    const server = createHttpServer(app, opts.limits);
    server.listen(opts.port, opts.host ?? '0.0.0.0');
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${opts.port} is already in use; set PORT to a free port`) : err);
    });
    server.once('listening', () => {
      opts.onListening?.((server.address() as AddressInfo).port);
      resolveServer(server);
    });
    const stop = (signal: string) => {
      opts.logger.info('shutting down', { signal });
      // Listen sessions' sockets are not requests to drain: close them now, and their tools reconnect elsewhere.
      void listenHubOf(app)?.close();
      server.close(() => undefined);
      server.closeIdleConnections();
      const drained = new Promise<void>((done) => {
        const tick = setInterval(() => {
          server.closeIdleConnections();
          server.getConnections((_err, count) => {
            if (count === 0) {
              clearInterval(tick);
              done();
            }
          });
        }, 50);
        setTimeout(() => {
          clearInterval(tick);
          server.closeAllConnections();
          done();
        }, opts.drainMs ?? 10_000).unref();
      });
      drained
        .then(() => opts.onClose())
        .then(() => process.exit(0))
        .catch((err: Error) => {
          opts.logger.error('shutdown failed', { err: err.message });
          process.exit(1);
        });
    };
    onShutdownSignal(stop, opts.logger);
  });
}
