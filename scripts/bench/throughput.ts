// The default scenario of `npm run bench`: throughput and latency of one webhook.
//   1. ingest:     N events published as fast as possible, no worker running (API events/s)
//   2. drain:      a worker starts and delivers the N queued callbacks (deliveries/s)
//   3. end to end: N more events published with the worker running (published→all delivered)
//   4. latency:    events paced at --rate/s for --seconds; accepted (202) → callback received
//   5. ceiling:    a bare BullMQ worker doing the same signed got POSTs, no database
import { performance } from 'node:perf_hooks';
import { call, publish } from './http';
import { createStack, REDIS_URL } from './stack';
import { percentile, progress, startBenchReceiver, waitUntil, type Receiver } from './support';

export type ThroughputOptions = { events: number; rate: number; seconds: number; concurrency: number };

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

export async function runThroughput(opts: ThroughputOptions): Promise<void> {
  const { events: N, rate: RATE, seconds: SECONDS, concurrency: CONCURRENCY } = opts;
  const stack = await createStack({ concurrency: CONCURRENCY });
  const receiver = await startBenchReceiver();
  const results: Record<string, string> = {};
  try {
    console.log(`bench: ${N} events, concurrency ${CONCURRENCY}; database ${stack.dbName}, queue prefix ${stack.prefix}`);
    await stack.startApi();
    const { port, token } = stack;
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
    stack.spawn('apps/worker/src/main.ts', {}, 'worker');
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

    await stack.stopChildren(1_000);

    // 5. ceiling
    console.log('bench: measuring the ceiling (bare BullMQ worker + got, no database)…');
    const ceilingChild = stack.spawn('scripts/bench/ceiling.ts', { REDIS_URL, BENCH_N: String(N), BENCH_PREFIX: `${stack.prefix}-ceiling`, BENCH_RECEIVER_URL: receiver.url, BENCH_CONCURRENCY: String(CONCURRENCY) }, 'ceiling');
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
    await stack.close();
    await receiver.close();
  }
}
