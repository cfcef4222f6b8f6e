import { Writable } from 'node:stream';
import express, { Router } from 'express';
import request from 'supertest';
import { createLogger } from '@hookline/config';
import { createRedis } from '@hookline/queue';
import { createApp } from '@hookline/api';
import { errorHandler } from '../src/middleware/errors';
import { rateLimit } from '../src/middleware/rate-limit';
import { v1Auth } from '../src/middleware/v1-auth';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';

// Per-API-key limit of RATE_LIMIT_PER_MINUTE, counted in Redis (shared by replicas).

const LIMIT = 5;
let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness({ config: { RATE_LIMIT_PER_MINUTE: LIMIT } });
});
afterAll(() => h.close());

describe('rate limit on /v1', () => {
  it(`allows ${LIMIT} requests a minute per key, then 429 RATE_LIMITED with Retry-After`, async () => {
    const account = await h.integrator();
    for (let i = 0; i < LIMIT; i++) expect((await request(h.app).get('/v1/webhooks').set(account.auth)).status).toBe(200);
    const res = await request(h.app).get('/v1/webhooks').set(account.auth);
    expect(res.status).toBe(429);
    expect(res.body).toEqual({ error: { code: 'RATE_LIMITED', message: expect.stringMatching(/retry in \d+ s/) } });
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Every /v1 route shares the budget, writes included.
    expect((await request(h.app).get('/v1/event-types').set(account.auth)).status).toBe(429);
    const post = await request(h.app).post('/v1/webhooks').set(account.auth).send({ url: 'https://x.example/rl', events: ['quota.warning'] });
    expect(post.status).toBe(429);
    expect(await h.database.db.prisma.webhook.count({ where: { accountId: account.accountId } })).toBe(0);
  });

  it('counts per key: another key, even of the same account, has its own budget', async () => {
    const account = await h.integrator();
    const second = await h.createApiKey(account.accountId);
    for (let i = 0; i <= LIMIT; i++) await request(h.app).get('/v1/event-types').set(account.auth);
    expect((await request(h.app).get('/v1/event-types').set(account.auth)).status).toBe(429);
    expect((await request(h.app).get('/v1/event-types').set('X-API-Key', second.key)).status).toBe(200);
  });

  it('holds across API replicas sharing Redis', async () => {
    const account = await h.integrator();
    const replicas = [h.app, createApp(h.deps), createApp(h.deps)];
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 3; i++) {
      statuses.push((await request(replicas[i % replicas.length]).get('/v1/event-types').set(account.auth)).status);
    }
    expect(statuses).toEqual([...Array(LIMIT).fill(200), 429, 429, 429]);
  });

  it('refuses unauthenticated requests with 401 without touching any budget', async () => {
    for (let i = 0; i < LIMIT + 2; i++) expect((await request(h.app).get('/v1/webhooks')).status).toBe(401);
  });

  it('does not limit the platform API', async () => {
    for (let i = 0; i < LIMIT + 2; i++) expect((await h.platform.post('/internal/v1/accounts', { name: `rl ${i}` })).status).toBe(201);
  });
});

describe('rateLimit middleware', () => {
  it('counts a request once even when two routers apply it', async () => {
    const account = await h.integrator();
    const app = express();
    const first = Router();
    const second = Router();
    first.get('/other', ...v1Auth(h.deps), (_req, res) => {
      res.json({ from: 'first' });
    });
    // A request that passes through the first router's chain and is answered by the second.
    first.use(...v1Auth(h.deps));
    second.get('/thing', ...v1Auth(h.deps), (_req, res) => {
      res.json({ ok: true });
    });
    app.use('/v1', first, second);
    app.use(errorHandler(h.logger));
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 1; i++) statuses.push((await request(app).get('/v1/thing').set(account.auth)).status);
    expect(statuses).toEqual([...Array(LIMIT).fill(200), 429]);
  });

  it('lets requests through (and logs a warning) when Redis is unreachable', async () => {
    const lines: string[] = [];
    const stream = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
    const logger = createLogger({ level: 'warn', service: 'rl-test', stream });
    const deadRedis = createRedis('redis://127.0.0.1:1', 'producer');
    try {
      const account = await h.integrator();
      const app = createApp({ ...h.deps, redis: deadRedis, logger });
      for (let i = 0; i < LIMIT + 2; i++) expect((await request(app).get('/v1/event-types').set(account.auth)).status).toBe(200);
      expect(lines.join('')).toContain('rate limit unavailable');
      expect(lines.join('')).not.toContain(account.key);
    } finally {
      deadRedis.disconnect();
    }
  });

  it('keeps its keys under the queue prefix and never stores the API key itself', async () => {
    const account = await h.integrator();
    await request(h.app).get('/v1/event-types').set(account.auth);
    const keys = await h.redis.keys(`${h.prefix}:ratelimit*`);
    expect(keys).toContain(`${h.prefix}:ratelimit:${account.keyId}`);
    expect(keys.join(' ')).not.toContain(account.key);
  });

  it('passes requests without an authenticated key on', async () => {
    const app = express();
    app.get('/open', rateLimit(h.deps), (_req, res) => {
      res.json({ ok: true });
    });
    for (let i = 0; i < LIMIT + 2; i++) expect((await request(app).get('/open')).status).toBe(200);
  });
});
