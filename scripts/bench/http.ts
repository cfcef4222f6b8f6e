import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { progress } from './support';

// The benchmark's HTTP client for the API under test (plain node:http, keep-alive,
// so the publisher costs as little CPU as possible next to the processes measured).

// Idle sockets are dropped after 4 s, before the API's 5 s keep-alive timeout closes them
// under a request (a reset that would end the run).
export const agent = new Agent({ keepAlive: true, maxSockets: 64, timeout: 4_000 });

export function call(port: number, method: string, path: string, body: unknown, auth: string): Promise<{ status: number; body: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, agent, headers: { authorization: `Bearer ${auth}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: text });
          }
        });
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path} got no answer within 30 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Publishes `count` events with `inFlight` concurrent requests; returns event id →
 * the time its request was sent. Latencies are measured from there: the event is
 * accepted somewhere between the send and the 202, so the figure is an upper bound
 * of accepted→delivered (the callback can even arrive before this process reads the 202).
 */
export async function publish(port: number, token: string, accountId: string, count: number, inFlight: number, label: string): Promise<Map<string, number>> {
  const accepted = new Map<string, number>();
  let next = 0;
  const started = performance.now();
  const ticker = setInterval(() => progress(`${label}: ${accepted.size}/${count} accepted (${Math.round(accepted.size / ((performance.now() - started) / 1000))}/s)`), 1000);
  const lane = async () => {
    while (next < count) {
      const seq = next++;
      const sentAt = performance.now();
      const res = await call(port, 'POST', '/internal/v1/events', { account_id: accountId, event: 'quota.warning', data: { seq } }, token);
      if (res.status !== 202) throw new Error(`publish answered ${res.status}: ${JSON.stringify(res.body)}`);
      accepted.set(res.body.event.id, sentAt);
    }
  };
  try {
    await Promise.all(Array.from({ length: inFlight }, lane));
  } finally {
    clearInterval(ticker);
  }
  return accepted;
}
