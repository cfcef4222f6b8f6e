// npm run chaos — the chaos benchmark: what faults cost in lost and duplicated
// deliveries, latency and recovery (docs/reliability.md, "Chaos benchmark").
//
// Each scenario runs on fresh state: a Redis of its own (plain, with AOF, or a
// 3-master cluster with replicas), a fresh database on a private PostgreSQL this
// run starts with initdb + pg_ctl (so it may stop it), the API and two workers as
// production processes, and a loopback receiver that answers in ~50 ms and fails
// 5% of callbacks with a 500. Three webhooks take every event. Everything it
// started is stopped and every temp folder removed at the end, also on Ctrl-C.
//
// Options: --scenario NAME (default: every scenario, one after another) --list
//   --events N (4000) --rate R events/s (80) --hooks H (3) --workers W (2)
//   --retry-schedule S (500ms,1s,1s,2s,2s) --delivery-timeout D (3s)
//   --receiver-delay MS (50) --fail-share F (0.05) --drain S (180: the longest wait
//   for the last deliveries after publishing and the faults ended) --json FILE
import { writeFileSync } from 'node:fs';
import { agent } from './bench/http';
import { onInterrupt } from './bench/stack';
import { startPrivatePostgres } from './chaos/postgres';
import { runScenario, type ChaosSettings, type ScenarioResult } from './chaos/run';
import { SCENARIOS } from './chaos/scenarios';

const args = process.argv.slice(2);

function fail(message: string): never {
  process.stderr.write(`chaos: ${message}\n`);
  process.exit(2);
}

const VALUED = new Set(['scenario', 'events', 'rate', 'hooks', 'workers', 'retry-schedule', 'delivery-timeout', 'receiver-delay', 'fail-share', 'drain', 'json']);
const FLAGS = new Set(['list']);
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

const number = (name: string, fallback: number, { whole = false, zero = false } = {}) => {
  const value = given.has(name) ? Number(given.get(name)) : fallback;
  if (!Number.isFinite(value) || value < 0 || (!zero && value === 0)) fail(`--${name} must be a ${zero ? 'non-negative' : 'positive'} number`);
  if (whole && !Number.isInteger(value)) fail(`--${name} must be a whole number`);
  return value;
};

if (given.has('list')) {
  for (const s of SCENARIOS) console.log(`${s.name.padEnd(18)} ${s.description}`);
  process.exit(0);
}

const chosen = given.has('scenario') ? SCENARIOS.filter((s) => s.name === given.get('scenario')) : SCENARIOS;
if (!chosen.length) fail(`unknown scenario "${given.get('scenario')}" (--list lists them)`);

const settings: ChaosSettings = {
  events: number('events', 4_000, { whole: true }),
  rate: number('rate', 80),
  hooks: number('hooks', 3, { whole: true }),
  workers: number('workers', 2, { whole: true }),
  retrySchedule: given.get('retry-schedule') ?? '500ms,1s,1s,2s,2s',
  deliveryTimeout: given.get('delivery-timeout') ?? '3s',
  receiverDelayMs: number('receiver-delay', 50, { zero: true }),
  failShare: number('fail-share', 0.05, { zero: true }),
  drainSeconds: number('drain', 180),
};
if (settings.failShare >= 1) fail('--fail-share must be below 1');

const seconds = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : '–');

/** The summary table, one row per scenario (Markdown, so it pastes into docs/reliability.md). */
function summaryTable(results: ScenarioResult[]): string {
  const head = ['scenario', 'events accepted', 'refused attempts (events)', 'lost', 'duplicates', 'p50', 'p95', 'p99', 'recovery', 'worker error / warn lines', 'run'];
  const rows = results.map((r) => [
    r.scenario,
    `${r.accepted.toLocaleString('en-US')} / ${r.events.toLocaleString('en-US')}${r.neverAccepted ? ` (${r.neverAccepted} never)` : ''}`,
    `${r.refusedAttempts} (${r.refusedEvents})`,
    `${r.lost}${r.drainTimedOut ? ' (drain timed out)' : ''}`,
    `${r.duplicates.deliveries} (${(r.duplicates.share * 100).toFixed(2)}%)`,
    seconds(r.latencyMs.p50),
    seconds(r.latencyMs.p95),
    seconds(r.latencyMs.p99),
    r.faults.length ? (r.recoverySeconds === null ? 'not reached' : `${r.recoverySeconds} s`) : '–',
    `${r.workerLog.error.toLocaleString('en-US')} / ${r.workerLog.warn.toLocaleString('en-US')}${r.unplannedExits ? `, ${r.unplannedExits} exits` : ''}`,
    `${Math.round(r.wallSeconds)} s`,
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  console.log(
    `chaos: ${chosen.map((s) => s.name).join(', ')}; ${settings.events} events at ${settings.rate}/s × ${settings.hooks} webhooks, ${settings.workers} workers, ` +
      `RETRY_SCHEDULE=${settings.retrySchedule}, DELIVERY_TIMEOUT=${settings.deliveryTimeout}, receiver ${settings.receiverDelayMs} ms with ${settings.failShare * 100}% 500s`,
  );
  const pg = await startPrivatePostgres();
  const unregister = onInterrupt(() => pg.remove());
  console.log(`chaos: private PostgreSQL on port ${pg.port}`);
  const results: ScenarioResult[] = [];
  try {
    for (const scenario of chosen) {
      console.log(`\nchaos [${scenario.name}] ${scenario.description}`);
      try {
        const result = await runScenario(scenario, settings, pg);
        results.push(result);
        console.log(`chaos [${scenario.name}] result:\n${summaryTable([result])}`);
        const c = result.duplicateCauses;
        if (result.duplicates.deliveries) {
          console.log(
            `chaos [${scenario.name}] duplicates by cause: ${c.inFlightAtKill} in flight at a worker kill, ${c.answeredJustBeforeKill} answered ≤ 100 ms before one, ` +
              `${c.answeredBeforeKill} answered 0.1–2 s before one, ${c.nearOtherFault} near another fault, ${c.other} at no fault`,
          );
        }
        const messages = Object.entries(result.workerMessages).sort((a, b) => b[1] - a[1]);
        if (messages.length) console.log(`chaos [${scenario.name}] worker warn/error lines by message:\n${messages.map(([m, n]) => `  ${String(n).padStart(6)}  ${m}`).join('\n')}`);
      } catch (err) {
        console.error(`chaos [${scenario.name}] failed: ${(err as Error).stack ?? String(err)}`);
        // A scenario that left PostgreSQL stopped must not fail the next one.
        await pg.start().catch(() => undefined);
      }
      if (given.has('json')) writeFileSync(given.get('json')!, `${JSON.stringify({ settings, results }, null, 2)}\n`);
    }
  } finally {
    unregister();
    await pg.remove();
  }
  console.log(`\nchaos: summary (2 shared cores here: figures are noisy)\n${summaryTable(results)}`);
  if (results.length < chosen.length) throw new Error(`${chosen.length - results.length} scenario(s) failed`);
}

main().then(
  () => {
    agent.destroy();
    process.exit(0);
  },
  (err: Error) => {
    process.stderr.write(`\nchaos: ${err.message}\n`);
    process.exit(1);
  },
);
