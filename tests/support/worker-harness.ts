import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@hookline/config';
import { createDb, type Db } from '@hookline/db';
import { createSecretBox } from '@hookline/domain';
import { createMetrics, type Metrics } from '@hookline/metrics';
import { createRedis, type RedisClient, type RedisTarget } from '@hookline/queue';
import { createWorker, type DeliveryWorker, type WorkerConfig } from '@hookline/worker';
import { TEST_REDIS_URL } from './api-harness';

// The real delivery worker for tests, on the database / BullMQ prefix /
// encryption key of an API harness: in this process (startWorkerHarness) or
// as a child process running apps/worker/src/main.ts (spawnWorkerProcess).

const ROOT = resolve(__dirname, '../..');

/** Compressed timings: retries in hundreds of ms, lost jobs noticed within a second. */
export const TEST_WORKER_CONFIG: WorkerConfig = {
  WEBHOOK_BRAND: 'PerfectParser',
  RETRY_SCHEDULE: [300, 600, 1200],
  DELIVERY_TIMEOUT: 2_000,
  ALLOW_PRIVATE_TARGETS: true,
  AUTO_DISABLE_AFTER: 3 * 86_400_000,
  WORKER_CONCURRENCY: 50,
  RELAY_GRACE: 500,
  // Exact retry delays, so tests can assert the schedule; jitter has its own tests.
  RETRY_JITTER: 0,
  ENDPOINT_CONCURRENCY: 10,
  CIRCUIT_BREAKER_THRESHOLD: 5,
  CIRCUIT_BREAKER_COOLDOWN: 1_000,
};

export type LogLine = Record<string, unknown> & { level: string; message: string };

export type WorkerHarness = {
  delivery: DeliveryWorker;
  db: Db;
  connection: RedisClient;
  metrics: Metrics;
  logger: Logger;
  /** Every line the worker logged, parsed. */
  logs: LogLine[];
  /** The `delivery attempt` lines of one delivery, in order. */
  attemptLogs(deliveryId: string): LogLine[];
  close(): Promise<void>;
};

export type WorkerHarnessOptions = {
  databaseUrl: string;
  prefix: string;
  encryptionKey: Buffer;
  redisUrl?: string;
  /** Another Redis topology (a test's own cluster or Sentinel); wins over redisUrl. */
  redis?: RedisTarget;
  /** DELIVERY_QUEUE_SHARDS; default: the topology's. */
  shards?: number;
  config?: Partial<WorkerConfig>;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  relayIntervalMs?: number;
  outageProbeIntervalMs?: number;
  recordRetryMs?: { first: number; max: number };
};

export async function startWorkerHarness(h: WorkerHarnessOptions): Promise<WorkerHarness> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        const parsed = JSON.parse(line) as LogLine;
        logs.push(parsed);
        if (process.env.TEST_LOGS) process.stderr.write(`${line}\n`);
      }
      done();
    },
  });
  const logger = createLogger({ level: 'info', service: 'worker-test', stream: sink });
  const db = await createDb({ databaseUrl: h.databaseUrl, poolSize: 10 });
  // As the API harness's database (tests/support/test-database.ts): the run's COMPACT_HISTORY.
  db.compact = process.env.COMPACT_HISTORY === 'true';
  const connection = createRedis(h.redis ?? h.redisUrl ?? TEST_REDIS_URL, 'worker');
  const metrics = createMetrics({ app: 'worker-test', defaultMetrics: false });
  const delivery = createWorker({
    db,
    connection,
    prefix: h.prefix,
    shards: h.shards,
    logger,
    metrics,
    secretBox: createSecretBox(h.encryptionKey),
    config: { ...TEST_WORKER_CONFIG, ...h.config },
    lockDurationMs: h.lockDurationMs ?? 3_000,
    stalledIntervalMs: h.stalledIntervalMs ?? 1_000,
    relayIntervalMs: h.relayIntervalMs ?? 200,
    outageProbeIntervalMs: h.outageProbeIntervalMs ?? 200,
    recordRetryMs: h.recordRetryMs,
  });
  await delivery.worker.waitUntilReady().catch(async (err: Error) => {
    await delivery.close();
    connection.disconnect();
    await db.close();
    throw err;
  });
  let closing: Promise<void> | undefined;
  return {
    delivery,
    db,
    connection,
    metrics,
    logger,
    logs,
    attemptLogs: (deliveryId) => logs.filter((line) => line.message === 'delivery attempt' && line.delivery_id === deliveryId),
    close() {
      // Once, however many callers: a test may stop a worker early, its suite again at the end.
      closing ??= (async () => {
        await delivery.close();
        connection.disconnect();
        await db.close();
      })();
      return closing;
    },
  };
}

export type ExitInfo = { code: number | null; signal: NodeJS.Signals | null };

export type WorkerProcess = {
  child: ChildProcess;
  /** stdout and stderr lines so far. */
  output: string[];
  exited: Promise<ExitInfo>;
  /** Sends `signal` to the process group (tsx and the node process it runs) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
};

/** The environment a worker process needs to serve an API harness's database and queue (private targets allowed). */
export function workerProcessEnv(api: { database: { url: string }; prefix: string; encryptionKey: Buffer }, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: api.database.url,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: api.prefix,
    ENCRYPTION_KEY: api.encryptionKey.toString('base64'),
    ALLOW_PRIVATE_TARGETS: 'true',
    ...extra,
  };
}

/**
 * `tsx apps/worker/src/main.ts` as a child process, in its own process group
 * so a SIGKILL reaches tsx's node child as well. Resolves once the worker
 * logged 'worker started'.
 */
export function spawnWorkerProcess(env: Record<string, string>, opts: { readyTimeoutMs?: number } = {}): Promise<WorkerProcess> {
  return spawnAppProcess('apps/worker/src/main.ts', 'worker', env, (line) => line.includes('"worker started"'), opts);
}

export type ApiProcess = WorkerProcess & { port: number };

/** `tsx apps/api/src/main.ts` on a free port, as spawnWorkerProcess does it; resolves once it listens. */
export async function spawnApiProcess(env: Record<string, string>, opts: { readyTimeoutMs?: number } = {}): Promise<ApiProcess> {
  let port = 0;
  const ready = (line: string) => {
    const match = /api listening.*?127\.0\.0\.1:(\d+)/.exec(line);
    if (match) port = Number(match[1]);
    return match !== null;
  };
  const proc = await spawnAppProcess('apps/api/src/main.ts', 'api', { PORT: '0', ...env }, ready, opts);
  return { ...proc, port };
}

async function spawnAppProcess(entry: string, label: string, env: Record<string, string>, isReady: (line: string) => boolean, opts: { readyTimeoutMs?: number }): Promise<WorkerProcess> {
  const child = spawn(resolve(ROOT, 'node_modules/.bin/tsx'), [entry], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
  });
  const output: string[] = [];
  const exited = new Promise<ExitInfo>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  let onLine: (line: string) => void = () => undefined;
  const collect = (stream: NodeJS.ReadableStream) => {
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        output.push(line);
        if (process.env.TEST_LOGS) process.stderr.write(`[${label} ${child.pid}] ${line}\n`);
        onLine(line);
      }
    });
  };
  collect(child.stdout);
  collect(child.stderr);

  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        // SIGKILL: the whole group, so nothing survives. Any other signal: the
        // node process tsx runs, once (tsx's own relay may deliver it twice
        // under load, or SIGKILL a child slow to acknowledge).
        if (signal === 'SIGKILL') process.kill(-child.pid!, signal);
        else process.kill(nodeChildOf(child.pid!) ?? child.pid!, signal);
      } catch {
        // already gone
      }
    }
    return exited;
  };

  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`${label} process not ready in ${timeoutMs} ms:\n${output.join('\n')}`)), timeoutMs);
    onLine = (line) => {
      if (isReady(line)) {
        clearTimeout(timer);
        ready();
      }
    };
    void exited.then((info) => {
      clearTimeout(timer);
      fail(new Error(`${label} process exited (${info.code ?? info.signal}) before it was ready:\n${output.join('\n')}`));
    });
  }).catch(async (err) => {
    await kill('SIGKILL');
    throw err;
  });
  onLine = () => undefined;
  return { child, output, exited, kill };
}

/** The process tsx started to run the script (Linux /proc), or null. */
function nodeChildOf(pid: number): number | null {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return children.length ? Number(children[0]) : null;
  } catch {
    return null;
  }
}
