import { randomBytes } from 'node:crypto';
import request from 'supertest';
import type { Express } from 'express';
import { createLogger, type Logger } from '@hookline/config';
import { createTestDatabase, type TestDatabase } from './test-database';
import { createSecretBox } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import { createDeliveryQueues, createRedis, shardCount, type DeliveryQueue, type DeliveryQueues, type RedisClient, type RedisTarget } from '@hookline/queue';
import { createApp, type ApiDeps } from '@hookline/api';

// Builds the real API on a fresh PostgreSQL database and a unique BullMQ
// prefix on the machine's Redis; close() drops both.

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export type ApiHarness = {
  app: Express;
  deps: ApiDeps;
  database: TestDatabase;
  /** Shard 0 (the only one unless `shards` was given, or on a cluster). */
  queue: DeliveryQueue;
  /** Every delivery queue shard. */
  queues: DeliveryQueues;
  redis: RedisClient;
  prefix: string;
  platformToken: string;
  encryptionKey: Buffer;
  logger: Logger;
  /** supertest bound to the platform API with its bearer token */
  platform: { post(path: string, body?: unknown): request.Test; delete(path: string): request.Test };
  createAccount(body?: Record<string, unknown>): Promise<{ id: string }>;
  createApiKey(accountId: string, mode?: 'live' | 'test'): Promise<{ id: string; key: string }>;
  /** An account with a key, ready to call /v1. */
  integrator(opts?: { plan?: string; mode?: 'live' | 'test' }): Promise<{ accountId: string; key: string; keyId: string; auth: { Authorization: string } }>;
  close(): Promise<void>;
};

export function uniquePrefix(label = 't'): string {
  return `hl-test-${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export type ApiHarnessOptions = {
  logger?: Logger;
  config?: Partial<ApiDeps['config']>;
  redisUrl?: string;
  /** Another Redis topology (a test's own cluster or Sentinel); wins over redisUrl. */
  redis?: RedisTarget;
  /** DELIVERY_QUEUE_SHARDS; default: the topology's (1, or 16 on a cluster). */
  shards?: number;
};

export async function startApiHarness(opts: ApiHarnessOptions = {}): Promise<ApiHarness> {
  const database = await createTestDatabase();
  const prefix = uniquePrefix('api');
  const redis = createRedis(opts.redis ?? opts.redisUrl ?? TEST_REDIS_URL, 'producer');
  const queues = createDeliveryQueues(redis, prefix, opts.shards ?? shardCount(undefined, redis));
  const queue = queues.shards[0];
  const platformToken = `pt_${randomBytes(24).toString('hex')}`;
  const encryptionKey = randomBytes(32);
  const logger = opts.logger ?? createLogger({ level: 'error', service: 'api-test', silent: !process.env.TEST_LOGS });
  const deps: ApiDeps = {
    db: database.db,
    redis,
    queue: queues,
    logger,
    metrics: createMetrics({ app: 'api-test', defaultMetrics: false }),
    secretBox: createSecretBox(encryptionKey),
    // Private targets allowed, as for the test worker: the tests' receivers listen on 127.0.0.1.
    config: { PLATFORM_TOKEN: platformToken, RATE_LIMIT_PER_MINUTE: 100_000, QUEUE_PREFIX: prefix, NODE_ENV: 'test', ALLOW_PRIVATE_TARGETS: true, ...opts.config },
  };
  const app = createApp(deps);
  const bearer = { Authorization: `Bearer ${platformToken}` };

  const harness: ApiHarness = {
    app,
    deps,
    database,
    queue,
    queues,
    redis,
    prefix,
    platformToken,
    encryptionKey,
    logger,
    platform: {
      post: (path, body) => request(app).post(path).set(bearer).send(body as object),
      delete: (path) => request(app).delete(path).set(bearer),
    },
    async createAccount(body = {}) {
      const res = await harness.platform.post('/internal/v1/accounts', { name: 'Acme', ...body });
      if (res.status !== 201) throw new Error(`create account: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.account;
    },
    async createApiKey(accountId, mode = 'test') {
      const res = await harness.platform.post(`/internal/v1/accounts/${accountId}/api-keys`, { mode });
      if (res.status !== 201) throw new Error(`create key: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.api_key;
    },
    async integrator(o = {}) {
      const account = await harness.createAccount({ plan: o.plan ?? 'pro' });
      const key = await harness.createApiKey(account.id, o.mode ?? 'test');
      return { accountId: account.id, key: key.key, keyId: key.id, auth: { Authorization: `Bearer ${key.key}` } };
    },
    async close() {
      await Promise.all(queues.shards.map((shard) => shard.obliterate({ force: true }).catch(() => undefined)));
      await queues.close().catch(() => undefined);
      await cleanPrefix(redis, prefix);
      redis.disconnect();
      await database.drop();
    },
  };
  return harness;
}

/** Deletes every Redis key under a BullMQ prefix (and the rate limiter's; on one server: a cluster's shards carry a hash tag). */
export async function cleanPrefix(redis: RedisClient, prefix: string): Promise<void> {
  // A producer connection fails commands at once until it is connected: wait for it (briefly),
  // or a cleanup right after createRedis would silently clean nothing.
  if (redis.status !== 'ready') {
    await new Promise<void>((ready) => {
      const timer = setTimeout(ready, 2_000);
      redis.once('ready', () => {
        clearTimeout(timer);
        ready();
      });
    });
  }
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } catch {
    // Redis may be the one a fault test stopped; nothing to clean then.
  }
}
