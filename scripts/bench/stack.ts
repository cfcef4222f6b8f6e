import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Client } from 'pg';
import { createDb, runMigrations } from '@hookline/db';
import { createRedis } from '@hookline/queue';
import { spawnTsx, waitUntil } from './support';
import { call } from './http';
import { benchRedis } from './redis';

// One Hookline deployment for a benchmark run: a fresh PostgreSQL database and
// BullMQ queue prefix on this machine's services, the API and workers as separate
// production processes. close() stops the processes, drops the database and
// deletes the prefix's Redis keys; it also runs on Ctrl-C / SIGTERM.

export const PG_SERVER = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export type Stack = {
  dbName: string;
  prefix: string;
  token: string;
  /** Environment shared by the API and the workers. */
  env: Record<string, string>;
  /** The API's port once startApi() resolved. */
  port: number;
  /** The API's process once startApi() resolved (a later startApi() replaces it). */
  api: ChildProcess | null;
  startApi(): Promise<void>;
  /** A child process of this stack (stopped by close()). */
  spawn(entry: string, env: Record<string, string>, label: string): ChildProcess;
  /** SIGTERM to every child, SIGKILL after `graceMs`. */
  stopChildren(graceMs?: number): Promise<void>;
  /** SIGTERM to one child (a graceful shutdown), SIGKILL after `graceMs`. */
  stopChild(child: ChildProcess, graceMs?: number): Promise<void>;
  close(): Promise<void>;
};

const cleanups = new Set<() => Promise<void>>();
let signalled = false;

/** Runs every registered cleanup once, then exits, on the first SIGINT/SIGTERM. */
function onSignal(signal: NodeJS.Signals): void {
  if (signalled) return;
  signalled = true;
  process.stderr.write(`\nbench: ${signal}; cleaning up…\n`);
  const all = [...cleanups].map((fn) => fn().catch(() => undefined));
  const limit = new Promise((r) => setTimeout(r, 20_000).unref());
  void Promise.race([Promise.all(all), limit]).finally(() => process.exit(130));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

/** Registers `fn` to run on Ctrl-C; returns a function that unregisters it. */
export function onInterrupt(fn: () => Promise<void>): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function deleteKeys(prefix: string): Promise<void> {
  // A cluster of the run's own is removed whole when the run ends.
  if (benchRedis().target.kind !== 'server') return;
  const redis = createRedis(REDIS_URL, 'worker');
  try {
    for (const pattern of [`${prefix}:*`, `${prefix}-*`]) {
      let cursor = '0';
      let rounds = 0;
      do {
        const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = nextCursor;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0' && ++rounds < 100_000);
    }
  } finally {
    redis.disconnect();
  }
}

export type StackOptions = {
  concurrency: number;
  /** Settings changed from the production defaults for this run, each with the reason printed in the run's header. */
  env?: Record<string, string>;
  reasons?: Record<string, string>;
  /** The PostgreSQL server the run's database is created on (default PG_SERVER); a private one is removed whole by its owner, so the database is not dropped. */
  pgServer?: string;
  /**
   * A Redis of the run's own (the chaos benchmark's): its environment for the processes;
   * nothing is deleted from it at the end (its owner removes it whole).
   */
  ownRedis?: Record<string, string>;
  /** The contract steps too (default true: the schema once a rollout has finished). */
  contract?: boolean;
};

export async function createStack(opts: StackOptions): Promise<Stack> {
  const pgServer = opts.pgServer ?? PG_SERVER;
  const admin = new Client({ connectionString: pgServer });
  // A private server the chaos benchmark stops on purpose: the admin connection is then lost, not a crash of the run.
  admin.on('error', () => undefined);
  try {
    await admin.connect();
  } catch {
    throw new Error(`PostgreSQL is not answering at ${new URL(pgServer).host}; start it (or set BENCH_DATABASE_URL)`);
  }
  const dbName = `hookline_bench_${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const prefix = `hl-bench-${randomBytes(3).toString('hex')}`;
  const children: ChildProcess[] = [];
  let closed: Promise<void> | null = null;

  const stack: Stack = {
    dbName,
    prefix,
    token: `bench_${randomBytes(16).toString('hex')}`,
    env: {},
    port: 0,
    api: null,
    async startApi() {
      // A port nothing listens on (a leftover API on a guessed port would answer for this one).
      const port = await freePort();
      stack.api = stack.spawn('apps/api/src/main.ts', { PORT: String(port) }, 'api');
      await waitUntil(() => call(port, 'GET', '/healthz', undefined, '').then((r) => r.status === 200, () => false), 60_000, 'the API to start');
      stack.port = port;
    },
    spawn(entry, env, label) {
      const child = spawnTsx(entry, { ...stack.env, ...env }, label);
      children.push(child);
      return child;
    },
    async stopChild(child, graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([exited(child), new Promise<void>((r) => setTimeout(r, graceMs).unref())]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited(child);
    },
    async stopChildren(graceMs = 5_000) {
      const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
      for (const child of running) child.kill('SIGTERM');
      const timer = new Promise<void>((r) => setTimeout(r, graceMs).unref());
      await Promise.race([Promise.all(running.map(exited)), timer]);
      for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await Promise.race([Promise.all(running.map(exited)), new Promise<void>((r) => setTimeout(r, 2_000).unref())]);
    },
    close() {
      closed ??= (async () => {
        unregister();
        await stack.stopChildren().catch(() => undefined);
        if (!opts.ownRedis) await deleteKeys(prefix).catch((err: Error) => process.stderr.write(`bench: could not delete Redis keys ${prefix}:* (${err.message})\n`));
        if (!opts.pgServer) await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch((err: Error) => process.stderr.write(`bench: could not drop database ${dbName} (${err.message})\n`));
        await admin.end().catch(() => undefined);
      })();
      return closed;
    },
  };
  const unregister = onInterrupt(() => stack.close());

  await admin.query(`CREATE DATABASE "${dbName}"`);
  const dbUrl = new URL(pgServer);
  dbUrl.pathname = `/${dbName}`;
  // What is deployed: production mode, the API's rate limiter and LOG_LEVEL at
  // their defaults (info: a line per request and per attempt). Only what a run
  // cannot do without is changed, and the header says so.
  stack.env = {
    NODE_ENV: 'production',
    DATABASE_URL: dbUrl.toString(),
    ...(opts.ownRedis ?? benchRedis().env),
    QUEUE_PREFIX: prefix,
    PLATFORM_TOKEN: stack.token,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ALLOW_PRIVATE_TARGETS: 'true',
    WORKER_CONCURRENCY: String(opts.concurrency),
    ...opts.env,
  };
  const reasons: Record<string, string> = {
    ALLOW_PRIVATE_TARGETS: 'the receiver listens on 127.0.0.1',
    WORKER_CONCURRENCY: 'the run\'s --concurrency',
    ...opts.reasons,
  };
  const changed = ['ALLOW_PRIVATE_TARGETS', 'WORKER_CONCURRENCY', ...Object.keys(opts.env ?? {})]
    .filter((name, i, all) => all.indexOf(name) === i && stack.env[name] !== '')
    .map((name) => `${name}=${stack.env[name]} (${reasons[name] ?? 'this scenario\'s setting'})`);
  console.log(`bench: production defaults but ${changed.join('; ')}`);
  // The schema of a finished rollout: every migration and the contract steps (`npm run db:contract`), which the processes do not run themselves.
  const migrator = await createDb({ databaseUrl: stack.env.DATABASE_URL, poolSize: 1 });
  try {
    await runMigrations(migrator.sql, { contract: opts.contract ?? true });
  } finally {
    await migrator.close();
  }
  console.log(`bench: schema migrated ${opts.contract ?? true ? 'with the contract steps (npm run db:contract: a finished rollout)' : 'without the contract steps (mid-rollout)'}`);
  return stack;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
