import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from '@hookline/config';
import { listenSessionOf, type SendErrorCode } from '@hookline/domain';
import {
  deriveRedis, isCluster, subscribeWhenReady, listenApiChannel, listenHolderKey, listenReplyChannel, parseHolder, type ListenReply, type ListenRequest, type RedisClient,
} from '@hookline/queue';
import { parseRetryAfter, type Sender, type SendRequest, type SendResult } from './sender';

// Callbacks to a `hookline listen` session (docs/listen.md). The worker signs
// and records them like any other; only the transport differs: instead of an
// HTTP request (which could never reach the integrator's localhost, and which
// the address guard would refuse), the signed request is published through
// Redis to the API process holding the tool's WebSocket, and the tool's
// account of the local answer comes back the same way. No holder is an
// unreachable endpoint (connection_refused), retried like any other; no reply
// within DELIVERY_TIMEOUT is a timeout.

const KNOWN_ERRORS: ReadonlySet<string> = new Set<SendErrorCode>(['timeout', 'connection_refused', 'dns_failure', 'tls_error', 'connection_reset', 'invalid_url', 'network_error']);

export type ListenSenderOptions = {
  /** The worker's connection; the relay derives its own two from it, on first use. */
  connection: RedisClient;
  prefix: string;
  timeoutMs: number;
  userAgent: string;
  logger: Logger;
};

/** `sender` for every URL but a session's; a session's callbacks go through Redis to the tool. */
export function withListenSessions(sender: Sender, options: ListenSenderOptions): Sender {
  const { prefix, timeoutMs, logger } = options;
  const workerId = randomBytes(9).toString('base64url');
  const replyChannel = listenReplyChannel(prefix, workerId);
  const pending = new Map<string, (reply: ListenReply) => void>();
  let connections: { commands: RedisClient; replies: RedisClient; subscribed: Promise<unknown> } | null = null;

  // Opened on the first session callback: a worker that never sends one holds no extra connection.
  function open() {
    if (connections) return connections;
    const commands = deriveRedis(options.connection, 'worker', { maxRetriesPerRequest: 2 });
    const replies = deriveRedis(options.connection, 'worker');
    commands.on('error', () => undefined);
    replies.on('error', () => undefined);
    replies.on('message', (_channel: string, text: string) => {
      let reply: ListenReply;
      try {
        reply = JSON.parse(text) as ListenReply;
      } catch {
        return;
      }
      pending.get(reply.request_id)?.(reply);
    });
    const subscribed = subscribeWhenReady(replies, replyChannel);
    connections = { commands, replies, subscribed };
    return connections;
  }

  async function sendToSession(sessionId: string, request: SendRequest): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const failure = (error: SendErrorCode): SendResult => ({ ok: false, status: null, body: null, error, durationMs: elapsed(), retryAfterMs: null });
    try {
      const { commands, subscribed } = open();
      await subscribed;
      const holder = parseHolder(await commands.get(listenHolderKey(prefix, sessionId)));
      if (!holder) return failure('connection_refused');
      const requestId = randomBytes(12).toString('base64url');
      const message: ListenRequest = {
        request_id: requestId,
        reply_to: replyChannel,
        session_id: sessionId,
        connection_id: holder.connectionId,
        delivery_id: request.deliveryId ?? '',
        event: request.event ?? '',
        headers: { 'User-Agent': options.userAgent, ...request.headers },
        body: request.body,
        // The tool's own deadline leaves room for its answer to travel back.
        timeout_ms: Math.max(100, timeoutMs - 250),
      };
      const reply = await new Promise<ListenReply | null>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(requestId);
          resolve(null);
        }, Math.max(0, timeoutMs - elapsed()));
        pending.set(requestId, (answer) => {
          clearTimeout(timer);
          pending.delete(requestId);
          resolve(answer);
        });
        commands.publish(listenApiChannel(prefix, holder.apiId), JSON.stringify(message)).then((receivers) => {
          // On one server, no subscriber means the holder's process is gone (its key has not expired yet).
          // A cluster counts only the node's own subscribers, so there the reply (or the timeout) decides.
          if (receivers === 0 && !isCluster(commands)) pending.get(requestId)?.({ request_id: requestId, status: null, body: null, error: 'connection_refused', duration_ms: elapsed(), retry_after: null });
        }, () => pending.get(requestId)?.({ request_id: requestId, status: null, body: null, error: 'network_error', duration_ms: elapsed(), retry_after: null }));
      });
      if (!reply) return failure('timeout');
      return fromReply(reply, elapsed());
    } catch (err) {
      logger.warn('could not relay a callback to a listen session', { session_id: sessionId, err: (err as Error).message });
      return failure('network_error');
    }
  }

  return {
    send(request) {
      const sessionId = listenSessionOf(request.url);
      return sessionId === null ? sender.send(request) : sendToSession(sessionId, request);
    },
    close() {
      sender.close();
      for (const resolve of pending.values()) resolve({ request_id: '', status: null, body: null, error: 'connection_reset', duration_ms: 0, retry_after: null });
      if (connections) {
        connections.commands.disconnect();
        connections.replies.disconnect();
        connections = null;
      }
    },
  };
}

/** The attempt's result from the tool's reply: the local status and body, as for an HTTP answer; the tool's time for the duration. */
export function fromReply(reply: ListenReply, elapsedMs: number): SendResult {
  const status = typeof reply.status === 'number' && Number.isInteger(reply.status) && reply.status >= 100 && reply.status <= 999 ? reply.status : null;
  const durationMs = Number.isFinite(reply.duration_ms) && reply.duration_ms >= 0 ? Math.min(Math.round(reply.duration_ms), elapsedMs) : elapsedMs;
  if (status === null) {
    const error = (reply.error !== null && KNOWN_ERRORS.has(reply.error) ? reply.error : 'network_error') as SendErrorCode;
    return { ok: false, status: null, body: null, error, durationMs, retryAfterMs: null };
  }
  // eslint-disable-next-line no-control-regex -- PostgreSQL text cannot hold NUL
  const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8').subarray(0, 2048).toString('utf8').replace(/\u0000/g, '') : '';
  return {
    ok: status >= 200 && status < 300,
    status,
    body,
    error: status >= 300 && status < 400 ? 'redirect' : null,
    durationMs,
    retryAfterMs: (status === 429 || status === 503) && reply.retry_after ? parseRetryAfter(reply.retry_after) : null,
  };
}
