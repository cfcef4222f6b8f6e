import type http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';
import { HttpProxyAgent, HttpsProxyAgent } from 'hpagent';

// The egress proxy (DELIVERY_PROXY_URL; docs/operations.md, "Egress proxy").
// Every proxied callback opens a CONNECT tunnel to the target's host and port
// (for http:// targets too), so everything up to the tunnel is the proxy's
// doing and everything after it the endpoint's: a failure while opening the
// tunnel (the proxy refused or dropped the connection, timed out, answered
// CONNECT with 407, 403, 502, 503 …) is a ProxyError, which the worker does not
// count against the endpoint; a response that came through the tunnel, 502s
// included, is the endpoint's own.
//
// hpagent's agents make the CONNECT; these subclasses only mark the errors of
// that phase. The address guard runs before a request reaches them (sender.ts):
// the proxy resolves and connects, so the worker checks the target first.

export class ProxyError extends Error {
  readonly code = 'EPROXY';

  constructor(
    /** For metrics and logs: `connect_<status>` for a refused CONNECT, else the socket error's code (`econnrefused`, `timeout`, …). */
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProxyError';
  }
}

/** The proxy's failure, named without anything from its URL (which may carry credentials). */
export function proxyErrorOf(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const status = /^Bad response: (\d{3})$/.exec(message)?.[1];
  if (status) return new ProxyError(`connect_${status}`, `the proxy answered CONNECT with ${status}`);
  if (message === 'Proxy timeout') return new ProxyError('timeout', 'the proxy did not answer CONNECT in time');
  const code = typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'error';
  return new ProxyError(code.toLowerCase(), `could not reach the proxy (${code})`);
}

type ConnectionCallback = (err: Error | null, stream: Duplex) => void;

/** The callback hpagent's CONNECT answers, with its errors turned into ProxyErrors. */
const marking = (callback?: ConnectionCallback): ConnectionCallback => (err, stream) => callback?.(err ? proxyErrorOf(err) : null, stream);

class MarkedHttpProxyAgent extends HttpProxyAgent {
  override createConnection(options: http.ClientRequestArgs, callback?: ConnectionCallback): Duplex | null | undefined {
    return super.createConnection(options, marking(callback));
  }
}

class MarkedHttpsProxyAgent extends HttpsProxyAgent {
  override createConnection(options: http.ClientRequestArgs, callback?: ConnectionCallback): Duplex | null | undefined {
    return super.createConnection(options, marking(callback));
  }
}

export type ProxyAgents = { http: http.Agent; https: https.Agent };

/** Agents that reach every target through `proxyUrl` by CONNECT (http:// and https:// targets alike). */
export function createProxyAgents(proxyUrl: string, agentOptions: http.AgentOptions): ProxyAgents {
  const proxy = new URL(proxyUrl);
  return {
    http: new MarkedHttpProxyAgent({ ...agentOptions, proxy }),
    https: new MarkedHttpsProxyAgent({ ...agentOptions, proxy }),
  };
}

/**
 * DELIVERY_NO_PROXY as a predicate on a URL's hostname: `*` matches every
 * host; `example.com` and `.example.com` match example.com and its
 * subdomains; an IP address matches itself. Matching is on the name as the
 * URL writes it (lower case, IPv6 without brackets), never on what it resolves to.
 */
export function noProxyMatcher(entries: readonly string[]): (hostname: string) => boolean {
  const rules = entries.map((entry) => entry.trim().toLowerCase().replace(/^\*?\./, '').replace(/^\[(.*)\]$/, '$1')).filter((entry) => entry !== '');
  return (hostname) => {
    const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
    return rules.some((rule) => rule === '*' || host === rule || host.endsWith(`.${rule}`));
  };
}

/** The proxy for logs: scheme, host and port, never its credentials. */
export function describeProxy(proxyUrl: string): string {
  const url = new URL(proxyUrl);
  return `${url.protocol}//${url.host}`;
}
