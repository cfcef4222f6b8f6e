import { randomUUID } from 'node:crypto';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { progress } from './support';

// The benchmark's HTTP client for the API under test (plain node:http, keep-alive,
// so the publisher costs as little CPU as possible next to the processes measured).

// Idle sockets are dropped after 4 s, before the API's 5 s keep-alive timeout closes them
// under a request (a reset that would end the run).
export const agent = new Agent({ keepAlive: true, maxSockets: 64, timeout: 4_000 });

export type Answer = { status: number; body: any; headers: IncomingHttpHeaders };

export function call(port: number, method: string, path: string, body: unknown, auth: string, extraHeaders: Record<string, string> = {}): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${auth}`, ...extraHeaders, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) };
    const req = request(
      { host: '127.0.0.1', port, method, path, agent, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null, headers: res.headers });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers });
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
 * The body of the benchmark's publish number `seq` (a replay must send the very same body).
 * `padBytes` > 0 adds a `fields` list to the data (quota.* allow fields of the platform's
 * own) until it is about that many bytes: extraction-like rows, deterministic per seq.
 */
export function eventBody(accountId: string, seq: number, padBytes = 0): Record<string, unknown> {
  const data: Record<string, unknown> = { usage: 8_000, limit: 10_000, seq };
  if (padBytes > 0) data.fields = paddingFields(seq, padBytes);
  return { account_id: accountId, event: 'quota.warning', data };
}

/** Rows like an extraction's result (names repeat, values vary), about `bytes` of JSON in all. */
function paddingFields(seq: number, bytes: number): { name: string; value: string; confidence: number }[] {
  const rows: { name: string; value: string; confidence: number }[] = [];
  let state = (seq * 2_654_435_761) >>> 0;
  const next = () => (state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0);
  let size = 2;
  for (let i = 0; size < bytes; i++) {
    const row = { name: `field_${i % 40}`, value: next().toString(36) + next().toString(36), confidence: (next() % 1000) / 1000 };
    size += JSON.stringify(row).length + 1;
    rows.push(row);
  }
  return rows;
}

/** One keyed publish, kept so it can be replayed: its key, its body's seq, the event id and the whole answer (JSON). */
export type KeyedPublish = { key: string; seq: number; eventId: string; answer: string };

export type PublishOptions = {
  /** Send a unique Idempotency-Key with every publish. */
  idempotency?: boolean;
  /** Keyed publishes are appended here (for replays). */
  keyed?: KeyedPublish[];
  /** Each 202 must announce this many deliveries (the webhooks subscribed). */
  deliveries?: number;
  /** First seq of the bodies (so separate batches send distinct bodies). */
  firstSeq?: number;
  /** Pads each event's data to about this many bytes (eventBody). */
  padBytes?: number;
};

/** Sends one publish; throws unless it is accepted (and fans out to `deliveries` webhooks when given). */
export async function publishOne(port: number, token: string, accountId: string, seq: number, opts: PublishOptions): Promise<string> {
  const key = opts.idempotency ? `bench-${randomUUID()}` : undefined;
  const res = await call(port, 'POST', '/internal/v1/events', eventBody(accountId, seq, opts.padBytes), token, key ? { 'idempotency-key': key } : {});
  if (res.status !== 202) throw new Error(`publish answered ${res.status}: ${JSON.stringify(res.body)}`);
  const eventId = res.body.event.id as string;
  if (opts.deliveries !== undefined && res.body.event.deliveries !== opts.deliveries) {
    throw new Error(`publish fanned out to ${res.body.event.deliveries} deliveries, expected ${opts.deliveries}`);
  }
  if (key) opts.keyed?.push({ key, seq, eventId, answer: JSON.stringify(res.body) });
  return eventId;
}

/**
 * Publishes `count` events with `inFlight` concurrent requests; returns event id →
 * the time its request was sent. Latencies are measured from there: the event is
 * accepted somewhere between the send and the 202, so the figure is an upper bound
 * of accepted→delivered (the callback can even arrive before this process reads the 202).
 */
export async function publish(port: number, token: string, accountId: string, count: number, inFlight: number, label: string, opts: PublishOptions = {}): Promise<Map<string, number>> {
  const accepted = new Map<string, number>();
  let next = 0;
  const started = performance.now();
  const ticker = setInterval(() => progress(`${label}: ${accepted.size}/${count} accepted (${Math.round(accepted.size / ((performance.now() - started) / 1000))}/s)`), 1000);
  const lane = async () => {
    while (next < count) {
      const seq = (opts.firstSeq ?? 0) + next++;
      const sentAt = performance.now();
      accepted.set(await publishOne(port, token, accountId, seq, opts), sentAt);
    }
  };
  try {
    await Promise.all(Array.from({ length: inFlight }, lane));
  } finally {
    clearInterval(ticker);
  }
  return accepted;
}
