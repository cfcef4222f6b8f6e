import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';

// The local request of one callback: the same body and headers Hookline
// signed (signatures included), POSTed to the --forward-to URL, so the
// integrator's own verification code runs unchanged. What came back is the
// attempt's result, as Hookline records it for any endpoint.

/** The excerpt of the local answer sent back (the attempt log keeps the first 2 KiB). */
export const BODY_EXCERPT_BYTES = 2048;

export type LocalResult = {
  status: number | null;
  body: string | null;
  /** Set when no answer came: connection_refused, timeout, connection_reset, dns_failure, tls_error, invalid_url, network_error. */
  error: string | null;
  duration_ms: number;
  retry_after: string | null;
};

/** A Node error's code as the attempt log names it. */
export function localError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'connection_reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns_failure';
  if (typeof code === 'string' && (code.startsWith('ERR_TLS_') || code.startsWith('CERT_') || code.includes('SELF_SIGNED'))) return 'tls_error';
  return 'network_error';
}

export function forward(target: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<LocalResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const payload = Buffer.from(body, 'utf8');
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: Omit<LocalResult, 'duration_ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, duration_ms: elapsed() });
    };
    const failed = (error: string) => finish({ status: null, body: null, error, retry_after: null });
    const client = target.protocol === 'https:' ? https : http;
    const req = client.request(target, { method: 'POST', headers: { ...headers, 'Content-Length': String(payload.length) } }, (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      const done = () => {
        const retryAfter = res.headers['retry-after'];
        finish({
          status: res.statusCode ?? null,
          body: Buffer.concat(chunks).toString('utf8'),
          error: null,
          retry_after: typeof retryAfter === 'string' ? retryAfter : null,
        });
        res.destroy();
      };
      res.on('data', (chunk: Buffer) => {
        const room = BODY_EXCERPT_BYTES - kept;
        if (room > 0) chunks.push(chunk.subarray(0, room));
        kept += Math.min(room, chunk.length);
        if (kept >= BODY_EXCERPT_BYTES) done();
      });
      res.on('end', done);
      res.on('error', done);
    });
    const timer = setTimeout(() => {
      failed('timeout');
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => failed(localError(err)));
    req.end(payload);
  });
}
