// Composition root of the API process (`npm run start:api`): the only place that reads process.env.
import { resolve } from 'node:path';
import { apiEnvSchema, createLogger, loadEnvOrExit, loadOrCreateDevSecrets, PRODUCTION_REQUIRED, throttledWarn } from '@hookline/config';
import { createDb, ensurePartitions, runMigrations, untilDatabaseAnswers } from '@hookline/db';
import { createSecretBox, parseEncryptionKey } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import { startTracing } from '@hookline/telemetry';
import { createDeliveryQueues, createRedis, describeRedisTarget, redisTargetFromEnv, shardCount } from '@hookline/queue';
import { createApp } from './app';
import { serveUntilSignal } from './serve';

async function main() {
  const env = loadEnvOrExit(apiEnvSchema, process.env, PRODUCTION_REQUIRED.api);
  if (!env.DATABASE_URL) {
    process.stderr.write('hookline: the API needs DATABASE_URL (a postgresql:// URL); for a single-process dev setup on an embedded database use `npm start`\n');
    process.exit(1);
  }
  const dev = env.NODE_ENV !== 'production' ? loadOrCreateDevSecrets(resolve(env.HOOKLINE_DATA_DIR)) : null;
  const platformToken = env.PLATFORM_TOKEN ?? dev!.PLATFORM_TOKEN;
  const encryptionKey = parseEncryptionKey(env.ENCRYPTION_KEY ?? dev!.ENCRYPTION_KEY)!;

  const logger = createLogger({ level: env.LOG_LEVEL, service: 'api' });
  // Off (the API's no-op tracer) unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set.
  const tracing = startTracing(env, { serviceName: 'hookline-api' });
  if (tracing.enabled) logger.info('tracing on', { otlp_url: tracing.url, protocol: tracing.protocol, service_name: tracing.serviceName });
  const db = await createDb({ databaseUrl: env.DATABASE_URL, poolSize: 20, onError: throttledWarn(logger, 'PostgreSQL connection lost; requests answer 503 until it is back') });
  db.compact = env.COMPACT_HISTORY;
  db.partitionIntervalMs = env.PARTITION_INTERVAL;
  // Started while PostgreSQL is down (a failover, a rescheduled pod): wait for it, one line each way.
  await untilDatabaseAnswers(() => runMigrations(db.sql), {
    onWait: (err) => logger.warn('PostgreSQL unreachable at start: the API waits for it and starts when it answers (check DATABASE_URL if this lasts)', { err: err.message }),
    onBack: (waitedMs) => logger.info('PostgreSQL answered; starting', { waited_ms: waitedMs }),
  });
  // The partitions of now and a few intervals ahead (packages/db/src/partitions.ts), before the first write.
  // Not fatal: if they cannot be made now (a lock held too long), a write that needs one makes it.
  await ensurePartitions(db).catch((err: Error) => logger.warn('could not make partitions ahead at start', { err: err.message }));
  const redisTarget = redisTargetFromEnv(env);
  const redis = createRedis(redisTarget, 'producer', throttledWarn(logger, 'Redis connection error; publishes wait in the outbox for the relay'));
  // Each delivery goes to its webhook's shard; the workers serve every shard.
  const queue = createDeliveryQueues(redis, env.QUEUE_PREFIX, shardCount(env.DELIVERY_QUEUE_SHARDS, redis));
  logger.info('api queues', { redis: describeRedisTarget(redisTarget), queue_prefix: env.QUEUE_PREFIX, queue_shards: queue.count });
  const app = createApp({
    db,
    redis,
    queue,
    logger,
    metrics: createMetrics({ app: 'api' }),
    secretBox: createSecretBox(encryptionKey),
    config: { ...env, PLATFORM_TOKEN: platformToken, SESSION_SECRET: env.SESSION_SECRET ?? dev?.SESSION_SECRET },
  });

  await serveUntilSignal(app, {
    port: env.PORT,
    logger,
    limits: { maxConnections: env.MAX_CONNECTIONS },
    onListening: (port) => logger.info('api listening', { url: `http://127.0.0.1:${port}` }),
    async onClose() {
      await queue.close().catch((err: Error) => logger.warn('could not close the queue cleanly', { err: err.message }));
      redis.disconnect();
      await db.close();
      await tracing.shutdown().catch((err: Error) => logger.warn('could not export the last spans', { err: err.message }));
    },
  });
}

main().catch((err: Error) => {
  process.stderr.write(`hookline: the API could not start: ${err.message}\n`);
  process.exit(1);
});
