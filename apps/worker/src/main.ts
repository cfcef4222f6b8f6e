// Composition root of the worker process (`npm run start:worker`): the only
// place that reads process.env. Any number of these may run at once.
import { resolve } from 'node:path';
import { createLogger, loadEnvOrExit, loadOrCreateDevSecrets, onShutdownSignal, PRODUCTION_REQUIRED, throttledWarn, workerEnvSchema } from '@hookline/config';
import { createDb, ensurePartitions, runMigrations, untilDatabaseAnswers } from '@hookline/db';
import { createSecretBox, parseEncryptionKey } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import { createRedis, describeRedisTarget, redisTargetFromEnv } from '@hookline/queue';
import { startTracing } from '@hookline/telemetry';
import { startHealthServer, type HealthServer } from './health-server';
import { startRetentionSweeper } from './retention';
import { createWorker } from './worker';

function refuse(line: string): never {
  process.stderr.write(`hookline: ${line}\n`);
  process.exit(1);
}

async function main() {
  const env = loadEnvOrExit(workerEnvSchema, process.env, PRODUCTION_REQUIRED.worker);
  if (!env.DATABASE_URL) refuse('the worker needs DATABASE_URL (PostgreSQL); for a single-process dev setup use npm start');
  // Production must be given the key (PRODUCTION_REQUIRED); in development the
  // worker shares the one the API generated into the data folder, so both
  // processes encrypt and decrypt with the same key.
  const keyText = env.ENCRYPTION_KEY ?? (env.NODE_ENV !== 'production' ? loadOrCreateDevSecrets(resolve(env.HOOKLINE_DATA_DIR)).ENCRYPTION_KEY : undefined);
  const encryptionKey = keyText ? parseEncryptionKey(keyText) : null;
  if (!encryptionKey) refuse('the worker needs ENCRYPTION_KEY (32 bytes, base64; the same as the API\'s) to decrypt webhook secrets');

  const logger = createLogger({ level: env.LOG_LEVEL, service: 'worker' });
  // Off (the API's no-op tracer) unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set.
  const tracing = startTracing(env, { serviceName: 'hookline-worker' });
  if (tracing.enabled) logger.info('tracing on', { otlp_url: tracing.url, protocol: tracing.protocol, service_name: tracing.serviceName });
  const db = await createDb({ databaseUrl: env.DATABASE_URL, poolSize: 20, onError: throttledWarn(logger, 'PostgreSQL connection lost; deliveries wait for it') });
  db.compact = env.COMPACT_HISTORY;
  db.partitionIntervalMs = env.PARTITION_INTERVAL;
  // Started while PostgreSQL is down (a failover, a rescheduled pod): wait for it, one line each way.
  await untilDatabaseAnswers(() => runMigrations(db.sql), {
    onWait: (err) => logger.warn('PostgreSQL unreachable at start: the worker waits for it and starts when it answers (check DATABASE_URL if this lasts)', { err: err.message }),
    onBack: (waitedMs) => logger.info('PostgreSQL answered; starting', { waited_ms: waitedMs }),
  });
  // The partitions of now and a few intervals ahead (packages/db/src/partitions.ts), before the first write.
  // Not fatal: if they cannot be made now (a lock held too long), a write that needs one makes it.
  await ensurePartitions(db).catch((err: Error) => logger.warn('could not make partitions ahead at start', { err: err.message }));
  const redisTarget = redisTargetFromEnv(env);
  const connection = createRedis(redisTarget, 'worker', throttledWarn(logger, 'Redis connection error; the worker waits for it'));
  const metrics = createMetrics({ app: 'worker' });
  const delivery = createWorker({
    db,
    connection,
    prefix: env.QUEUE_PREFIX,
    shards: env.DELIVERY_QUEUE_SHARDS,
    logger,
    metrics,
    secretBox: createSecretBox(encryptionKey),
    config: env,
    lockDurationMs: env.WORKER_LOCK_DURATION,
    stalledIntervalMs: env.WORKER_STALLED_INTERVAL,
    outageProbeIntervalMs: env.OUTAGE_PROBE_INTERVAL,
  });
  // Every worker runs one; an advisory lock lets one sweep at a time (retention.ts).
  const retention = startRetentionSweeper({ db, logger, metrics, retentionMs: env.RETENTION });
  let health: HealthServer | null = null;

  onShutdownSignal((signal) => {
    logger.info('worker shutting down; finishing in-flight deliveries', { signal });
    (async () => {
      await health?.close();
      // A running sweep stops after its current batch, and releases its lock.
      await Promise.all([retention.stop(), delivery.close()]);
      connection.disconnect();
      await db.close();
      await tracing.shutdown().catch((err: Error) => logger.warn('could not export the last spans', { err: err.message }));
    })().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error('worker shutdown failed', { err: err.message });
        process.exit(1);
      },
    );
  }, logger);

  // Refuses (one line, naming QUEUE_PREFIX) when the prefix holds another installation's queues.
  await delivery.worker.waitUntilReady().catch(async (err: Error) => {
    await Promise.all([retention.stop(), delivery.close()]).catch(() => undefined);
    throw err;
  });
  health = env.WORKER_HEALTH_PORT !== undefined
    ? await startHealthServer({ port: env.WORKER_HEALTH_PORT, host: env.WORKER_HEALTH_HOST, db, redis: connection, metrics, queues: delivery.queues.shards, slots: () => delivery.slots(), logger, outage: delivery.outage })
    : null;
  logger.info('worker started', {
    queue_prefix: env.QUEUE_PREFIX,
    redis: describeRedisTarget(redisTarget),
    queue_shards: delivery.queues.shards.length,
    concurrency: env.WORKER_CONCURRENCY,
    brand: env.WEBHOOK_BRAND,
    allow_private_targets: env.ALLOW_PRIVATE_TARGETS,
    retention_ms: env.RETENTION,
    ...(health ? { health_port: health.port } : {}),
  });
}

main().catch((err: Error) => {
  process.stderr.write(`hookline: the worker could not start: ${err.message}\n`);
  process.exit(1);
});
