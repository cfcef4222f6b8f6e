// The default scenario of `npm run bench`: throughput and latency of a fan-out.
// One account has --hooks H webhooks (default 4) subscribed to the event published,
// all on the bench receiver (webhook i at `/hooks/i`): each event is H deliveries,
// and every count and rate below called "deliveries" counts them.
//   0. warm-up:    a few hundred publishes, keyed and not, so the API's code is compiled
//   1. ingest:     N events without an Idempotency-Key and N with one, no worker
//                  running, in halves ordered off/on/on/off (API events/s each, and the ratio);
//                  then ~1% of the keyed publishes are replayed (same key and body)
//                  and must answer the same event with `Idempotent-Replayed: true`
//   2. drain:      the API stops, a worker starts and delivers the queued callbacks
//                  (deliveries/s); Redis commands and PostgreSQL statements (or
//                  transactions) counted around it, per delivery
//   3. end to end: API and worker up again; N more events published with the worker
//                  running (published→all delivered, deliveries/s)
//   4. latency:    events paced at --rate/s for SETTLE_SECONDS, not measured (the
//                  aftermath of phase 3's burst: the phase starts at once, a steady rate
//                  is what is measured), then --seconds more at the same pace: sent →
//                  callback received, and where it went (API, queue and worker,
//                  callback); the p99 with the settling seconds included is shown too; then again at
//                  the share of the first ceiling that 1,000 deliveries/s was when the
//                  p99 target was set (TARGET_SHARE)
//   5. ceiling:    a bare BullMQ worker doing the same signed got POSTs, no database,
//                  for as many deliveries as the end-to-end phase, run twice: before the
//                  drain and after phase 4; ratios are against the mean of the two
// With --idempotency on (the default) every publish of phases 3 and 4 carries a key.
import { performance } from 'node:perf_hooks';
import { call, publish, publishOne, eventBody, type KeyedPublish, type PublishOptions } from './http';
import { benchRedis } from './redis';
import { createStack, PG_SERVER, type Stack } from './stack';
import { diffCounts, pgCounter, redisCommandStats, sumCounts } from './counters';
import { cpuPerDelivery, readCpu } from './cpu';
import { latencyBreakdown } from './breakdown';
import { deliveryKey, percentile, progress, sentSince, sleep, startBenchReceiver, waitUntil, type Receiver } from './support';

export type ThroughputOptions = {
  /** Worker processes in the drain and the phases after it (each with `concurrency`). */
  workers: number;
  /** The Redis it runs on, for the header line. */
  redisLabel: string;
  events: number;
  rate: number;
  seconds: number;
  concurrency: number;
  hooks: number;
  idempotency: boolean;
  /** max_in_flight of each webhook; undefined leaves the service default (ENDPOINT_CONCURRENCY). */
  maxInFlight?: number;
};

const WARMUP_EVENTS = 100;
const INGEST_WARMUP_EVENTS = 250;
const REPLAY_EVERY = 100;
/**
 * The p99 target's load as a share of the ceiling when it was set: 1,000
 * deliveries/s beside a bare ceiling of about 3,750/s on this machine.
 */
const TARGET_SHARE = 1_000 / 3_750;
/** Seconds each paced phase runs at its rate before the seconds it measures. */
const SETTLE_SECONDS = 5;

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)}%`;

/** sent time per delivery key, for the H deliveries of each event. */
export function fanOut(accepted: Map<string, number>, hooks: number): Map<string, number> {
  const keys = new Map<string, number>();
  for (const [id, sentAt] of accepted) for (let h = 0; h < hooks; h++) keys.set(deliveryKey(id, h), sentAt);
  return keys;
}

async function paced(port: number, token: string, accountId: string, rate: number, seconds: number, firstSeq: number, opts: PublishOptions): Promise<Map<string, number>> {
  const accepted = new Map<string, number>();
  const total = Math.round(rate * seconds);
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const sentAt = performance.now();
    pending.push(publishOne(port, token, accountId, firstSeq + i, opts).then((id) => void accepted.set(id, sentAt)));
    if (i % Math.max(1, Math.round(rate)) === 0) progress(`latency: ${i}/${total} published at ${rate}/s`);
  }
  await Promise.all(pending);
  return accepted;
}

/**
 * Waits until every key has arrived; returns the last arrival time (the
 * receiver's own timestamps, so how often this looks does not change a rate).
 * It looks every 500 ms: each look scans the keys still missing, and this
 * process shares the machine's cores with the pipeline it measures.
 */
export async function waitDelivered(receiver: Receiver, keys: Iterable<string>, label: string, timeoutMs: number): Promise<number> {
  const all = [...keys];
  let remaining = all;
  const count = all.length;
  const started = performance.now();
  await waitUntil(
    () => {
      remaining = remaining.filter((key) => !receiver.arrivals.has(key));
      progress(`${label}: ${fmt(count - remaining.length)}/${fmt(count)} delivered (${Math.round((performance.now() - started) / 1000)} s)`);
      return remaining.length === 0;
    },
    timeoutMs,
    `${label} deliveries (${fmt(remaining.length)} of ${fmt(count)} missing)`,
    500,
  );
  let last = 0;
  for (const key of all) last = Math.max(last, receiver.arrivals.get(key)!);
  return last;
}

/** p50 latency of the deliveries sent in the first and in the last 5 s of a paced phase. */
function settling(sent: Map<string, number>, receiver: Receiver): string {
  const times = [...sent.values()];
  const first = Math.min(...times);
  const last = Math.max(...times);
  const p50 = (from: number, to: number) => {
    const lat = [...sent].filter(([, at]) => at >= from && at <= to).map(([key, at]) => receiver.arrivals.get(key)! - at).sort((a, b) => a - b);
    return percentile(lat, 50).toFixed(0);
  };
  return `${p50(first, first + 5_000)} / ${p50(last - 5_000, last)}`;
}

function latencies(sent: Map<string, number>, receiver: Receiver): number[] {
  return [...sent].map(([key, at]) => receiver.arrivals.get(key)! - at).sort((a, b) => a - b);
}

/** Re-sends every REPLAY_EVERY-th keyed publish with its key and body; counts answers that differ from the first (status, body, or no Idempotent-Replayed: true). */
async function replays(port: number, token: string, accountId: string, keyed: KeyedPublish[]): Promise<{ sent: number; mismatches: number; example: string }> {
  const sample = keyed.filter((_, i) => i % REPLAY_EVERY === 0);
  let mismatches = 0;
  let example = '';
  let next = 0;
  const lane = async () => {
    while (next < sample.length) {
      const { key, seq, eventId, answer } = sample[next++];
      const res = await call(port, 'POST', '/internal/v1/events', eventBody(accountId, seq), token, { 'idempotency-key': key });
      const replayed = res.headers['idempotent-replayed'] === 'true';
      const sameAnswer = res.status === 202 && res.body?.event?.id === eventId && JSON.stringify(res.body) === answer;
      if (!replayed || !sameAnswer) {
        mismatches++;
        example ||= `${res.status}, event ${res.body?.event?.id ?? '-'} (first answer ${eventId}), Idempotent-Replayed ${String(res.headers['idempotent-replayed'] ?? 'absent')}`;
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
  return { sent: sample.length, mismatches, example };
}

/** One account whose `hooks` webhooks (receiver paths `/hooks/0`, `/hooks/1`, …) all take quota.warning; returns its id. */
export async function createFanOut(stack: Stack, receiver: Receiver, opts: { hooks: number; maxInFlight?: number }): Promise<string> {
  const { port, token } = stack;
  const account = await call(port, 'POST', '/internal/v1/accounts', { name: 'Bench', plan: 'enterprise' }, token);
  if (account.status !== 201) throw new Error(`could not create the account: ${account.status} ${JSON.stringify(account.body)}`);
  const key = await call(port, 'POST', `/internal/v1/accounts/${account.body.account.id}/api-keys`, { mode: 'test' }, token);
  if (key.status !== 201) throw new Error(`could not create an API key: ${key.status} ${JSON.stringify(key.body)}`);
  for (let h = 0; h < opts.hooks; h++) {
    const body = { url: `${receiver.url}/${h}`, events: ['quota.warning'], ...(opts.maxInFlight ? { max_in_flight: opts.maxInFlight } : {}) };
    const webhook = await call(port, 'POST', '/v1/webhooks', body, key.body.api_key.key);
    if (webhook.status !== 201) throw new Error(`could not create webhook ${h}: ${webhook.status} ${JSON.stringify(webhook.body)}`);
  }
  return account.body.account.id as string;
}

/**
 * The ceiling: a bare BullMQ worker doing the same signed got POSTs with no
 * database (scripts/bench/ceiling.ts), for `n` deliveries to the receiver's
 * `/ceiling-${run}`; its deliveries/s.
 */
async function measureCeiling(stack: Stack, receiver: Receiver, n: number, concurrency: number, run: number): Promise<{ rate: number; cpuMsPerDelivery: number }> {
  console.log(`bench: measuring the ceiling, run ${run} of 2 (bare BullMQ worker + got, no database, ${fmt(n)} deliveries)…`);
  const child = stack.spawn(
    'scripts/bench/ceiling.ts',
    { ...benchRedis().env, BENCH_N: String(n), BENCH_PREFIX: `${stack.prefix}-ceiling-${run}`, BENCH_RECEIVER_URL: `${receiver.url}/ceiling-${run}`, BENCH_CONCURRENCY: String(concurrency) },
    'ceiling',
  );
  const out = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`ceiling run failed (${code})`))));
  });
  const { rate, cpuMs } = JSON.parse(out.trim().split('\n').pop()!) as { rate: number; cpuMs: number };
  return { rate, cpuMsPerDelivery: cpuMs / n };
}

/** `count` worker processes of the stack (every one serves the whole queue). */
const spawnWorkers = (stack: Stack, count: number) => Array.from({ length: count }, (_, i) => stack.spawn('apps/worker/src/main.ts', {}, count === 1 ? 'worker' : `worker ${i + 1}`));

export async function runThroughput(opts: ThroughputOptions): Promise<void> {
  const { events: N, rate: RATE, seconds: SECONDS, concurrency: CONCURRENCY, hooks: H } = opts;
  // A run with more webhooks than the default cap raises the cap for its account.
  const stack = await createStack({
    concurrency: CONCURRENCY, env: { MAX_WEBHOOKS_PER_ACCOUNT: String(Math.max(100, H)) }, reasons: { MAX_WEBHOOKS_PER_ACCOUNT: 'room for --hooks webhooks on one account' },
  });
  const receiver = await startBenchReceiver();
  const results: Record<string, string> = {};
  const keyedPhases: PublishOptions = { idempotency: opts.idempotency, deliveries: H };
  const setting = `${H} webhook${H === 1 ? '' : 's'} per event, Idempotency-Key ${opts.idempotency ? 'on every publish' : 'off'}`;
  try {
    console.log(
      `bench: ${fmt(N)} events × ${setting} (${fmt(N * H)} deliveries per phase); worker concurrency ${CONCURRENCY}, ` +
        `max_in_flight ${opts.maxInFlight ?? 'default'}, ${opts.workers} worker process${opts.workers === 1 ? '' : 'es'}, Redis: ${opts.redisLabel}; database ${stack.dbName}, queue prefix ${stack.prefix}`,
    );
    await stack.startApi();
    console.log(`bench: API up on port ${stack.port}`);
    const accountId = await createFanOut(stack, receiver, opts);
    const queuedKeys: string[] = [];
    const queue = (accepted: Map<string, number>) => {
      for (const key of fanOut(accepted, H).keys()) queuedKeys.push(key);
    };

    // 0. warm-up at the ingest's concurrency (not timed; delivered by the drain)
    let seq = 0;
    for (const idempotency of [false, true]) {
      queue(await publish(stack.port, stack.token, accountId, INGEST_WARMUP_EVENTS, 64, 'warm-up', { idempotency, deliveries: H, firstSeq: seq }));
      seq += INGEST_WARMUP_EVENTS;
    }

    // 1. ingest with no worker: unkeyed and keyed in halves, ordered off/on then
    //    on/off, so a drift (growing tables, a warming process) favours neither
    const ingestSeconds = { off: 0, on: 0 };
    const keyed: KeyedPublish[] = [];
    const halves = [Math.floor(N / 2), N - Math.floor(N / 2)];
    for (const [half, count] of halves.entries()) {
      for (const idempotency of half === 0 ? [false, true] : [true, false]) {
        const t0 = performance.now();
        queue(await publish(stack.port, stack.token, accountId, count, 64, `ingest (keys ${idempotency ? 'on' : 'off'})`, { idempotency, deliveries: H, keyed, firstSeq: seq }));
        ingestSeconds[idempotency ? 'on' : 'off'] += (performance.now() - t0) / 1000;
        seq += count;
      }
    }
    progress('');
    const ingestOff = N / ingestSeconds.off;
    const ingestOn = N / ingestSeconds.on;
    results['ingest without keys (API, events/s)'] = fmt(ingestOff);
    results['ingest with a key on every publish (API, events/s)'] = fmt(ingestOn);
    results['ingest with keys / without keys (target ≥ 90%)'] = pct(ingestOn, ingestOff);
    const replay = await replays(stack.port, stack.token, accountId, keyed);
    results['replays (same key and body): sent / mismatches (must be 0)'] = `${fmt(replay.sent)} / ${fmt(replay.mismatches)}`;
    if (replay.mismatches) console.log(`bench: a replay that did not match: ${replay.example}`);

    // The ceiling, first of two runs bracketing the pipeline's phases (the machine's
    // speed drifts by tens of percent within minutes: one run beside them is too noisy a reference)
    await stack.stopChild(stack.api!);
    const ceilingBefore = await measureCeiling(stack, receiver, N * H, CONCURRENCY, 1);

    // 2. drain: the worker alone delivers the backlog; count what it asks of Redis and PostgreSQL
    const pg = await pgCounter(PG_SERVER, stack.env.DATABASE_URL);
    try {
      await pg.quiesce();
      const background0 = await redisCommandStats();
      await sleep(2_000);
      const redisBefore = await redisCommandStats();
      const ownCommands = ['info', 'client|setname', 'client|setinfo', 'hello'];
      const background = diffCounts(background0, redisBefore);
      for (const own of ownCommands) background.delete(own);
      const backgroundRate = sumCounts(background) / 2;
      const pgBefore = await pg.read();

      // The receiver already holds the first ceiling run's arrivals: the drain starts at its own first one.
      const arrivedBefore = receiver.arrivals.size;
      const workers = spawnWorkers(stack, opts.workers);
      await waitUntil(() => receiver.arrivals.size > arrivedBefore, 60_000, 'the worker to start', 10);
      const workerPids = (): Array<[string, number | undefined]> => workers.map((w) => ['worker', w.pid]);
      const cpuDrain0 = readCpu(workerPids());
      const arrivedAtCpu0 = receiver.arrivals.size;
      const lastDrain = await waitDelivered(receiver, queuedKeys, 'drain', 900_000);
      const firstArrival = queuedKeys.reduce((first, key) => Math.min(first, receiver.arrivals.get(key)!), Infinity);
      const drainCpu = cpuPerDelivery(cpuDrain0, readCpu(workerPids()), receiver.arrivals.size - arrivedAtCpu0);
      const drainRate = queuedKeys.length / ((lastDrain - firstArrival) / 1000);
      const windowStart = performance.now();
      for (const worker of workers) await stack.stopChild(worker);
      await pg.quiesce();
      const redisAfter = await redisCommandStats();
      const pgAfter = await pg.read();
      progress('');
      results['drain (worker, deliveries/s)'] = fmt(drainRate);

      const delivered = queuedKeys.length;
      const redisDelta = diffCounts(redisBefore, redisAfter);
      for (const own of ownCommands) redisDelta.delete(own);
      const perDelivery = (n: number) => (n / delivered).toFixed(2);
      const scripts = (redisDelta.get('evalsha') ?? 0) + (redisDelta.get('eval') ?? 0);
      const top = [...redisDelta].filter(([name]) => name !== 'evalsha' && name !== 'eval').sort((a, b) => b[1] - a[1]).slice(0, 12);
      results['Redis commands executed per delivery (drain, incl. inside scripts)'] = perDelivery(sumCounts(redisDelta));
      results['  of which EVALSHA/EVAL (sent by clients; what they run is in the total)'] = perDelivery(scripts);
      results['  top commands per delivery'] = top.map(([name, n]) => `${name} ${perDelivery(n)}`).join(', ');
      const windowSeconds = (lastDrain - firstArrival + (performance.now() - windowStart)) / 1000;
      results['  other Redis clients (shared server), commands/s before the drain'] = `${fmt(backgroundRate)} (≈${perDelivery(backgroundRate * windowSeconds)} per delivery if it went on)`;
      results[`PostgreSQL ${pg.unit} per delivery (drain)`] = perDelivery(pgAfter.total - pgBefore.total);
      if (pg.unit === 'statements') {
        const stmts = [...pgAfter.top].map(([q, n]) => [q, n - (pgBefore.top.get(q) ?? 0)] as const).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).slice(0, 5);
        stmts.forEach(([q, n], i) => (results[`  statement ${i + 1}: ${q}`] = perDelivery(n)));
      }

      // 3. end to end, API and worker running (a short warm-up first: both just started)
      await stack.startApi();
      const e2eWorkers = spawnWorkers(stack, opts.workers);
      const e2ePids = (): Array<[string, number | undefined]> => [['API', stack.api?.pid], ...e2eWorkers.map((w): [string, number | undefined] => ['worker', w.pid])];
      const warm = await publish(stack.port, stack.token, accountId, WARMUP_EVENTS, 16, 'warm-up', { ...keyedPhases, firstSeq: seq });
      seq += WARMUP_EVENTS;
      await waitDelivered(receiver, fanOut(warm, H).keys(), 'warm-up', 120_000);
      const t0 = performance.now();
      const cpuE2e0 = readCpu(e2ePids());
      const e2e = fanOut(await publish(stack.port, stack.token, accountId, N, 64, 'end-to-end', { ...keyedPhases, firstSeq: seq }), H);
      seq += N;
      const lastE2e = await waitDelivered(receiver, e2e.keys(), 'end-to-end', 900_000);
      const e2eCpu = cpuPerDelivery(cpuE2e0, readCpu(e2ePids()), e2e.size);
      const e2eRate = e2e.size / ((lastE2e - t0) / 1000);
      progress('');
      results['end to end (published→delivered, deliveries/s)'] = fmt(e2eRate);
      const e2eLat = latencies(e2e, receiver);
      results['end to end latency, sent→delivered p50/p95/p99 (ms, saturated)'] = [50, 95, 99].map((p) => percentile(e2eLat, p).toFixed(0)).join(' / ');

      // 4. paced latency: at --rate, and at the share of the ceiling that rate was
      //    when the target was set (a slower machine's ceiling makes 1,000/s a heavier load)
      const pacedPhase = async (rate: number, firstSeq: number, label: string, tag: string) => {
        const began = performance.now();
        const all = fanOut(await paced(stack.port, stack.token, accountId, rate, SETTLE_SECONDS + SECONDS, firstSeq, keyedPhases), H);
        await waitDelivered(receiver, all.keys(), 'latency', 300_000);
        progress('');
        const keys = sentSince(all, began + SETTLE_SECONDS * 1000);
        const lat = latencies(keys, receiver);
        results[`${label}, sent→delivered p50/p95/p99 (ms)`] = [50, 95, 99].map((p) => percentile(lat, p).toFixed(1)).join(' / ');
        const at = `at ${fmt(rate * H)}/s${tag}`;
        results[`  ${at}: p99 with the first ${SETTLE_SECONDS} s included (not measured: the phase settling)`] = `${percentile(latencies(all, receiver), 99).toFixed(1)} ms`;
        results[`  ${at}: p50 of the first / last 5 s (ms; rising = more than the machine sustains)`] = settling(keys, receiver);
        results[`  ${at}: where it goes, p50 / p99 (ms)`] = await latencyBreakdown(stack.env.DATABASE_URL, keys, receiver);
        return { keys: all, p99: percentile(lat, 99) };
      };
      const pacedKeys = new Map<string, number>();
      const absolute = await pacedPhase(RATE, 10_000_000, `latency at ${fmt(RATE)} events/s × ${H} = ${fmt(RATE * H)} deliveries/s`, '');
      results[`p99 sent→delivered at ${fmt(RATE * H)} deliveries/s (target ≤ 100 ms)`] = `${absolute.p99.toFixed(1)} ms`;
      const relativeRate = Math.max(1, Math.round((TARGET_SHARE * ceilingBefore.rate) / H));
      const relative = await pacedPhase(relativeRate, 20_000_000, `latency at ${fmt(relativeRate)} events/s × ${H} = ${pct(relativeRate * H, ceilingBefore.rate)} of the first ceiling`, ' (target\'s share)');
      results[`p99 sent→delivered at ${pct(TARGET_SHARE, 1)} of the ceiling (the target's load when it was set)`] = `${relative.p99.toFixed(1)} ms`;
      for (const phase of [absolute, relative]) for (const [key, at] of phase.keys) pacedKeys.set(key, at);
      results['duplicate callbacks'] = String(receiver.duplicates);
      const ceilingCallbacks = receiver.perHook.get('ceiling-1') ?? 0;
      results['callbacks received / expected'] = `${fmt(receiver.total - ceilingCallbacks)} / ${fmt(queuedKeys.length + warm.size * H + e2e.size + pacedKeys.size)}`;

      await stack.stopChildren(1_000);

      // 5. the ceiling again, after the pipeline's phases; the reference is the mean of both runs
      const ceilingAfter = await measureCeiling(stack, receiver, N * H, CONCURRENCY, 2);
      const ceiling = (ceilingBefore.rate + ceilingAfter.rate) / 2;
      results['ceiling before the drain / after the latency phase (deliveries/s)'] = `${fmt(ceilingBefore.rate)} / ${fmt(ceilingAfter.rate)}`;
      results['ceiling: their mean, the reference (bare BullMQ + got, deliveries/s)'] = fmt(ceiling);
      results['drain / ceiling'] = pct(drainRate, ceiling);
      results['end to end / ceiling (target ≥ 65%)'] = pct(e2eRate, ceiling);
      // CPU time per delivery moves far less than a rate when the machine's speed drifts.
      if (drainCpu.text) {
        const ceilingCpu = (ceilingBefore.cpuMsPerDelivery + ceilingAfter.cpuMsPerDelivery) / 2;
        results['CPU ms per delivery, drain (all threads of each process)'] = drainCpu.text;
        results['CPU ms per delivery, end to end'] = e2eCpu.text;
        results['CPU ms per delivery, the ceiling process (mean of its two runs)'] = ceilingCpu.toFixed(2);
        results['ceiling process / worker process, CPU per delivery (drain)'] = pct(ceilingCpu, drainCpu.of('worker'));
      }
    } finally {
      await pg.close();
    }

    console.log(`\nresults (${setting}; ${fmt(N)} events = ${fmt(N * H)} deliveries per phase)`);
    const width = Math.max(...Object.keys(results).map((k) => k.length)) + 2;
    for (const [name, value] of Object.entries(results)) console.log(`  ${name.padEnd(width)} ${value}`);
  } finally {
    await stack.close();
    await receiver.close();
  }
}
