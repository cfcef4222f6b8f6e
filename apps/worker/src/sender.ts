import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import got from 'got';
import { createProxyAgents, noProxyMatcher, type ProxyError } from './egress-proxy';
import { inSpan, SpanKind, SpanStatusCode } from '@hookline/telemetry';
import {
  ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_URL_FULL,
} from '@opentelemetry/semantic-conventions';
import { guardedLookup, isBlockedAddress } from './ssrf';
import type { SendErrorCode } from '@hookline/domain';

/** The response body kept for the attempt log (contract: "first 2 KiB"). */
export const MAX_RESPONSE_BODY_BYTES = 2048;

export type SendRequest = {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** For a `hookline listen` session's line of output (listen-sender.ts); never sent as such. */
  deliveryId?: string;
  event?: string;
};

export type SendResult = {
  /** A 2xx status line and headers arrived within the timeout (the body may have been cut short). */
  ok: boolean;
  /** HTTP status, null when no response arrived. */
  status: number | null;
  /**
   * First 2 KiB of the response body (UTF-8, NULs removed), or as much as
   * arrived before the timeout; null when no response arrived.
   */
  body: string | null;
  /**
   * Why the attempt failed without a usable HTTP response; `'redirect'` for a
   * 3xx. Null for any other received response, including 4xx/5xx (contract §3).
   */
  error: SendErrorCode | null;
  durationMs: number;
  /** `Retry-After` in ms, only for 429 and 503; null otherwise or when absent/unparseable. */
  retryAfterMs: number | null;
  /** Response headers (lower-case names, repeated values joined with ", "), when a response arrived. */
  headers?: Record<string, string>;
  /** With error 'proxy_error': what failed at the proxy (`connect_407`, `econnrefused`, `timeout` …), for metrics. */
  proxyFailure?: string;
};

export type SenderOptions = {
  /** Bounds the whole attempt, response body included: `send` settles by then. */
  timeoutMs: number;
  allowPrivateTargets: boolean;
  userAgent: string;
  /** DELIVERY_PROXY_URL and DELIVERY_NO_PROXY: every callback but those to `noProxy` hosts goes through this proxy. */
  proxy?: { url: string; noProxy: readonly string[] };
};

export type Sender = {
  send(request: SendRequest): Promise<SendResult>;
  close(): void;
};

const TLS_CODES = new Set([
  'EPROTO',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'HOSTNAME_MISMATCH',
]);
const TLS_PREFIXES = ['CERT_', 'ERR_TLS_', 'ERR_SSL_', 'UNABLE_TO_'];

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, cause } = err as { code?: unknown; cause?: unknown };
  // got wraps node errors in RequestError and copies `code`, except for its
  // generic fallback: then the original error in `cause` has the real one.
  if (typeof code === 'string' && code !== 'ERR_GOT_REQUEST_ERROR') return code;
  return cause === undefined ? undefined : errorCode(cause);
}

export function classifyError(err: unknown): SendErrorCode {
  const name = typeof err === 'object' && err !== null ? (err as { name?: unknown }).name : undefined;
  if (name === 'TimeoutError') return 'timeout';
  const code = errorCode(err);
  if (code === undefined) return 'network_error';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_NODATA' || code === 'EAI_FAIL') return 'dns_failure';
  if (code === 'EBLOCKED') return 'blocked_address';
  if (code === 'EPROXY') return 'proxy_error';
  if (TLS_CODES.has(code) || TLS_PREFIXES.some((prefix) => code.startsWith(prefix))) return 'tls_error';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'connection_reset';
  return 'network_error';
}

/** Delta-seconds or HTTP-date; a date in the past means "now" (0). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Every HTTP-date form names the month; without this, V8's lenient
  // Date.parse would read "1.5" or "-5" as dates.
  if (!/[a-z]/i.test(trimmed)) return null;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/** The URL's host as an IP literal, or null when it is a name that DNS resolves. */
function literalIp(url: URL): string | null {
  // WHATWG URL already turned `2130706433` / `0x7f.1` into dotted IPv4 and
  // keeps IPv6 in brackets.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(host) === 0 ? null : host;
}

/** The ProxyError in a got error's cause chain, if any. */
function proxyErrorIn(err: unknown): ProxyError | undefined {
  for (let at: unknown = err, depth = 0; typeof at === 'object' && at !== null && depth < 5; at = (at as { cause?: unknown }).cause, depth++) {
    // got's RequestError copies the code 'EPROXY' too: the ProxyError is the one that names the reason.
    if ((at as { code?: unknown }).code === 'EPROXY' && typeof (at as { reason?: unknown }).reason === 'string') return at as ProxyError;
  }
  return undefined;
}

/** Resolves `hostname` and refuses it when any address is not public: the guard, run before a proxy (which resolves on its own) is asked. */
function checkResolvedTarget(hostname: string): Promise<'ok' | SendErrorCode> {
  return new Promise((resolve) => {
    guardedLookup(hostname, { all: true }, (err) => resolve(err ? classifyError(err) : 'ok'));
  });
}

export function createSender(options: SenderOptions): Sender {
  const { timeoutMs, allowPrivateTargets, userAgent } = options;
  // Set on the agents, not only per request: Agent options override request
  // options when a socket is created, so nothing can bypass the guard.
  const lookup = allowPrivateTargets ? undefined : guardedLookup;
  const agentOptions: http.AgentOptions = {
    keepAlive: true,
    maxSockets: 256,
    // Drop idle sockets before typical servers (Node: 5 s) close them, so a
    // send rarely races a server-side close and fails with ECONNRESET; Node
    // also honours a shorter `Keep-Alive: timeout=` hint from the server.
    timeout: 4_000,
    ...(lookup ? { lookup } : {}),
  };
  const agent = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  // The proxy's agents resolve and reach the proxy itself with the system
  // resolver: the proxy is the operator's, and usually on a private address.
  const { lookup: _guard, ...proxyAgentOptions } = agentOptions;
  const proxied = options.proxy ? createProxyAgents(options.proxy.url, proxyAgentOptions) : null;
  const direct = noProxyMatcher(options.proxy?.noProxy ?? []);

  async function sendUntraced(request: SendRequest): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const failure = (error: SendErrorCode): SendResult => ({
      ok: false,
      status: null,
      body: null,
      error,
      durationMs: elapsed(),
      retryAfterMs: null,
    });

    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return failure('invalid_url');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return failure('invalid_url');
    // net.connect never calls `lookup` for an IP literal, so the agent's guard
    // would not see it: check here, before any socket exists.
    const ip = literalIp(url);
    if (!allowPrivateTargets && ip !== null && isBlockedAddress(ip)) return failure('blocked_address');
    const viaProxy = proxied !== null && !direct(url.hostname);
    // Through the proxy, no socket of ours ever connects to the target, so the
    // agent's guarded lookup never runs for it: resolve and check it here,
    // before the proxy is asked (the proxy must refuse private addresses too,
    // since it resolves again: docs/operations.md, "Egress proxy").
    if (viaProxy && !allowPrivateTargets && ip === null) {
      const checked = await checkResolvedTarget(url.hostname);
      if (checked !== 'ok') return failure(checked);
    }
    const agents = viaProxy ? proxied : agent;

    return new Promise<SendResult>((resolve) => {
      let settled = false;
      let response: http.IncomingMessage | undefined;
      let stream: ReturnType<typeof got.stream.post> | undefined;
      const chunks: Buffer[] = [];
      let received = 0;

      // Once the status line and headers are in, the outcome is the status the
      // receiver sent: a 2xx whose headers arrived within the timeout is
      // delivered even if its body is cut short later (by the deadline or the
      // 2 KiB cap). The receiver has accepted the event by then, and retrying
      // it would only send a duplicate. Any error before that is the outcome.
      let proxyFailure: string | undefined;
      const finish = (error: SendErrorCode | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (!response && error === 'proxy_error') return resolve({ ...failure(error), proxyFailure });
        if (!response) return resolve(failure(error ?? 'network_error'));
        const status = response.statusCode ?? 0;
        const isRedirect = status >= 300 && status < 400;
        resolve({
          ok: status >= 200 && status < 300,
          status,
          // Postgres text cannot hold NUL; the log is for humans anyway.
          // eslint-disable-next-line no-control-regex -- removing NUL is the point
          body: Buffer.concat(chunks).toString('utf8').replace(/\u0000/g, ''),
          error: isRedirect ? 'redirect' : null,
          durationMs: elapsed(),
          retryAfterMs: status === 429 || status === 503 ? parseRetryAfter(firstHeader(response.headers['retry-after'])) : null,
          headers: flattenHeaders(response.headers),
        });
      };

      // Settle now and drop the connection: a half-read response cannot go
      // back to the keep-alive pool, and a receiver that trickles its body
      // must not hold a socket (or a worker slot) open. got's own error path
      // is not used for this because it may read the rest of the body first.
      const abandon = (error: SendErrorCode | null) => {
        finish(error);
        stream?.destroy();
      };

      // One deadline for the whole attempt (DNS, connect, TLS, request body,
      // headers and response body), owned here rather than left to got so the
      // promise settles on time however the receiver behaves.
      const deadline = setTimeout(() => abandon(response ? null : 'timeout'), Math.max(0, timeoutMs - elapsed()));

      try {
        stream = got.stream.post(url, {
          agent: agents,
          ...(lookup && !viaProxy ? { dnsLookup: lookup } : {}),
          headers: { 'user-agent': userAgent, ...request.headers },
          body: request.body,
          retry: { limit: 0 },
          followRedirect: false,
          throwHttpErrors: false,
          decompress: false,
        });
      } catch (err) {
        finish(classifyError(err));
        return;
      }

      stream.on('response', (res: http.IncomingMessage) => {
        response = res;
      });
      stream.on('data', (chunk: Buffer) => {
        if (settled) return;
        const room = MAX_RESPONSE_BODY_BYTES - received;
        const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
        chunks.push(kept);
        received += kept.length;
        // Enough for the log: stop reading instead of buffering a large body.
        if (received >= MAX_RESPONSE_BODY_BYTES) abandon(null);
      });
      stream.on('end', () => finish(null));
      stream.on('error', (err: unknown) => {
        proxyFailure = proxyErrorIn(err)?.reason;
        finish(proxyFailure !== undefined ? 'proxy_error' : classifyError(err));
      });
      stream.on('close', () => finish(null));
    });
  }

  // An HTTP client span per send, with the usual HTTP attributes. The URL is
  // recorded without user info, query string or fragment (where tokens live);
  // headers (signatures, secrets) and bodies are never recorded. No traceparent
  // is sent to the receiver: it is a customer's endpoint, outside our traces.
  const send = (request: SendRequest): Promise<SendResult> =>
    inSpan('POST', async (span) => {
      const result = await sendUntraced(request);
      if (result.status !== null) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, result.status);
      if (result.error) span.setAttribute(ATTR_ERROR_TYPE, result.error);
      if (!result.ok) span.setStatus({ code: SpanStatusCode.ERROR, ...(result.error ? { message: result.error } : {}) });
      return result;
    }, { kind: SpanKind.CLIENT, attributes: { [ATTR_HTTP_REQUEST_METHOD]: 'POST', ...urlAttributes(request.url) } });

  function close(): void {
    agent.http.destroy();
    agent.https.destroy();
    proxied?.http.destroy();
    proxied?.https.destroy();
  }

  return { send, close };
}

/** url.full without user info, query or fragment, plus server.address and server.port. */
export function urlAttributes(text: string): Record<string, string | number> {
  try {
    const url = new URL(text);
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    return { [ATTR_URL_FULL]: `${url.protocol}//${url.host}${url.pathname}`, [ATTR_SERVER_ADDRESS]: url.hostname, [ATTR_SERVER_PORT]: port };
  } catch {
    return {};
  }
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
