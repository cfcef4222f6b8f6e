import { createLogger } from '@hookline/config';
import { createDb, type Db } from '@hookline/db';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { newId } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import { createDeliveryQueue, createRedis, enqueueDeliveries, type DeliveryQueue } from '@hookline/queue';
import type IORedis from 'ioredis';
import { startHealthServer, type HealthServer } from '../../apps/worker/src/health-server';
import { cleanPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/api-harness';

// The worker's health port: /healthz, /readyz and /metrics over node:http,
// against the real PostgreSQL and Redis (and a database on a closed port).

const logger = createLogger({ level: 'error', service: 'health-test', silent: true });

describe('worker health server', () => {
  let database: TestDatabase;
  let redis: IORedis;
  let queue: DeliveryQueue;
  let prefix: string;
  let server: HealthServer;
  let base: string;
  const metrics = createMetrics({ app: 'worker-test' });

  beforeAll(async () => {
    database = await createTestDatabase();
    prefix = uniquePrefix('health');
    redis = createRedis(TEST_REDIS_URL, 'producer');
    queue = createDeliveryQueue(redis, prefix);
    server = await startHealthServer({ port: 0, db: database.db, redis, metrics, queues: [queue], logger });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await cleanPrefix(redis, prefix);
    redis.disconnect();
    await database.drop();
  });

  it('listens on the port it was given (0: any free port) and answers /healthz', async () => {
    expect(server.port).toBeGreaterThan(0);
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 with both checks up', async () => {
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ status: 'ready', checks: { postgres: 'up', redis: 'up' } });
  });

  it('/metrics serves process metrics, the hookline_* metrics and the queue depth', async () => {
    await enqueueDeliveries(queue, [newId('delivery')], { delayMs: 60_000 });
    metrics.deliveries.inc({ outcome: 'succeeded' });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toMatch(/^hookline_deliveries_total\{outcome="succeeded",app="worker-test"\} 1$/m);
    expect(text).toMatch(/^hookline_queue_jobs\{queue="hookline-deliveries",state="delayed",app="worker-test"\} 1$/m);
    expect(text).toMatch(/^hookline_queue_jobs\{queue="hookline-deliveries",state="waiting",app="worker-test"\} 0$/m);
  });

  it('answers anything else with a 404 envelope', async () => {
    const res = await fetch(`${base}/v1/webhooks`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RESOURCE_NOT_FOUND');
    const post = await fetch(`${base}/healthz`, { method: 'POST' });
    expect(post.status).toBe(404);
  });

  it('/readyz answers 503 naming PostgreSQL when the database is on a closed port', async () => {
    const downDb: Db = await createDb({ databaseUrl: 'postgresql://postgres@127.0.0.1:1/x', poolSize: 1 });
    const down = await startHealthServer({ port: 0, db: downDb, redis, metrics, queues: [queue], logger });
    try {
      const res = await fetch(`http://127.0.0.1:${down.port}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string }; checks: unknown };
      expect(body.error.code).toBe('SERVICE_UNAVAILABLE');
      expect(body.error.message).toMatch(/^PostgreSQL is unreachable/);
      expect(body.checks).toEqual({ postgres: 'down', redis: 'up' });
      // Liveness does not depend on the database.
      expect((await fetch(`http://127.0.0.1:${down.port}/healthz`)).status).toBe(200);
    } finally {
      await down.close();
      await downDb.close().catch(() => undefined);
    }
  });

  it('close() frees the port, even with a keep-alive connection open', async () => {
    const extra = await startHealthServer({ port: 0, db: database.db, redis, metrics, queues: [queue], logger });
    const res = await fetch(`http://127.0.0.1:${extra.port}/healthz`, { headers: { connection: 'keep-alive' } });
    expect(res.status).toBe(200);
    await extra.close();
    await expect(fetch(`http://127.0.0.1:${extra.port}/healthz`)).rejects.toThrow();
  });
});
