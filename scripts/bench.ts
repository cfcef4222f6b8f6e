// npm run bench — measures the delivery pipeline on this machine's PostgreSQL and Redis.
//
// The API and a worker run as separate processes (as in production) on a fresh
// database and queue prefix; this process publishes events through the platform API
// and hosts the receiving endpoints. Everything is removed at the end, also on Ctrl-C.
//
// Scenarios (--scenario):
//   throughput (default)  a fan-out: each event published goes to --hooks webhooks on one account.
//                         Ingest without and with an Idempotency-Key (and replays of ~1% of the
//                         keyed publishes), drain (with Redis commands and PostgreSQL statements
//                         or transactions per delivery), end to end, paced latency (at --rate, and
//                         at the target's share of the ceiling, with where it goes), and a bare
//                         BullMQ+got ceiling for as many deliveries (scripts/bench/throughput.ts).
//                         Options: --events N (20000) --hooks H (4) --idempotency on|off (on: a key on
//                         every publish) --rate R events/s for the paced phase (250, i.e. 1,000
//                         deliveries/s with 4 webhooks) --seconds S (20: measured, after 5 s at the
//                         same pace that are not) --concurrency C (200)
//                         --max-in-flight M (each webhook's max_in_flight; default: the service's)
//                         --workers W (1: worker processes for the drain and end to end)
//                         --redis server|cluster (server: BENCH_REDIS_URL or the machine's; cluster: a
//                         3-master Redis Cluster started for the run on loopback, 16 queue shards)
//   isolation             six webhooks on one account, four healthy; run (a) the other two
//                         answer at once, run (b) one never answers and one answers after 5 s;
//                         healthy deliveries/s and p99 of (b) against (a) (scripts/bench/isolation.ts).
//                         Options: --events N (2000) --limit S (180 s per run) --concurrency C (200)
//   tracing               CPU per delivery (API + worker, end to end) with OpenTelemetry tracing off,
//                         on at ratio 1.0 and on at 0.01, exporting to an OTLP/HTTP sink in this
//                         process (scripts/bench/tracing.ts).
//                         Options: --events N (2000) --hooks H (4) --rounds R (2) --concurrency C (200)
//                         --protocol http/protobuf|http/json (http/protobuf)
//   soak (or --soak)      a steady publish rate until --deliveries are delivered; every --interval
//                         the API's and the worker's RSS, Redis used_memory, the tables' sizes and
//                         the backlog; fails on growth (scripts/bench/soak.ts).
//                         Options: --deliveries D (1000000) --rate R events/s (250) --hooks H (4)
//                         --idempotency on|off (on) --interval S (10) --concurrency C (200)
//                         --max-in-flight M
//   storage               bytes per delivery in PostgreSQL (every table and index) after --events N
//                         (5000) events × --hooks H (4) are delivered, once per payload size of
//                         --payloads (50,4096 bytes of event data); then the time to remove a day
//                         of --day D deliveries (100000; 0 skips it) by the batched delete the
//                         retention sweeper used before partitions and by its partition drop, on
//                         two days filled alike (scripts/bench/storage.ts).
//                         Options: --events N --hooks H --payloads B,B… --day D --concurrency C (200)
//                         --compact on|off (on: the API and the worker run with COMPACT_HISTORY=true;
//                         off: rows as the versions before it wrote them)
import { runIsolation } from './bench/isolation';
import { runSoak } from './bench/soak';
import { benchRedis, useCluster } from './bench/redis';
import { runStorage } from './bench/storage';
import { runThroughput } from './bench/throughput';
import { runTracing } from './bench/tracing';
import { agent } from './bench/http';

const args = process.argv.slice(2);

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const VALUED = new Set(['scenario', 'events', 'rate', 'seconds', 'concurrency', 'limit', 'hooks', 'idempotency', 'max-in-flight', 'deliveries', 'interval', 'workers', 'redis', 'payloads', 'day', 'rounds', 'protocol', 'compact']);
const FLAGS = new Set(['soak']);
const given = new Map<string, string>();
for (let i = 0; i < args.length; i++) {
  const name = args[i].startsWith('--') ? args[i].slice(2) : '';
  if (FLAGS.has(name)) {
    given.set(name, 'true');
    continue;
  }
  if (!VALUED.has(name)) fail(`unknown option ${args[i]} (known: ${[...VALUED, ...FLAGS].map((k) => `--${k}`).join(' ')})`);
  if (i + 1 >= args.length || args[i + 1].startsWith('--')) fail(`${args[i]} needs a value`);
  given.set(name, args[++i]);
}

const option = (name: string, fallback: number) => {
  const value = given.has(name) ? Number(given.get(name)) : fallback;
  if (!Number.isFinite(value) || value <= 0) fail(`--${name} must be a positive number`);
  return value;
};
const whole = (name: string, fallback: number) => {
  const value = option(name, fallback);
  if (!Number.isInteger(value)) fail(`--${name} must be a whole number`);
  return value;
};
const onOff = (name: string, fallback: boolean) => {
  const value = given.get(name);
  if (value === undefined) return fallback;
  if (value !== 'on' && value !== 'off') fail(`--${name} must be on or off`);
  return value === 'on';
};
const maxInFlight = () => (given.has('max-in-flight') ? whole('max-in-flight', 1) : undefined);

const scenario = given.has('soak') ? 'soak' : (given.get('scenario') ?? 'throughput');
if (given.has('soak') && given.has('scenario') && given.get('scenario') !== 'soak') fail('--soak and --scenario name two scenarios');

async function main(): Promise<void> {
  if (scenario === 'isolation') {
    await runIsolation({ events: whole('events', 2_000), concurrency: option('concurrency', 200), limitSeconds: option('limit', 180) });
  } else if (scenario === 'throughput') {
    const redisAt = args.indexOf('--redis');
    const redisKind = redisAt >= 0 ? args[redisAt + 1] : 'server';
    if (redisKind !== 'server' && redisKind !== 'cluster') fail('--redis must be server or cluster');
    if (redisKind === 'cluster') await useCluster();
    try {
      await runThroughput({
        events: whole('events', 20_000),
        rate: option('rate', 250),
        seconds: option('seconds', 20),
        concurrency: whole('concurrency', 200),
        hooks: whole('hooks', 4),
        idempotency: onOff('idempotency', true),
        maxInFlight: maxInFlight(),
        workers: whole('workers', 1),
        redisLabel: benchRedis().label,
      });
    } finally {
      await benchRedis().stop();
    }
  } else if (scenario === 'tracing') {
    const protocol = given.get('protocol') ?? 'http/protobuf';
    if (protocol !== 'http/protobuf' && protocol !== 'http/json') fail('--protocol must be http/protobuf or http/json');
    await runTracing({ events: whole('events', 2_000), hooks: whole('hooks', 4), rounds: whole('rounds', 2), concurrency: whole('concurrency', 200), protocol });
  } else if (scenario === 'soak') {
    await runSoak({
      deliveries: whole('deliveries', 1_000_000),
      rate: option('rate', 250),
      hooks: whole('hooks', 4),
      idempotency: onOff('idempotency', true),
      intervalSeconds: option('interval', 10),
      concurrency: whole('concurrency', 200),
      maxInFlight: maxInFlight(),
    });
  } else if (scenario === 'storage') {
    const payloads = (given.get('payloads') ?? '50,4096').split(',').map(Number);
    if (payloads.some((n) => !Number.isInteger(n) || n < 0)) fail('--payloads must be whole numbers of bytes, separated by commas');
    const day = given.get('day') === '0' ? 0 : whole('day', 100_000);
    await runStorage({ events: whole('events', 5_000), hooks: whole('hooks', 4), payloads, day, concurrency: whole('concurrency', 200), compact: onOff('compact', true) });
  } else {
    fail(`unknown scenario "${scenario}" (throughput, isolation, soak, storage or tracing)`);
  }
}

main().then(
  () => {
    agent.destroy();
    process.exit(0);
  },
  (err: Error) => {
    process.stderr.write(`\nbench: ${err.message}\n`);
    process.exit(1);
  },
);
