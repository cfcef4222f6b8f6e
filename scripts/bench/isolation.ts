// `npm run bench -- --scenario isolation`: does a slow or dead endpoint slow the others?
//
// One account, six webhooks subscribed to quota.warning: four healthy receivers that
// answer 200 at once, and two more endpoints. Two runs, each on a fresh database,
// queue prefix, API, ONE worker and fresh receivers, publishing the same events:
//   (a) the two extra endpoints also answer 200 at once;
//   (b) one extra endpoint accepts the connection and never answers, the other answers after 5 s.
// For the four healthy webhooks only: deliveries/s from the first publish to the last
// healthy callback, and sent→delivered p50/p95/p99. Targets: (b)/(a) deliveries/s ≥ 0.90,
// p99 (b)/(a) ≤ 2.0. Production defaults (DELIVERY_TIMEOUT 10s, ENDPOINT_CONCURRENCY,
// circuit breaker, retry schedule) except WORKER_CONCURRENCY and ALLOW_PRIVATE_TARGETS.
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { call, publish } from './http';
import { createStack } from './stack';
import { percentile, progress, startBenchReceiver, startSilentReceiver, startSlowReceiver, type Receiver } from './support';

export type IsolationOptions = { events: number; concurrency: number; limitSeconds: number };

const HEALTHY = 4;
const SLOW_MS = 5_000;
const PROGRESS_EVERY_MS = 3_000;
const WARMUP_EVENTS = 20;

// Worker settings the bench leaves at their production defaults even if this shell
// sets them (an empty variable counts as unset).
const PRODUCTION_DEFAULTS: Record<string, string> = {
  DELIVERY_TIMEOUT: '',
  ENDPOINT_CONCURRENCY: '',
  CIRCUIT_BREAKER_THRESHOLD: '',
  CIRCUIT_BREAKER_COOLDOWN: '',
  RETRY_SCHEDULE: '',
  RETRY_JITTER: '',
  AUTO_DISABLE_AFTER: '',
  RELAY_GRACE: '',
  WORKER_LOCK_DURATION: '',
  WORKER_STALLED_INTERVAL: '',
  WORKER_HEALTH_PORT: '',
  DELIVERY_QUEUE_SHARDS: '',
  REDIS_CLUSTER_NODES: '',
};

type Kind = 'a' | 'b';
type Figure = { ms: number; lowerBound: boolean };
type RunResult = {
  kind: Kind;
  title: string;
  expected: number;
  arrived: number;
  complete: boolean;
  /** first publish → last healthy callback (complete) or → the time limit (incomplete) */
  seconds: number;
  rate: number;
  p50: Figure;
  p95: Figure;
  p99: Figure;
  publishSeconds: number;
  duplicates: number;
  others: string;
  /** 1-minute load average of the machine at the start and the end of the measured window */
  load: [number, number];
};

const TITLES: Record<Kind, string> = {
  a: 'run (a): all six endpoints answer 200 at once',
  b: 'run (b): one endpoint never answers, one answers after 5 s',
};

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (f: Figure) => `${f.lowerBound ? '>' : ''}${fmt(f.ms)}`;

/**
 * Percentiles of sent→delivered over every expected healthy callback. A callback that
 * did not arrive within the limit counts with a lower bound (limit end − sent); a
 * percentile that lands on or above such a callback is itself only a lower bound.
 */
function latencyFigures(accepted: Map<string, number>, healthy: Receiver[], endAt: number): { p50: Figure; p95: Figure; p99: Figure } {
  const all: { ms: number; missing: boolean }[] = [];
  for (const receiver of healthy) {
    for (const [id, sentAt] of accepted) {
      const arrival = receiver.arrivals.get(id);
      all.push(arrival === undefined ? { ms: endAt - sentAt, missing: true } : { ms: arrival - sentAt, missing: false });
    }
  }
  all.sort((x, y) => x.ms - y.ms);
  const firstMissing = all.findIndex((x) => x.missing);
  const at = (p: number): Figure => {
    const value = percentile(all.map((x) => x.ms), p);
    const index = Math.min(all.length - 1, Math.max(0, Math.ceil((p / 100) * all.length) - 1));
    return { ms: value, lowerBound: firstMissing >= 0 && index >= firstMissing };
  };
  return { p50: at(50), p95: at(95), p99: at(99) };
}

async function run(kind: Kind, opts: IsolationOptions): Promise<RunResult> {
  const healthy: Receiver[] = [];
  const closers: (() => Promise<void>)[] = [];
  let stack: Awaited<ReturnType<typeof createStack>> | null = null;
  try {
    for (let i = 0; i < HEALTHY; i++) {
      const r = await startBenchReceiver();
      healthy.push(r);
      closers.push(() => r.close());
    }
    const warm = await startBenchReceiver();
    closers.push(() => warm.close());
    let extraUrls: string[];
    let others: () => string;
    if (kind === 'a') {
      const x = await startBenchReceiver();
      const y = await startBenchReceiver();
      closers.push(() => x.close(), () => y.close());
      extraUrls = [x.url, y.url];
      others = () => `extra endpoints: ${fmt(x.arrivals.size)} and ${fmt(y.arrivals.size)} callbacks`;
    } else {
      const silent = await startSilentReceiver();
      const slow = await startSlowReceiver(SLOW_MS);
      closers.push(() => silent.close(), () => slow.close());
      extraUrls = [silent.url, slow.url];
      others = () => `silent endpoint: ${fmt(silent.connections)} connections; 5 s endpoint: ${fmt(slow.received)} received, ${fmt(slow.answered)} answered`;
    }

    stack = await createStack({ concurrency: opts.concurrency, env: PRODUCTION_DEFAULTS });
    console.log(`\n${TITLES[kind]}\n  database ${stack.dbName}, queue prefix ${stack.prefix}`);
    await stack.startApi();
    stack.spawn('apps/worker/src/main.ts', {}, 'worker');
    const { port, token } = stack;

    const makeAccount = async (name: string) => {
      const account = await call(port, 'POST', '/internal/v1/accounts', { name, plan: 'enterprise' }, token);
      if (account.status !== 201) throw new Error(`could not create an account: ${account.status} ${JSON.stringify(account.body)}`);
      const key = await call(port, 'POST', `/internal/v1/accounts/${account.body.account.id}/api-keys`, { mode: 'test' }, token);
      if (key.status !== 201) throw new Error(`could not create an API key: ${key.status} ${JSON.stringify(key.body)}`);
      return { id: account.body.account.id as string, key: key.body.api_key.key as string };
    };
    const addWebhook = async (apiKey: string, url: string) => {
      const webhook = await call(port, 'POST', '/v1/webhooks', { url, events: ['quota.warning'] }, apiKey);
      if (webhook.status !== 201) throw new Error(`could not create a webhook: ${webhook.status} ${JSON.stringify(webhook.body)}`);
    };
    const bench = await makeAccount('Bench isolation');
    for (const r of healthy) await addWebhook(bench.key, r.url);
    for (const url of extraUrls) await addWebhook(bench.key, url);

    // Warm-up on a separate account: proves the worker is consuming before the clock starts.
    const warmAccount = await makeAccount('Bench warm-up');
    await addWebhook(warmAccount.key, warm.url);
    await publish(port, token, warmAccount.id, WARMUP_EVENTS, 4, `(${kind}) warm-up`);
    const warmDeadline = Date.now() + 60_000;
    while (warm.arrivals.size < WARMUP_EVENTS) {
      if (Date.now() > warmDeadline) throw new Error('the worker delivered no warm-up callbacks within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    progress('');

    const expected = opts.events * HEALTHY;
    const arrived = () => healthy.reduce((n, r) => n + r.arrivals.size, 0);
    const loadAtStart = loadavg()[0];
    const clockStart = performance.now();
    const deadline = clockStart + opts.limitSeconds * 1000;
    let lastLine = 0;
    const line = () => {
      const now = performance.now();
      lastLine = now;
      const got = arrived();
      const elapsed = (now - clockStart) / 1000;
      progress(`(${kind}) ${elapsed.toFixed(0)} s: healthy ${fmt(got)}/${fmt(expected)} delivered (${fmt(got / Math.max(elapsed, 0.001))}/s); ${others()}`);
    };
    const ticker = setInterval(line, PROGRESS_EVERY_MS);
    let accepted: Map<string, number>;
    try {
      accepted = await publish(port, token, bench.id, opts.events, 64, `(${kind}) publish`);
      const publishedAt = performance.now();
      while (arrived() < expected && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      clearInterval(ticker);
      if (performance.now() - lastLine > 500) line();
      progress('');
      const firstSent = Math.min(...accepted.values());
      const got = arrived();
      const complete = got >= expected;
      const lastArrival = Math.max(...healthy.flatMap((r) => [...r.arrivals.values()]));
      const endAt = complete ? lastArrival : firstSent + opts.limitSeconds * 1000;
      const seconds = (endAt - firstSent) / 1000;
      return {
        kind,
        title: TITLES[kind],
        expected,
        arrived: got,
        complete,
        seconds,
        rate: got / seconds,
        ...latencyFigures(accepted, healthy, endAt),
        publishSeconds: (publishedAt - firstSent) / 1000,
        duplicates: healthy.reduce((n, r) => n + r.duplicates, 0),
        others: others(),
        load: [loadAtStart, loadavg()[0]],
      };
    } finally {
      clearInterval(ticker);
    }
  } finally {
    await stack?.close();
    for (const close of closers) await close().catch(() => undefined);
  }
}

function printRun(r: RunResult, limitSeconds: number): void {
  const mark = r.complete ? '' : `   INCOMPLETE: ${fmt(r.expected - r.arrived)} healthy callbacks missing after the ${limitSeconds} s limit`;
  console.log(r.title);
  console.log(`  healthy callbacks arrived               ${fmt(r.arrived)}/${fmt(r.expected)}${mark}`);
  console.log(`  healthy deliveries/s                    ${fmt(r.rate)}${r.complete ? '' : ' (INCOMPLETE: arrived / limit)'}  (${r.seconds.toFixed(1)} s from first publish to ${r.complete ? 'last healthy callback' : 'the limit'})`);
  console.log(`  healthy sent→delivered p50/p95/p99 (ms) ${ms(r.p50)} / ${ms(r.p95)} / ${ms(r.p99)}${r.complete ? '' : '  (> = lower bound, callbacks missing)'}`);
  console.log(`  publish (events accepted)               ${r.publishSeconds.toFixed(1)} s; duplicate healthy callbacks ${r.duplicates}`);
  console.log(`  ${r.others}`);
  console.log(`  machine load average (1 min) at start / end  ${r.load[0].toFixed(1)} / ${r.load[1].toFixed(1)} on ${cpus().length} cores`);
}

export async function runIsolation(opts: IsolationOptions): Promise<void> {
  console.log(
    `isolation: ${fmt(opts.events)} events × 6 webhooks (${HEALTHY} healthy → ${fmt(opts.events * HEALTHY)} healthy callbacks per run); ` +
      `one worker, WORKER_CONCURRENCY ${opts.concurrency}, DELIVERY_TIMEOUT and the rest at production defaults; limit ${opts.limitSeconds} s per run`,
  );
  const a = await run('a', opts);
  const b = await run('b', opts);

  const rateRatio = b.rate / a.rate;
  const p99Ratio = b.p99.ms / a.p99.ms;
  const ratePass = a.complete && b.complete && rateRatio >= 0.9;
  const p99Pass = a.complete && b.complete && p99Ratio <= 2.0;
  const verdict = (pass: boolean) => (pass ? 'PASS' : a.complete && b.complete ? 'MISS' : 'MISS (incomplete run)');

  console.log('\nresults (healthy webhooks only)');
  printRun(a, opts.limitSeconds);
  printRun(b, opts.limitSeconds);
  console.log('ratios (b)/(a)');
  console.log(`  healthy deliveries/s  ${rateRatio.toFixed(2)}   target >= 0.90   ${verdict(ratePass)}`);
  console.log(`  p99 latency           ${b.p99.lowerBound ? '>' : ''}${p99Ratio.toFixed(2)}   target <= 2.0    ${verdict(p99Pass)}`);
}
