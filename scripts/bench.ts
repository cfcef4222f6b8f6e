// npm run bench — measures the delivery pipeline on this machine's PostgreSQL and Redis.
//
// The API and a worker run as separate processes (as in production) on a fresh
// database and queue prefix; this process publishes events through the platform API
// and hosts the receiving endpoints. Everything is removed at the end, also on Ctrl-C.
//
// Scenarios (--scenario):
//   throughput (default)  ingest, drain, end to end, paced latency and a bare BullMQ+got
//                         ceiling for one webhook (scripts/bench/throughput.ts).
//                         Options: --events N (20000) --rate R (500) --seconds S (20) --concurrency C (200)
//   isolation             six webhooks on one account, four healthy; run (a) the other two
//                         answer at once, run (b) one never answers and one answers after 5 s;
//                         healthy deliveries/s and p99 of (b) against (a) (scripts/bench/isolation.ts).
//                         Options: --events N (2000) --limit S (180 s per run) --concurrency C (200)
import { runIsolation } from './bench/isolation';
import { runThroughput } from './bench/throughput';
import { agent } from './bench/http';

const args = process.argv.slice(2);

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const KNOWN = new Set(['scenario', 'events', 'rate', 'seconds', 'concurrency', 'limit']);
for (let i = 0; i < args.length; i += 2) {
  const name = args[i].startsWith('--') ? args[i].slice(2) : '';
  if (!KNOWN.has(name)) fail(`unknown option ${args[i]} (known: ${[...KNOWN].map((k) => `--${k}`).join(' ')})`);
  if (i + 1 >= args.length) fail(`${args[i]} needs a value`);
}

const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) fail(`--${name} must be a positive number`);
  return value;
};

const scenarioAt = args.indexOf('--scenario');
const scenario = scenarioAt >= 0 ? args[scenarioAt + 1] : 'throughput';

async function main(): Promise<void> {
  if (scenario === 'isolation') {
    const events = option('events', 2_000);
    if (!Number.isInteger(events)) fail('--events must be a whole number');
    await runIsolation({ events, concurrency: option('concurrency', 200), limitSeconds: option('limit', 180) });
  } else if (scenario === 'throughput') {
    await runThroughput({ events: option('events', 20_000), rate: option('rate', 500), seconds: option('seconds', 20), concurrency: option('concurrency', 200) });
  } else {
    fail(`unknown scenario "${scenario}" (throughput or isolation)`);
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
