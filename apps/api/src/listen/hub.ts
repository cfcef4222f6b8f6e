import { randomBytes } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Request } from 'express';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { AppError, ERROR_STATUS, LISTEN_BODY_EXCERPT_BYTES, planAllowsWebhooks } from '@hookline/domain';
import {
  claimListenSession, deriveRedis, LISTEN_HOLDER_TTL_MS, listenApiChannel, releaseListenSession, renewListenSession, subscribeWhenReady,
  type ListenReply, type ListenRequest, type RedisClient,
} from '@hookline/queue';
import type { ApiDeps } from '../deps';
import { authenticateApiKey, presentedKey } from '../middleware/auth';
import { failureLimiter, tooManyFailures } from '../middleware/failure-limit';
import { checkListenKey, getListenSessionRow, listenGraceMs, sweepListenSessions } from '../services/listen-sessions';

// The API's end of `hookline listen` (docs/listen.md): the tool's WebSocket
// (GET /v1/listen/sessions/:id/connect, upgraded here, on the HTTP server),
// the holder key that tells the workers which API process has the session,
// and the relay of each callback a worker publishes to this process to the
// tool, and of the tool's answer back to that worker. The API still sends no
// callback itself: the tool makes the local request.
//
// A connection claims its session (a newer connection wins); the holder key
// is renewed every third of its expiry, with the session's `seen` key
// (LISTEN_SESSION_GRACE), and released when the socket closes. A socket that
// answers no ping for a renewal period is ended. Callbacks in flight on a
// socket that closes are answered `connection_reset` at once, so the worker
// records the attempt without waiting out DELIVERY_TIMEOUT.

const CONNECT_PATH = /^\/v1\/listen\/sessions\/([^/?#]+)\/connect\/?$/;
const RENEW_MS = Math.floor(LISTEN_HOLDER_TTL_MS / 3);
/** Frames from the tool are small JSON answers; a callback to the tool is at most a 256 KiB body plus headers. */
const MAX_FRAME_BYTES = 1024 * 1024;
/** The tool's answer to a callback that was never asked for (or already answered) is dropped. */
const MAX_PENDING_PER_SOCKET = 1_000;

export type ListenHub = {
  /** Serves session sockets on `server` and starts the sweep of expired sessions. */
  attach(server: Server): void;
  /** Closes every session socket (their tools reconnect, to another API process) and stops. */
  close(): Promise<void>;
};

type Connection = {
  id: string;
  sessionId: string;
  socket: WebSocket;
  /** request_id → the worker channel to answer on. */
  pending: Map<string, string>;
  alive: boolean;
};

/** An error answered on the upgrade request, in the API's envelope, before the socket is dropped. */
function refuseUpgrade(socket: Duplex, err: unknown): void {
  const appError = err instanceof AppError ? err : new AppError('INTERNAL_ERROR', 'Internal error.');
  const status = ERROR_STATUS[appError.code];
  const body = JSON.stringify({ error: { code: appError.code, message: appError.message } });
  if (!socket.writable) return void socket.destroy();
  socket.end(
    [`HTTP/1.1 ${status} ${STATUS_CODES[status]}`, 'Content-Type: application/json; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', body].join('\r\n'),
    () => socket.destroy(),
  );
}

/** A text frame's JSON (ws hands frames over as Buffers). */
const frameText = (data: RawData): string => (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('utf8');

/**
 * `clientAddress`: the address Express would give this upgrade as `req.ip`
 * (TRUST_PROXY decides whose X-Forwarded-For counts), so a wrong key here is
 * counted under the same address as on any /v1 route (docs/security.md).
 */
export function createListenHub(deps: ApiDeps, clientAddress: (req: IncomingMessage) => string | undefined): ListenHub {
  const prefix = deps.config.QUEUE_PREFIX;
  const graceMs = listenGraceMs(deps.config);
  const apiId = randomBytes(9).toString('base64url');
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  const connections = new Map<string, Connection>();
  const failures = failureLimiter(deps, 'auth-fail:api-key');
  let subscriber: { redis: RedisClient; ready: Promise<unknown> } | null = null;
  let timers: NodeJS.Timeout[] = [];
  let closed = false;

  const holderOf = (conn: Connection) => `${apiId}:${conn.id}`;

  function reply(channel: string, answer: ListenReply): void {
    deps.redis.publish(channel, JSON.stringify(answer)).catch((err: Error) => {
      deps.logger.warn('could not pass a listen session\'s answer back to the worker; it times out', { err: err.message });
    });
  }
  const failed = (requestId: string, error: string): ListenReply => ({ request_id: requestId, status: null, body: null, error, duration_ms: 0, retry_after: null });

  /** A callback from a worker: to the socket it names, or answered as unreachable when that socket is gone. */
  function onRequest(text: string): void {
    let request: ListenRequest;
    try {
      request = JSON.parse(text) as ListenRequest;
    } catch {
      return;
    }
    const conn = connections.get(request.connection_id);
    if (!conn || conn.sessionId !== request.session_id || conn.pending.size >= MAX_PENDING_PER_SOCKET) {
      return reply(request.reply_to, failed(request.request_id, 'connection_refused'));
    }
    conn.pending.set(request.request_id, request.reply_to);
    conn.socket.send(JSON.stringify({
      type: 'callback', request_id: request.request_id, delivery_id: request.delivery_id, event: request.event,
      headers: request.headers, body: request.body, timeout_ms: request.timeout_ms,
    }));
  }

  /** The tool's account of one local request. */
  function onToolMessage(conn: Connection, data: RawData): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(frameText(data)) as Record<string, unknown>;
    } catch {
      return;
    }
    if (message.type !== 'result' || typeof message.request_id !== 'string') return;
    const channel = conn.pending.get(message.request_id);
    if (channel === undefined) return;
    conn.pending.delete(message.request_id);
    const text = (value: unknown, max: number) => (typeof value === 'string' ? value.slice(0, max) : null);
    reply(channel, {
      request_id: message.request_id,
      status: typeof message.status === 'number' ? message.status : null,
      body: text(message.body, LISTEN_BODY_EXCERPT_BYTES),
      error: text(message.error, 64),
      duration_ms: typeof message.duration_ms === 'number' ? message.duration_ms : 0,
      retry_after: text(message.retry_after, 128),
    });
  }

  function ensureSubscribed(): Promise<unknown> {
    if (subscriber) return subscriber.ready;
    const redis = deriveRedis(deps.redis, 'worker');
    redis.on('error', () => undefined);
    redis.on('message', (_channel: string, text: string) => onRequest(text));
    subscriber = { redis, ready: subscribeWhenReady(redis, listenApiChannel(prefix, apiId)) };
    return subscriber.ready;
  }

  function drop(conn: Connection): void {
    if (connections.get(conn.id) !== conn) return;
    connections.delete(conn.id);
    for (const [requestId, channel] of conn.pending) reply(channel, failed(requestId, 'connection_reset'));
    conn.pending.clear();
    releaseListenSession(deps.redis, prefix, conn.sessionId, holderOf(conn), graceMs).catch(() => undefined);
    deps.logger.info('listen session disconnected', { webhook_id: conn.sessionId });
  }

  /** Renews every held session; ends sockets that answered no ping, or whose session another connection took. */
  async function renew(): Promise<void> {
    await Promise.all([...connections.values()].map(async (conn) => {
      if (!conn.alive) return void conn.socket.terminate();
      conn.alive = false;
      conn.socket.ping();
      const mine = await renewListenSession(deps.redis, prefix, conn.sessionId, holderOf(conn), graceMs).catch(() => true);
      if (!mine) conn.socket.close(4001, 'another connection took this session over');
    }));
  }

  async function authorize(req: IncomingMessage): Promise<string> {
    const match = CONNECT_PATH.exec(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (!match) throw new AppError('RESOURCE_NOT_FOUND', 'No WebSocket here: `hookline listen` connects to /v1/listen/sessions/:id/connect.');
    const key = presentedKey(req.headers.authorization, typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : undefined);
    if (!key) throw new AppError('UNAUTHORIZED', 'Missing API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>".');
    const auth = await authenticateApiKey(deps, key);
    if (!auth) {
      // Counted like a wrong key on any /v1 route, under the same client address.
      const waitSeconds = await failures.fail({ ip: clientAddress(req) } as Request);
      throw waitSeconds > 0 ? tooManyFailures('API keys', waitSeconds) : new AppError('UNAUTHORIZED', 'Invalid or revoked API key.');
    }
    if (!planAllowsWebhooks(auth.plan)) throw new AppError('PLAN_REQUIRED', 'Webhooks need the pro or enterprise plan; upgrade the account to use them.');
    checkListenKey(deps.config, auth.mode);
    return (await getListenSessionRow(deps, auth.accountId, decodeURIComponent(match[1]))).id;
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (closed) return refuseUpgrade(socket, new AppError('SERVICE_UNAVAILABLE', 'This API process is shutting down; connect again.'));
    void (async () => {
      const sessionId = await authorize(req);
      await ensureSubscribed();
      wss.handleUpgrade(req, socket, head, (ws) => {
        const conn: Connection = { id: randomBytes(9).toString('base64url'), sessionId, socket: ws, pending: new Map(), alive: true };
        connections.set(conn.id, conn);
        ws.on('pong', () => (conn.alive = true));
        ws.on('message', (data) => onToolMessage(conn, data));
        ws.on('close', () => drop(conn));
        ws.on('error', () => ws.terminate());
        claimListenSession(deps.redis, prefix, sessionId, holderOf(conn), graceMs).then(
          () => {
            deps.logger.info('listen session connected', { webhook_id: sessionId });
            ws.send(JSON.stringify({ type: 'ready', session_id: sessionId }));
          },
          (err: Error) => ws.close(1011, `could not register the session: ${err.message}`.slice(0, 120)),
        );
      });
    })().catch((err: unknown) => {
      if (!(err instanceof AppError)) deps.logger.error('listen upgrade failed', { err: (err as Error).message });
      refuseUpgrade(socket, err);
    });
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    for (const timer of timers) clearInterval(timer);
    for (const conn of [...connections.values()]) {
      conn.socket.close(1012, 'the API is restarting; connect again');
      drop(conn);
    }
    wss.close();
    if (subscriber) {
      await subscriber.ready.catch(() => undefined);
      subscriber.redis.disconnect();
      subscriber = null;
    }
  }

  return {
    attach(server) {
      server.on('upgrade', onUpgrade);
      // A server closed without the graceful shutdown (a test's) stops the timers too.
      server.once('close', () => void close());
      const sweep = () =>
        sweepListenSessions(deps).catch((err: Error) => deps.logger.warn('could not sweep expired listen sessions', { err: err.message }));
      timers = [
        setInterval(() => void renew(), RENEW_MS),
        setInterval(() => void sweep(), Math.min(Math.max(Math.floor(graceMs / 4), 1_000), 30_000)),
      ];
      for (const timer of timers) timer.unref();
    },
    close,
  };
}
