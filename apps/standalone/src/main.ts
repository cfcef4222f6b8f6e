// `npm start`: the whole service in one process — API, worker and admin views on PORT.
// In development it needs nothing: an embedded PostgreSQL (PGlite) under ./.data when
// there is no DATABASE_URL, a redis-server of its own when none answers, generated
// secrets, a demo account with a test API key, a one-time dashboard sign-in link and
// an admin password, all printed (see demo-account.ts); it listens on 127.0.0.1 only
// and allows private webhook targets (a receiver on this machine).
// With NODE_ENV=production it uses only what it is given (DATABASE_URL, a Redis
// topology, PLATFORM_TOKEN, ENCRYPTION_KEY), starts nothing, and prints no secret.
import { resolve } from 'node:path';
import { startTracing } from '@hookline/telemetry';
import { createLogger, devSecretsFile, loadEnvOrExit, loadOrCreateDevSecrets, PRODUCTION_REQUIRED, standaloneEnvSchema, throttledWarn } from '@hookline/config';
import { createDb, ensurePartitions, runMigrations } from '@hookline/db';
import { createSecretBox, parseEncryptionKey } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import { createDeliveryQueues, createRedis, describeRedisTarget, redisTargetFromEnv, shardCount } from '@hookline/queue';
import { createApp, serveUntilSignal, SIGN_IN_LINK_TTL_SECONDS } from '@hookline/api';
import { createWorker, startRetentionSweeper } from '@hookline/worker';
import { lockDataDir } from './data-lock';
import { ensureDemoAccount, type DemoAccount } from './demo-account';
import { ensureRedis, type LocalRedis } from './local-redis';

/**
 * Development's defaults that differ from the production processes': webhooks to
 * this machine's receivers are allowed unless ALLOW_PRIVATE_TARGETS says otherwise.
 */
function withDevelopmentDefaults(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.NODE_ENV === 'production' || env.ALLOW_PRIVATE_TARGETS) return env;
  return { ...env, ALLOW_PRIVATE_TARGETS: 'true' };
}

async function main() {
  // Production generates and starts nothing: its database, Redis, token and key must be given.
  const env = loadEnvOrExit(standaloneEnvSchema, withDevelopmentDefaults(process.env), PRODUCTION_REQUIRED.standalone);
  const dataDir = resolve(env.HOOKLINE_DATA_DIR);
  const production = env.NODE_ENV === 'production';
  const say = (line: string) => process.stdout.write(`${line}\n`);
  // Production uses no data folder; development takes it for itself before reading or writing anything in it.
  const lock = production ? null : lockDataDir(dataDir);
  // A stop asked for while starting: take down what was started so far (the redis-server last), then exit.
  // serveUntilSignal's graceful shutdown replaces this once the service is up.
  let localRedis: LocalRedis | null = null;
  let stopping = false;
  const stopWhileStarting = () => {
    if (stopping) return; // one Ctrl-C arrives twice: from the terminal and relayed by npm
    stopping = true;
    say('hookline: stopping before the start finished');
    void Promise.resolve(localRedis?.stop()).finally(() => process.exit(0));
  };
  process.on('SIGINT', stopWhileStarting);
  process.on('SIGTERM', stopWhileStarting);
  const dev = production ? null : loadOrCreateDevSecrets(dataDir);
  // The demo account and the generated admin password: development on the embedded database only.
  const embeddedDev = !production && !env.DATABASE_URL;
  const platformToken = env.PLATFORM_TOKEN ?? dev!.PLATFORM_TOKEN;
  const encryptionKey = parseEncryptionKey(env.ENCRYPTION_KEY ?? dev!.ENCRYPTION_KEY)!;
  const adminPassword = env.ADMIN_PASSWORD ?? (embeddedDev ? dev!.ADMIN_PASSWORD : undefined);
  const secretsFile = devSecretsFile(dataDir);
  const secretBox = createSecretBox(encryptionKey);
  const logger = createLogger({ level: env.LOG_LEVEL, service: 'hookline' });
  const host = env.HOST ?? (production ? '0.0.0.0' : '127.0.0.1');
  // One process, one tracer provider: one service.name, `hookline`, for the API's and
  // the worker's spans alike (their span names tell them apart).
  const tracing = startTracing(env, { serviceName: 'hookline' });
  if (tracing.enabled) logger.info('tracing on', { otlp_url: tracing.url, protocol: tracing.protocol, service_name: tracing.serviceName });

  say(env.DATABASE_URL ? 'hookline: connecting to PostgreSQL…' : `hookline: starting the embedded PostgreSQL (PGlite) in ${resolve(dataDir, 'pglite')}…`);
  const db = env.DATABASE_URL
    ? await createDb({ databaseUrl: env.DATABASE_URL, poolSize: 20 })
    : await createDb({ pgliteDir: resolve(dataDir, 'pglite') });
  // The embedded database has one process, this one, so nothing of a version before can read it: compact always.
  db.compact = env.DATABASE_URL ? env.COMPACT_HISTORY : true;
  db.partitionIntervalMs = env.PARTITION_INTERVAL;
  // The embedded database is this process's alone: no earlier version can use it, so the contract steps run at once.
  const applied = await runMigrations(db.sql, { contract: !env.DATABASE_URL });
  // The partitions of now and a few intervals ahead (packages/db/src/partitions.ts), before the first write.
  // Not fatal: if they cannot be made now (a lock held too long), a write that needs one makes it.
  await ensurePartitions(db).catch((err: Error) => logger.warn('could not make partitions ahead at start', { err: err.message }));
  if (applied.length) say(`hookline: applied ${applied.length} migration(s)`);

  // A redis-server of its own only for one local server; a cluster or Sentinel must be running already.
  const redisTarget = redisTargetFromEnv(env);
  localRedis = redisTarget.kind === 'server' && !production ? await ensureRedis(redisTarget.url, resolve(dataDir, 'redis')) : null;
  if (localRedis?.child) say(`hookline: started redis-server for this process (data in ${resolve(dataDir, 'redis')})`);
  if (production || redisTarget.kind !== 'server') say(`hookline: using ${describeRedisTarget(redisTarget)}`);

  const producer = createRedis(redisTarget, 'producer', throttledWarn(logger, 'Redis connection error; publishes wait in the outbox for the relay'));
  const queue = createDeliveryQueues(producer, env.QUEUE_PREFIX, shardCount(env.DELIVERY_QUEUE_SHARDS, producer));
  // One process serves both apps' series: labelled app="standalone" (docs/operations.md#metrics).
  const metrics = createMetrics({ app: 'standalone' });
  const workerConnection = createRedis(redisTarget, 'worker', throttledWarn(logger, 'Redis connection error; the worker waits for it'));
  const worker = createWorker({
    db,
    connection: workerConnection,
    prefix: env.QUEUE_PREFIX,
    shards: env.DELIVERY_QUEUE_SHARDS,
    logger,
    metrics,
    secretBox,
    config: env,
    lockDurationMs: env.WORKER_LOCK_DURATION,
    stalledIntervalMs: env.WORKER_STALLED_INTERVAL,
    outageProbeIntervalMs: env.OUTAGE_PROBE_INTERVAL,
  });
  // Refuses (one line, naming QUEUE_PREFIX) when the prefix holds another installation's queues.
  await worker.worker.waitUntilReady();
  const retention = startRetentionSweeper({ db, logger, metrics, retentionMs: env.RETENTION });

  const app = createApp({
    db,
    redis: producer,
    queue,
    logger,
    metrics,
    secretBox,
    config: { ...env, PLATFORM_TOKEN: platformToken, ADMIN_PASSWORD: adminPassword, SESSION_SECRET: env.SESSION_SECRET ?? dev?.SESSION_SECRET },
  });

  // A convenience: if it fails, the service still starts.
  const demo: DemoAccount | null = embeddedDev
    ? await ensureDemoAccount({ db, redis: producer, queuePrefix: env.QUEUE_PREFIX }, dataDir).catch((err: Error) => {
      say(`hookline: could not set up the demo account (${err.message}); create one with the curl line below`);
      return null;
    })
    : null;

  process.removeListener('SIGINT', stopWhileStarting);
  process.removeListener('SIGTERM', stopWhileStarting);
  await serveUntilSignal(app, {
    port: env.PORT,
    host,
    logger,
    limits: { maxConnections: env.MAX_CONNECTIONS },
    onListening(port) {
      const base = `http://${urlHost(host)}:${port}`;
      say('');
      say(`Hookline is running at ${base}`);
      say(`  Listening on:    ${describeHost(host)}`);
      say(`  Private targets: ${env.ALLOW_PRIVATE_TARGETS ? 'allowed: webhooks may call this machine and the local network (ALLOW_PRIVATE_TARGETS=false refuses them)' : 'refused: webhooks must call public addresses (ALLOW_PRIVATE_TARGETS=true allows private ones)'}`);
      // Production prints no secret: the operator has the token it was given.
      say(`  Platform token:  ${production ? 'from PLATFORM_TOKEN (not printed)' : `${platformToken}${env.PLATFORM_TOKEN ? '' : `  (generated, kept in ${secretsFile})`}`}`);
      say(`  Dashboard:       ${base}/dashboard`);
      if (demo) printDemo(say, base, demo, platformToken);
      say(`  API docs:        ${base}/docs`);
      const adminWhere = env.ADMIN_PASSWORD ? 'password from ADMIN_PASSWORD' : `password ${adminPassword}  (generated, kept in ${secretsFile})`;
      say(`  Admin view:      ${adminPassword ? `${base}/admin/queues  (user admin, ${adminWhere})` : 'off — set ADMIN_PASSWORD to enable /admin/queues'}`);
      say('  Create an account:');
      say(`    curl -s -X POST ${base}/internal/v1/accounts -H "Authorization: Bearer ${production ? '$PLATFORM_TOKEN' : platformToken}" -H "Content-Type: application/json" -d '{"name":"Acme"}'`);
      say('Press Ctrl-C to stop.');
    },
    async onClose() {
      await Promise.all([retention.stop(), worker.close()]);
      await queue.close().catch((err: Error) => logger.warn('could not close the queue cleanly', { err: err.message }));
      producer.disconnect();
      workerConnection.disconnect();
      await db.close();
      await tracing.shutdown().catch((err: Error) => logger.warn('could not export the last spans', { err: err.message }));
      // Last: everything above may still talk to it while closing.
      await localRedis?.stop();
      lock?.release();
    },
  });
}

/** The host part of the printed URL: a wildcard address is reached on loopback from here. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function describeHost(host: string): string {
  if (host === '127.0.0.1' || host === 'localhost' || host === '::1') return `${host} only, not reachable from other machines (set HOST=0.0.0.0 to listen on every interface)`;
  if (host === '0.0.0.0' || host === '::') return `every interface (HOST=${host}); other machines can reach it`;
  return `${host} (HOST)`;
}

function printDemo(say: (line: string) => void, base: string, demo: DemoAccount, platformToken: string) {
  say(`  Sign in:         ${base}${demo.signInPath}`);
  say(`                   (one-time link, valid ${SIGN_IN_LINK_TTL_SECONDS / 60} minutes; every start prints a new one)`);
  say(`  Demo account:    ${demo.accountId}${demo.created ? '  (created now: pro plan)' : ''}`);
  if (demo.key) {
    say(`  Demo API key:    ${demo.key}`);
    say('                   (test mode; shown this once: only its hash is stored)');
  } else {
    say(`  Demo API key:    ${demo.keyPrefix}… (${demo.keyId}), printed at the start that created it; only its hash is stored. Another key:`);
    say(`    curl -s -X POST ${base}/internal/v1/accounts/${demo.accountId}/api-keys -H "Authorization: Bearer ${platformToken}" -H "Content-Type: application/json" -d '{"mode":"test"}'`);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`hookline: could not start: ${err.message}\n`);
  process.exit(1);
});
