// `npm start`: the whole service in one process for local use — API, worker and
// admin views on PORT, an embedded PostgreSQL (PGlite) under ./.data when there is
// no DATABASE_URL, and a redis-server of its own when none answers.
import { resolve } from 'node:path';
import { createLogger, loadEnvOrExit, loadOrCreateDevSecrets, standaloneEnvSchema } from '@hookline/config';
import { createDb, runMigrations } from '@hookline/db';
import { createSecretBox, parseEncryptionKey } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import { createDeliveryQueue, createRedis } from '@hookline/queue';
import { createApp, serveUntilSignal } from '@hookline/api';
import { createWorker } from '@hookline/worker';
import { ensureRedis } from './local-redis';

async function main() {
  const env = loadEnvOrExit(standaloneEnvSchema, process.env);
  const dataDir = resolve(process.env.HOOKLINE_DATA_DIR ?? '.data');
  const dev = loadOrCreateDevSecrets(dataDir);
  const platformToken = env.PLATFORM_TOKEN ?? dev.PLATFORM_TOKEN;
  const encryptionKey = parseEncryptionKey(env.ENCRYPTION_KEY ?? dev.ENCRYPTION_KEY)!;
  const secretBox = createSecretBox(encryptionKey);
  const logger = createLogger({ level: env.LOG_LEVEL, service: 'hookline' });
  const say = (line: string) => process.stdout.write(`${line}\n`);

  say(env.DATABASE_URL ? 'hookline: connecting to PostgreSQL…' : `hookline: starting the embedded PostgreSQL (PGlite) in ${resolve(dataDir, 'pglite')}…`);
  const db = env.DATABASE_URL
    ? await createDb({ databaseUrl: env.DATABASE_URL, poolSize: 20 })
    : await createDb({ pgliteDir: resolve(dataDir, 'pglite') });
  const applied = await runMigrations(db.sql);
  if (applied.length) say(`hookline: applied ${applied.length} migration(s)`);

  const localRedis = await ensureRedis(env.REDIS_URL, resolve(dataDir, 'redis'));
  if (localRedis.child) say(`hookline: started redis-server for this process (data in ${resolve(dataDir, 'redis')})`);

  const producer = createRedis(env.REDIS_URL, 'producer');
  const queue = createDeliveryQueue(producer, env.QUEUE_PREFIX);
  const metrics = createMetrics({ app: 'hookline' });
  const workerConnection = createRedis(env.REDIS_URL, 'worker');
  const worker = createWorker({
    db,
    connection: workerConnection,
    prefix: env.QUEUE_PREFIX,
    logger,
    metrics,
    secretBox,
    config: env,
    lockDurationMs: env.WORKER_LOCK_DURATION,
    stalledIntervalMs: env.WORKER_STALLED_INTERVAL,
  });

  const app = createApp({
    db,
    redis: producer,
    queue,
    logger,
    metrics,
    secretBox,
    config: { ...env, PLATFORM_TOKEN: platformToken, SESSION_SECRET: env.SESSION_SECRET ?? dev.SESSION_SECRET },
  });

  await serveUntilSignal(app, {
    port: env.PORT,
    logger,
    onListening(port) {
      const base = `http://127.0.0.1:${port}`;
      say('');
      say(`Hookline is running at ${base}`);
      say(`  Platform token:  ${platformToken}${env.PLATFORM_TOKEN ? '' : `  (generated, kept in ${resolve(dataDir, 'secrets.json')})`}`);
      say(`  Dashboard:       ${base}/dashboard`);
      say(`  API docs:        ${base}/docs`);
      say(`  Admin view:      ${env.ADMIN_PASSWORD ? `${base}/admin/queues  (user admin, password from ADMIN_PASSWORD)` : 'off — set ADMIN_PASSWORD to enable /admin/queues'}`);
      say('  Create an account:');
      say(`    curl -s -X POST ${base}/internal/v1/accounts -H "Authorization: Bearer ${platformToken}" -H "Content-Type: application/json" -d '{"name":"Acme"}'`);
      say('Press Ctrl-C to stop.');
    },
    async onClose() {
      await worker.close();
      await queue.close().catch(() => undefined);
      producer.disconnect();
      workerConnection.disconnect();
      await db.close();
      await localRedis.stop();
    },
  });
}

main().catch((err: Error) => {
  process.stderr.write(`hookline: could not start: ${err.message}\n`);
  process.exit(1);
});
