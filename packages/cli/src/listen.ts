import WebSocket from 'ws';
import { ApiError, connectUrl, createSession, endSession, type Credentials } from './api';
import { forward, type LocalResult } from './forward';

// `hookline listen` (docs/listen.md): opens a session (a webhook of the
// account that lives while this tool is connected), holds its WebSocket, and
// forwards every callback to the local URL with the same body and headers,
// then sends the local answer back as the attempt's result. A dropped
// connection is retried with backoff, resuming the same session; meanwhile
// Hookline retries the session's callbacks like any unreachable endpoint's.
// Stopping ends the session.

export type ListenOptions = Credentials & {
  forwardTo: string;
  events?: string[];
  /** One line of output (the session, then one per callback). */
  print(line: string): void;
  /** First and largest wait between two reconnects (default 250 ms, 5 s). */
  reconnectMs?: { first: number; max: number };
};

export type ListenHandle = {
  sessionId: string;
  signingSecret: string;
  /** Whether the session's socket is open now. */
  connected(): boolean;
  /** Closes the socket and ends the session. */
  stop(): Promise<void>;
  /** Settles when the tool stops: resolves after stop(), rejects when the session cannot go on (ended, key revoked). */
  done: Promise<void>;
};

type CallbackFrame = { type: 'callback'; request_id: string; delivery_id: string; event: string; headers: Record<string, string>; body: string; timeout_ms: number };

/** One line per callback: time, event, delivery id, local status (or what went wrong), milliseconds. */
export function callbackLine(at: Date, frame: Pick<CallbackFrame, 'event' | 'delivery_id'>, result: LocalResult): string {
  const outcome = result.status !== null ? String(result.status) : result.error ?? 'no answer';
  return `${at.toISOString()}  ${frame.event.padEnd(30)}  ${frame.delivery_id}  ${outcome.padStart(3)}  ${result.duration_ms} ms`;
}

export async function listen(options: ListenOptions): Promise<ListenHandle> {
  let target: URL;
  try {
    target = new URL(options.forwardTo);
  } catch {
    throw new Error(`--forward-to: ${options.forwardTo} is not a URL (e.g. http://localhost:4000/hooks)`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('--forward-to: must be an http:// or https:// URL');

  const { session, signing_secret: signingSecret } = await createSession(options, options.events);
  const waits = options.reconnectMs ?? { first: 250, max: 5_000 };
  let socket: WebSocket | null = null;
  let open = false;
  let stopping = false;
  let wait = waits.first;
  let lostAt: number | null = null;
  let timer: NodeJS.Timeout | undefined;
  let settle!: { resolve: () => void; reject: (err: Error) => void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // A caller that only awaits stop() must not see an unhandled rejection.
  done.catch(() => undefined);

  async function onCallback(ws: WebSocket, frame: CallbackFrame): Promise<void> {
    const result = await forward(target, frame.headers, frame.body, frame.timeout_ms);
    options.print(callbackLine(new Date(), frame, result));
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'result', request_id: frame.request_id, ...result }));
  }

  function fail(err: Error): void {
    stopping = true;
    clearTimeout(timer);
    settle.reject(err);
  }

  function connect(): void {
    const ws = new WebSocket(connectUrl(options, session.id), { headers: { Authorization: `Bearer ${options.apiKey}` } });
    socket = ws;
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        // The session or the key is gone for good: nothing to reconnect to.
        if (status === 401 || status === 403 || status === 404) {
          let message = `HTTP ${status}`;
          try {
            message = (JSON.parse(text) as { error: { message: string } }).error.message;
          } catch {
            // not the API's envelope
          }
          fail(new ApiError(status, 'SESSION_ENDED', `the session cannot go on: ${message}`));
        }
        ws.terminate();
      });
    });
    ws.on('message', (data) => {
      let frame: Partial<Omit<CallbackFrame, 'type'>> & { type?: string };
      try {
        frame = JSON.parse((Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('utf8')) as typeof frame;
      } catch {
        return;
      }
      if (frame.type === 'ready') {
        open = true;
        wait = waits.first;
        if (lostAt !== null) options.print(`Reconnected after ${Math.round((Date.now() - lostAt) / 1000)} s; callbacks missed meanwhile arrive as Hookline retries them.`);
        lostAt = null;
      } else if (frame.type === 'callback') {
        void onCallback(ws, frame as CallbackFrame);
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      open = false;
      if (stopping) return;
      if (lostAt === null) {
        lostAt = Date.now();
        options.print('Connection to Hookline lost; reconnecting…');
      }
      timer = setTimeout(connect, wait);
      wait = Math.min(wait * 2, waits.max);
    });
  }

  connect();
  options.print(`Session ${session.id} forwarding to ${target.toString()} (events: ${session.events.join(', ')})`);
  options.print(`Signing secret: ${signingSecret}  (verify the forwarded callbacks with it; it lasts as long as the session)`);

  let stopped: Promise<void> | undefined;
  return {
    sessionId: session.id,
    signingSecret,
    connected: () => open,
    done,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearTimeout(timer);
        socket?.close(1000, 'hookline listen stopped');
        try {
          await endSession(options, session.id);
        } catch (err) {
          // Already gone (its grace ran out): nothing left to end.
          if (!(err instanceof ApiError && err.status === 404)) throw err;
        } finally {
          settle.resolve();
        }
      })();
      return stopped;
    },
  };
}
