// npm run bench — measures the delivery pipeline on this machine's PostgreSQL and Redis.
//
// The API and a worker run as separate processes (as in production); this process
// publishes events through the platform API and hosts the receiving endpoint.
//   1. ingest:     N events published as fast as possible, no worker running (API events/s)
//   2. drain:      a worker starts and delivers the N queued callbacks (deliveries/s)
//   3. end to end: N more events published with the worker running (published→all delivered)
//   4. latency:    events paced at --rate/s for --seconds; accepted (202) → callback received
//   5. ceiling:    a bare BullMQ worker doing the same signed got POSTs, no database
// Options: --events N (20000) --rate R (500) --seconds S (20) --concurrency C (200)
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ChildProcess } from 'node:child_process';
import { Client } from 'pg';
import { createRedis } from '@hookline/queue';
import { percentile, progress, spawnTsx, startBenchReceiver, waitUntil, type Receiver } from './bench/support';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`bench: --${name} must be a positive number\n`);
    process.exit(2);
  }
  return value;
};
const N = option('events', 20_000);
const RATE = option('rate', 500);
const SECONDS = option('seconds', 20);
const CONCURRENCY = option('concurrency', 200);

const PG_SERVER = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function call(port: number, method: string, path: string, body: unknown, auth: string): Promise<{ status: number; body: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, agent, headers: { authorization: `Bearer ${auth}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
        });
      },
    );
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
async function publish(port: number, token: string, accountId: string, count: number, inFlight: number, label: string): Promise<Map<string, number>> {
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
  await Promise.all(Array.from({ length: inFlight }, lane));
  clearInterval(ticker);
  return accepted;
}

async function paced(port: number, token: string, accountId: string, rate: number, seconds: number): Promise<Map<string, number>> {
  const accepted = new Map<string, number>();
  const total = Math.round(rate * seconds);
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sentAt = performance.now();
    pending.push(
      call(port, 'POST', '/internal/v1/events', { account_id: accountId, event: 'quota.warning', data: { seq: i } }, token).then((res) => {
        if (res.status !== 202) throw new Error(`publish answered ${res.status}`);
        accepted.set(res.body.event.id, sentAt);
      }),
    );
    if (i % rate === 0) progress(`latency: ${i}/${total} published at ${rate}/s`);
  }
  await Promise.all(pending);
  return accepted;
}

async function waitDelivered(receiver: Receiver, ids: Iterable<string>, count: number, label: string, timeoutMs: number): Promise<number> {
  const list = [...ids];
  const started = performance.now();
  await waitUntil(
    () => {
      const got = list.reduce((n, id) => n + (receiver.arrivals.has(id) ? 1 : 0), 0);
      progress(`${label}: ${got}/${count} delivered (${Math.round((performance.now() - started) / 1000)} s)`);
      return got >= count;
    },
    timeoutMs,
    `${label} deliveries`,
  );
  return Math.max(...list.map((id) => receiver.arrivals.get(id)!));
}

function latencies(accepted: Map<string, number>, receiver: Receiver): number[] {
  return [...accepted].map(([id, at]) => receiver.arrivals.get(id)! - at).sort((a, b) => a - b);
}

async function main() {
  const children: ChildProcess[] = [];
  const dbName = `hookline_bench_${Date.now().toString(36)}`;
  const admin = new Client({ connectionString: PG_SERVER });
  try {
    await admin.connect();
  } catch {
    throw new Error(`PostgreSQL is not answering at ${new URL(PG_SERVER).host}; start it (or set BENCH_DATABASE_URL)`);
  }
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const dbUrl = new URL(PG_SERVER);
  dbUrl.pathname = `/${dbName}`;
  const prefix = `hl-bench-${randomBytes(3).toString('hex')}`;
  const token = `bench_${randomBytes(16).toString('hex')}`;
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    PLATFORM_TOKEN: token,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '100000000',
    ALLOW_PRIVATE_TARGETS: 'true',
    WORKER_CONCURRENCY: String(CONCURRENCY),
  };
  const receiver = await startBenchReceiver();
  const results: Record<string, string> = {};
  try {
    console.log(`bench: ${N} events, concurrency ${CONCURRENCY}; database ${dbName}, queue prefix ${prefix}`);
    const port = 3900 + Math.floor(Math.random() * 90);
    const api = spawnTsx('apps/api/src/main.ts', { ...env, PORT: String(port) }, 'api');
    children.push(api);
    await waitUntil(() => call(port, 'GET', '/healthz', undefined, '').then((r) => r.status === 200, () => false), 60_000, 'the API to start');
    console.log(`bench: API up on port ${port}`);

    const account = await call(port, 'POST', '/internal/v1/accounts', { name: 'Bench', plan: 'enterprise' }, token);
    const key = await call(port, 'POST', `/internal/v1/accounts/${account.body.account.id}/api-keys`, { mode: 'test' }, token);
    const webhook = await call(port, 'POST', '/v1/webhooks', { url: receiver.url, events: ['quota.warning'] }, key.body.api_key.key);
    if (webhook.status !== 201) throw new Error(`could not create the webhook: ${JSON.stringify(webhook.body)}`);
    const accountId = account.body.account.id as string;

    // 1. ingest with no worker
    let t0 = performance.now();
    const queued = await publish(port, token, accountId, N, 64, 'ingest');
    const ingestRate = N / ((performance.now() - t0) / 1000);
    progress('');
    results['ingest (API, events/s)'] = ingestRate.toFixed(0);

    // 2. drain: a worker delivers the backlog
    const worker = spawnTsx('apps/worker/src/main.ts', env, 'worker');
    children.push(worker);
    const firstArrival = await waitUntil(() => receiver.arrivals.size > 0, 60_000, 'the worker to start').then(() => Math.min(...receiver.arrivals.values()));
    const lastDrain = await waitDelivered(receiver, queued.keys(), N, 'drain', 600_000);
    const drainRate = N / ((lastDrain - firstArrival) / 1000);
    progress('');
    results['drain (worker, deliveries/s)'] = drainRate.toFixed(0);

    // 3. end to end, worker running
    t0 = performance.now();
    const e2e = await publish(port, token, accountId, N, 64, 'end-to-end');
    const lastE2e = await waitDelivered(receiver, e2e.keys(), N, 'end-to-end', 600_000);
    const e2eRate = N / ((lastE2e - t0) / 1000);
    progress('');
    results['end to end (published→delivered, deliveries/s)'] = e2eRate.toFixed(0);
    const e2eLat = latencies(e2e, receiver);
    results['end to end latency, sent→delivered p50/p95/p99 (ms, saturated)'] = [50, 95, 99].map((p) => percentile(e2eLat, p).toFixed(0)).join(' / ');

    // 4. paced latency
    const pacedIds = await paced(port, token, accountId, RATE, SECONDS);
    await waitDelivered(receiver, pacedIds.keys(), pacedIds.size, 'latency', 120_000);
    progress('');
    const lat = latencies(pacedIds, receiver);
    results[`latency at ${RATE} events/s, sent→delivered p50/p95/p99 (ms)`] = [50, 95, 99].map((p) => percentile(lat, p).toFixed(1)).join(' / ');
    results['duplicate callbacks'] = String(receiver.duplicates);

    for (const child of children) child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1000));

    // 5. ceiling
    console.log('bench: measuring the ceiling (bare BullMQ worker + got, no database)…');
    const ceilingChild = spawnTsx('scripts/bench/ceiling.ts', { REDIS_URL, BENCH_N: String(N), BENCH_PREFIX: `${prefix}-ceiling`, BENCH_RECEIVER_URL: receiver.url, BENCH_CONCURRENCY: String(CONCURRENCY) }, 'ceiling');
    children.push(ceilingChild);
    const ceilingOut = await new Promise<string>((resolve, reject) => {
      let out = '';
      ceilingChild.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      ceilingChild.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`ceiling run failed (${code})`))));
    });
    const ceiling = JSON.parse(ceilingOut.trim().split('\n').pop()!) as { rate: number };
    results['ceiling (bare BullMQ + got, deliveries/s)'] = ceiling.rate.toFixed(0);
    results['drain / ceiling'] = `${((drainRate / ceiling.rate) * 100).toFixed(0)}%`;
    results['end to end / ceiling'] = `${((e2eRate / ceiling.rate) * 100).toFixed(0)}%`;

    console.log('\nresults');
    for (const [name, value] of Object.entries(results)) console.log(`  ${name.padEnd(62)} ${value}`);
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await receiver.close();
    agent.destroy();
    const redis = createRedis(REDIS_URL, 'worker');
    for (const p of [prefix, `${prefix}-ceiling`]) {
      let cursor = '0';
      do {
        const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${p}:*`, 'COUNT', 1000);
        cursor = nextCursor;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
    }
    redis.disconnect();
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`\nbench: ${err.message}\n`);
    process.exit(1);
  },
);
