import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { freePort } from '../../tests/support/local-services';
import { startRedisCluster, startSingleRedis, type RedisCluster, type SingleRedis } from '../../tests/support/redis-topology';
import { call, eventBody } from '../bench/http';
import { createStack, onInterrupt, type Stack } from '../bench/stack';
import { deliveryKey, progress, sleep, startBenchReceiver, waitUntil, type Receiver } from '../bench/support';
import { createFanOut } from '../bench/throughput';
import { countLogLevels, duplicateCauses, duplicatesOf, latencyByAcceptance, latencyOf, lineSplitter, lostKeys, recoverySeconds, type DuplicateCauses, type Duplicates, type Latency } from './measure';
import type { PrivatePostgres } from './postgres';

// One chaos scenario on fresh state: a Redis of its own (plain, with AOF, or a
// cluster), a fresh database on the benchmark's private PostgreSQL, the API and
// two workers as production processes, the receiver; events published at a
// steady rate while the scenario's faults run; then a bounded wait for the
// deliveries, and the figures.

export type ChaosSettings = {
  events: number;
  /** Events per second (first attempts; refused ones are retried besides). */
  rate: number;
  hooks: number;
  workers: number;
  retrySchedule: string;
  deliveryTimeout: string;
  /** The receiver's answer time and its share of 500s. */
  receiverDelayMs: number;
  failShare: number;
  /** How long to wait for the last deliveries after publishing and the faults ended. */
  drainSeconds: number;
};

export type Scenario = {
  name: string;
  description: string;
  redis: 'plain' | 'aof' | 'cluster';
  /** Factors on the run's events and rate (the combined scenario publishes more, faster). */
  scale?: { events: number; rate: number };
  /** The faults, run beside the publisher; each one through ctx.fault(). */
  plan(ctx: ChaosContext): Promise<void>;
};

export type ChaosContext = {
  /** Waits until `seconds` after publishing began. */
  at(seconds: number): Promise<void>;
  /** True until the first attempt of every event has been sent. */
  publishing(): boolean;
  /** Runs one fault and records when it began and ended (what recovery is measured from). */
  fault(label: string, fn: () => Promise<void>): Promise<void>;
  killWorker(index: number): Promise<void>;
  startWorker(index: number): void;
  /** A rolling restart of one worker: a new one started and ready, then the old one SIGTERMed (it finishes its in-flight work). */
  rollWorker(index: number): Promise<void>;
  workers: number;
  redis: SingleRedis | null;
  cluster: RedisCluster | null;
  pg: PrivatePostgres;
};

export type ScenarioResult = {
  scenario: string;
  events: number;
  rate: number;
  /** Events answered 202 (each once, however many attempts it took). */
  accepted: number;
  /** Publish attempts refused (not 202) or failed, and the events they concerned. */
  refusedAttempts: number;
  refusedEvents: number;
  refusedStatuses: Record<string, number>;
  /** Events never accepted within the publisher's patience. */
  neverAccepted: number;
  deliveries: number;
  lost: number;
  duplicates: Duplicates;
  /** The duplicates by likely cause (measure.ts, duplicateCauses). */
  duplicateCauses: DuplicateCauses;
  latencyMs: Latency;
  /** Seconds from the end of the last fault to 90% of the offered delivery rate; null: not reached (or no fault). */
  recoverySeconds: number | null;
  faults: Array<{ label: string; startSeconds: number; endSeconds: number }>;
  /** Each duplicated delivery: accepted at, and its copies as [received, answered, sender port] (seconds since publishing began). */
  duplicateTimeline: Array<{ key: string; acceptedAt: number; copies: Array<[number, number, number]> }>;
  workerLines: Array<[number, string]>;
  /** Latency (ms) of the deliveries accepted in each 5 s of the run: where its tail comes from. */
  latencyByAcceptance: ReturnType<typeof latencyByAcceptance>;
  /** The deliveries that never arrived (the first 20): their rows and attempts in PostgreSQL. */
  lostDetail: unknown[];
  /** When each worker SIGKILL landed (seconds since publishing began). */
  kills: number[];
  workerLog: { error: number; warn: number };
  /** Each distinct warn or error message the workers wrote, with how many times ("level: message"). */
  workerMessages: Record<string, number>;
  /** Worker and API exits nobody asked for (each restarted 1 s later, as a supervisor would). */
  unplannedExits: number;
  /** Receipts the receiver answered 500 on purpose, and all receipts. */
  receiver: { received: number; failed: number };
  drainTimedOut: boolean;
  wallSeconds: number;
};

/** How long a publisher keeps retrying one refused event before it gives up. */
const PUBLISH_PATIENCE_MS = 180_000;

type Slot = { child: ChildProcess | null; port: number; stopping: boolean };

export async function runScenario(scenario: Scenario, base: ChaosSettings, pg: PrivatePostgres): Promise<ScenarioResult> {
  const scale = scenario.scale ?? { events: 1, rate: 1 };
  const settings = { ...base, events: Math.round(base.events * scale.events), rate: base.rate * scale.rate };
  const began = performance.now();
  const say = (line: string) => {
    progress('');
    console.log(`chaos [${scenario.name}] ${line}`);
  };
  const cleanups: Array<() => Promise<void>> = [];
  let finished = false;
  const cleanup = async () => {
    // First: the supervisor must not restart what the cleanup stops.
    finished = true;
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((err: Error) => console.error(`chaos: cleanup failed: ${err.message}`));
  };
  const unregister = onInterrupt(cleanup);
  try {
    // Redis of the scenario's own
    let redis: SingleRedis | null = null;
    let cluster: RedisCluster | null = null;
    let redisEnv: Record<string, string>;
    if (scenario.redis === 'cluster') {
      cluster = await startRedisCluster({ masters: 3, replicas: 1 });
      cleanups.push(() => cluster!.stop());
      redisEnv = { REDIS_CLUSTER_NODES: cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(',') };
    } else {
      redis = await startSingleRedis({ appendonly: scenario.redis === 'aof' });
      cleanups.push(() => redis!.stop());
      redisEnv = { REDIS_URL: redis.url };
    }

    const stack: Stack = await createStack({
      concurrency: 200,
      pgServer: pg.url,
      ownRedis: redisEnv,
      env: { RETRY_SCHEDULE: settings.retrySchedule, DELIVERY_TIMEOUT: settings.deliveryTimeout, LOG_LEVEL: 'warn' },
      reasons: { RETRY_SCHEDULE: 'the chaos load (--retry-schedule)', DELIVERY_TIMEOUT: 'the chaos load (--delivery-timeout)', LOG_LEVEL: 'the warn and error lines are what is counted' },
    });
    cleanups.push(() => stack.close());
    const receiver: Receiver = await startBenchReceiver({ delayMs: settings.receiverDelayMs, failShare: settings.failShare });
    cleanups.push(() => receiver.close());
    await stack.startApi();
    const accountId = await createFanOut(stack, receiver, { hooks: settings.hooks });
    say(`ready: database ${stack.dbName} on port ${pg.port}, Redis ${redisEnv.REDIS_URL ?? `cluster ${redisEnv.REDIS_CLUSTER_NODES}`}, ${settings.workers} workers`);

    // Processes: a supervisor restarts whatever exits on its own after 1 s, and counts it.
    let unplannedExits = 0;
    const workerLog = { error: 0, warn: 0 };
    const workerMessages: Record<string, number> = {};
    const workerLines: Array<[number, string]> = [];
    const slots: Slot[] = Array.from({ length: settings.workers }, () => ({ child: null, port: 0, stopping: false }));
    const countLine = (line: string) => {
      const c = countLogLevels([line]);
      workerLog.error += c.error;
      workerLog.warn += c.warn;
      if (c.error + c.warn === 0) return;
      const message = /"message":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1] ?? line.slice(0, 120);
      const key = `${c.error ? 'error' : 'warn'}: ${message}`;
      workerMessages[key] = (workerMessages[key] ?? 0) + 1;
      if (workerLines.length < 2_000) workerLines.push([+((performance.now() - began) / 1000).toFixed(3), key]);
    };
    const spawnWorker = async (index: number): Promise<Slot> => {
      const slot = slots[index];
      slot.port = await freePort();
      const child = stack.spawn('apps/worker/src/main.ts', { WORKER_HEALTH_PORT: String(slot.port) }, `worker ${index + 1}`);
      slot.child = child;
      slot.stopping = false;
      // One splitter per stream: a line cut between two chunks must not be joined to another process's.
      child.stdout?.on('data', lineSplitter(countLine));
      child.stderr?.on('data', lineSplitter(countLine));
      child.once('exit', (code, signal) => {
        if (finished || slot.stopping || slot.child !== child) return;
        unplannedExits++;
        say(`worker ${index + 1} exited on its own (${code ?? signal}); restarting it in 1 s`);
        setTimeout(() => void (finished || spawnWorker(index)), 1_000);
      });
      return slot;
    };
    const ready = (port: number) => waitUntil(() => call(port, 'GET', '/readyz', undefined, '').then((r) => r.status === 200, () => false), 90_000, 'a worker to be ready', 200);
    await Promise.all(slots.map(async (_, i) => ready((await spawnWorker(i)).port)));
    const watchApi = (api: ChildProcess | null) =>
      api?.once('exit', (code, signal) => {
        if (finished) return;
        unplannedExits++;
        say(`the API exited on its own (${code ?? signal}); restarting it in 1 s`);
        setTimeout(() => void (finished || stack.startApi().then(() => watchApi(stack.api))), 1_000);
      });
    watchApi(stack.api);

    // The publisher: one first attempt per event at the rate; a refused one is
    // retried with the same Idempotency-Key and body (a platform's retry), so it is accepted once.
    const t0 = performance.now();
    const accepted = new Map<string, number>();
    const refusedStatuses: Record<string, number> = {};
    const refusedEvents = new Set<number>();
    let refusedAttempts = 0;
    let neverAccepted = 0;
    let sent = 0;
    const keyPrefix = `chaos-${stack.prefix}`;
    const publishEvent = async (seq: number) => {
      const firstTry = performance.now();
      for (let attempt = 0; ; attempt++) {
        let status = 'error';
        try {
          const res = await call(stack.port, 'POST', '/internal/v1/events', eventBody(accountId, seq), stack.token, { 'idempotency-key': `${keyPrefix}-${seq}` });
          const now = performance.now();
          if (res.status === 202) {
            const eventId = res.body.event.id as string;
            for (let h = 0; h < settings.hooks; h++) if (!accepted.has(deliveryKey(eventId, h))) accepted.set(deliveryKey(eventId, h), now);
            return;
          }
          status = String(res.status);
        } catch {
          // Connection refused or reset, or no answer: retried like a refusal.
        }
        refusedAttempts++;
        refusedStatuses[status] = (refusedStatuses[status] ?? 0) + 1;
        refusedEvents.add(seq);
        if (performance.now() - firstTry > PUBLISH_PATIENCE_MS) {
          neverAccepted++;
          return;
        }
        await sleep(Math.min(5_000, 250 * 2 ** attempt));
      }
    };
    const publisher = (async () => {
      const pending: Promise<void>[] = [];
      for (let seq = 0; seq < settings.events; seq++) {
        const wait = t0 + (seq * 1000) / settings.rate - performance.now();
        if (wait > 1) await sleep(wait);
        pending.push(publishEvent(seq));
        sent = seq + 1;
      }
      await Promise.all(pending);
    })();

    const faults: ScenarioResult['faults'] = [];
    /** When each worker was SIGKILLed (performance.now()). */
    const kills: number[] = [];
    const secondsSince = (at: number) => (at - t0) / 1000;
    const ctx: ChaosContext = {
      at: (seconds) => sleep(Math.max(0, t0 + seconds * 1000 - performance.now())),
      publishing: () => sent < settings.events,
      async fault(label, fn) {
        const start = performance.now();
        say(`${secondsSince(start).toFixed(1)} s: ${label}…`);
        await fn();
        const end = performance.now();
        faults.push({ label, startSeconds: secondsSince(start), endSeconds: secondsSince(end) });
        say(`${secondsSince(end).toFixed(1)} s: ${label}: done (${((end - start) / 1000).toFixed(1)} s)`);
      },
      async killWorker(index) {
        const slot = slots[index];
        if (!slot.child) return;
        slot.stopping = true;
        const child = slot.child;
        const gone = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
        child.kill('SIGKILL');
        kills.push(performance.now());
        await gone;
      },
      startWorker: (index) => void spawnWorker(index),
      async rollWorker(index) {
        const old = slots[index].child;
        slots[index].stopping = true;
        const fresh = { child: null, port: 0, stopping: false } as Slot;
        slots[index] = fresh;
        await spawnWorker(index);
        await ready(fresh.port);
        if (old) await stack.stopChild(old, 30_000);
      },
      workers: settings.workers,
      redis,
      cluster,
      pg,
    };

    const ticker = setInterval(() => {
      const delivered = [...accepted.keys()].reduce((n, key) => n + (receiver.arrivals.has(key) ? 1 : 0), 0);
      progress(
        `chaos [${scenario.name}] ${secondsSince(performance.now()).toFixed(0)} s: published ${sent}/${settings.events}, ` +
          `accepted ${accepted.size / settings.hooks}, refused attempts ${refusedAttempts}, delivered ${delivered}/${accepted.size}, ` +
          `duplicates ${receiver.duplicated.size}, worker error/warn lines ${workerLog.error}/${workerLog.warn}`,
      );
    }, 1_000);
    cleanups.push(async () => clearInterval(ticker));

    await Promise.all([publisher, scenario.plan(ctx)]);
    const calm = performance.now();
    say(`${secondsSince(calm).toFixed(1)} s: publishing and faults over; waiting up to ${settings.drainSeconds} s for the last deliveries`);
    let drainTimedOut = false;
    let missing = [...accepted.keys()];
    await waitUntil(
      () => {
        missing = missing.filter((key) => !receiver.arrivals.has(key));
        return missing.length === 0;
      },
      settings.drainSeconds * 1000,
      'the deliveries',
      500,
    ).catch(() => (drainTimedOut = true));
    const end = performance.now();
    finished = true;
    clearInterval(ticker);
    progress('');

    // A delivery that never arrived: what PostgreSQL holds of it (its state and attempts), to tell a loss from a delivery that ended failed.
    const lostDetail = drainTimedOut ? await describeMissing(stack.env.DATABASE_URL, missing.slice(0, 20)).catch((err: Error) => [{ key: '', error: err.message }]) : [];
    for (const lost of lostDetail) say(`not delivered: ${JSON.stringify(lost)}`);
    const lastFault = faults.reduce((latest, f) => Math.max(latest, f.endSeconds), -Infinity);
    const arrivalTimes = [...accepted.keys()].map((key) => receiver.arrivals.get(key)).filter((at): at is number => at !== undefined);
    const result: ScenarioResult = {
      scenario: scenario.name,
      events: settings.events,
      rate: settings.rate,
      accepted: accepted.size / settings.hooks,
      refusedAttempts,
      refusedEvents: refusedEvents.size,
      refusedStatuses,
      neverAccepted,
      deliveries: accepted.size,
      lost: lostKeys(accepted.keys(), receiver.arrivals).length,
      duplicates: duplicatesOf(receiver.duplicated, accepted),
      duplicateCauses: duplicateCauses(
        [...receiver.duplicated].filter((key) => accepted.has(key)),
        receiver.arrivals,
        kills,
        faults.map((f) => t0 + f.startSeconds * 1000),
        // A request sent just before the kill is answered up to the receiver's delay (plus a loaded loop's lag) after it.
        { afterMs: settings.receiverDelayMs + 200 },
      ),
      latencyMs: latencyOf(accepted, receiver.arrivals),
      latencyByAcceptance: latencyByAcceptance(accepted, receiver.arrivals, t0),
      // Each duplicated delivery's copies (seconds since publishing began: request received → answered, and the
      // sender's port), for reading a run's duplicates against its faults and kills.
      duplicateTimeline: [...receiver.duplicated]
        .filter((key) => accepted.has(key))
        .map((key) => ({
          key,
          acceptedAt: +((accepted.get(key)! - t0) / 1000).toFixed(3),
          copies: (receiver.copies.get(key) ?? []).map((c) => [+((c.receivedAt - t0) / 1000).toFixed(3), +((c.answeredAt - t0) / 1000).toFixed(3), c.port]),
        })),
      lostDetail,
      kills: kills.map((at) => +((at - t0) / 1000).toFixed(3)),
      recoverySeconds: faults.length ? recoverySeconds(arrivalTimes, t0 + lastFault * 1000, settings.rate * settings.hooks, end) : null,
      faults,
      workerLog: { ...workerLog },
      workerMessages: { ...workerMessages },
      // The warn and error lines in order, timed from publishing's start (the first 2,000).
      workerLines: workerLines.map(([at, line]) => [+(at - (t0 - began) / 1000).toFixed(3), line] as [number, string]),
      unplannedExits,
      receiver: { received: receiver.total, failed: receiver.failed },
      drainTimedOut,
      wallSeconds: (end - began) / 1000,
    };
    return result;
  } finally {
    finished = true;
    unregister();
    await cleanup();
  }
}

/** The rows of deliveries that never arrived, by deliveryKey (event id / hook index), with their attempts. */
async function describeMissing(databaseUrl: string, keys: string[]): Promise<unknown[]> {
  if (keys.length === 0) return [];
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const out: unknown[] = [];
    for (const key of keys) {
      const [eventId, hook] = key.split('/');
      const { rows } = await db.query(
        `SELECT d.id, d.status, d.attempt_count, d.next_attempt_at, d.created_at, d.updated_at, w.url, w.circuit, w.circuit_retry_at, w.failing_since
           FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
          WHERE d.event_id = $1 AND ($2::text IS NULL OR w.url LIKE '%/' || $2)`,
        [eventId, hook ?? null],
      );
      const attempts = rows[0]
        ? (await db.query('SELECT attempt_number, status, response_status, error, duration_ms, created_at FROM attempts WHERE delivery_id = $1 ORDER BY attempt_number', [rows[0].id])).rows
        : [];
      out.push({ key, delivery: rows[0] ?? null, attempts });
    }
    return out;
  } finally {
    await db.end();
  }
}
