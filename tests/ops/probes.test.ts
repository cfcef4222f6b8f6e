import request from 'supertest';
import { createApp } from '@hookline/api';
import { createDb, type Db } from '@hookline/db';
import { newId } from '@hookline/domain';
import { createDeliveryQueues, enqueueDeliveries, redisOptions, DELIVERY_QUEUE } from '@hookline/queue';
import IORedis from 'ioredis';
import { startApiHarness, type ApiHarness } from '../support/api-harness';

// /healthz, /readyz and /metrics of the API, on a real database and Redis,
// and with each of them made unreachable (closed ports).

const CLOSED_DB_URL = 'postgresql://postgres@127.0.0.1:1/hookline_down';
const CLOSED_REDIS_URL = 'redis://127.0.0.1:1';

/** Parses Prometheus text exposition into samples. */
function parseExposition(text: string) {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

describe('API probes and metrics', () => {
  let h: ApiHarness;
  let downDb: Db;
  let downRedis: IORedis;

  beforeAll(async () => {
    h = await startApiHarness();
    downDb = await createDb({ databaseUrl: CLOSED_DB_URL, poolSize: 1 });
    // A producer connection to a closed port that gives up instead of retrying, so no reconnect timer outlives the file.
    downRedis = new IORedis(CLOSED_REDIS_URL, { ...redisOptions('producer'), retryStrategy: () => null });
    downRedis.on('error', () => undefined);
  });
  afterAll(async () => {
    // It ended on its own (no retries); disconnecting an ended client would start a 2 s timer for nothing.
    if (downRedis.status !== 'end') downRedis.disconnect();
    await downDb.close().catch(() => undefined);
    await h.close();
  });

  it('/healthz answers 200 while the process lives', async () => {
    const res = await request(h.app).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 when PostgreSQL and Redis answer', async () => {
    const res = await request(h.app).get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', checks: { postgres: 'up', redis: 'up' } });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('/readyz answers 503 naming PostgreSQL when the database is unreachable', async () => {
    const app = createApp({ ...h.deps, db: downDb });
    const res = await request(app).get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('SERVICE_UNAVAILABLE');
    expect(res.body.error.message).toMatch(/PostgreSQL/);
    expect(res.body.error.message).not.toMatch(/Redis/);
    expect(res.body.checks).toEqual({ postgres: 'down', redis: 'up' });
  });

  it('/readyz answers 503 naming Redis when Redis is unreachable', async () => {
    const app = createApp({ ...h.deps, redis: downRedis });
    const res = await request(app).get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body.error).toEqual({ code: 'SERVICE_UNAVAILABLE', message: expect.stringMatching(/^Redis is unreachable/) });
    expect(res.body.checks).toEqual({ postgres: 'up', redis: 'down' });
  });

  it('/readyz names both when both are down, and /healthz still answers 200', async () => {
    const app = createApp({ ...h.deps, db: downDb, redis: downRedis });
    const ready = await request(app).get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.error.message).toMatch(/PostgreSQL and Redis are unreachable/);
    expect(ready.body.checks).toEqual({ postgres: 'down', redis: 'down' });
    expect((await request(app).get('/healthz')).status).toBe(200);
  });

  it('/metrics exposes the hookline_* metrics and fills the queue depth gauge at scrape time', async () => {
    await enqueueDeliveries(h.queue, [newId('delivery'), newId('delivery')]);
    await enqueueDeliveries(h.queue, [newId('delivery')], { delayMs: 60_000 });
    h.deps.metrics.attempts.inc({ outcome: 'failed', status_class: '5xx', error: 'none' });

    const res = await request(h.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      'hookline_attempts_total', 'hookline_deliveries_total', 'hookline_attempt_duration_seconds',
      'hookline_event_to_delivery_seconds', 'hookline_queue_jobs', 'hookline_events_accepted_total',
      'hookline_webhook_circuits', 'hookline_circuit_transitions_total', 'hookline_deliveries_held_total',
    ]) {
      expect(res.text).toContain(`# TYPE ${name} `);
    }
    const depth = parseExposition(res.text).filter((s) => s.name === 'hookline_queue_jobs');
    const byState = Object.fromEntries(depth.map((s) => [s.labels.state, s.value]));
    // First attempts wait in BullMQ's prioritized set (ahead of retries, behind woken held deliveries).
    expect(byState).toEqual({ waiting: 0, prioritized: 2, delayed: 1, active: 0, failed: 0 });
    expect(new Set(depth.map((s) => s.labels.queue))).toEqual(new Set([DELIVERY_QUEUE]));
  });

  it('/metrics counts open and half-open circuits from PostgreSQL at scrape time', async () => {
    const { accountId } = await h.integrator({ plan: 'pro', mode: 'test' });
    const prisma = h.database.db.prisma;
    const make = (circuit: string, deletedAt: Date | null = null) =>
      prisma.webhook.create({
        data: { id: newId('webhook'), accountId, url: `https://example.com/${newId('webhook')}`, events: ['quota.warning'], signingSecretEnc: 'x', circuit, deletedAt },
      });
    await make('open');
    await make('open');
    await make('half_open');
    await make('closed');
    await make('open', new Date());
    const res = await request(h.app).get('/metrics');
    const circuits = Object.fromEntries(parseExposition(res.text).filter((s) => s.name === 'hookline_webhook_circuits').map((s) => [s.labels.state, s.value]));
    expect(circuits).toEqual({ open: 2, half_open: 1 });
  });

  it('/metrics label values are bounded: no ids, URLs or free text', async () => {
    const res = await request(h.app).get('/metrics');
    const samples = parseExposition(res.text).filter((s) => s.name.startsWith('hookline_'));
    expect(samples.length).toBeGreaterThan(0);
    const allowedLabels = new Set(['app', 'queue', 'state', 'outcome', 'status_class', 'error', 'event', 'le', 'shard']);
    for (const sample of samples) {
      for (const [label, value] of Object.entries(sample.labels)) {
        expect(allowedLabels).toContain(label);
        expect(value).not.toMatch(/^(acct|key|wh|evt|dlv|att|ext)_|:\/\/|\s/);
        expect(value.length).toBeLessThanOrEqual(64);
      }
    }
  });

  it('/metrics still answers 200 when Redis is down, without the queue gauge', async () => {
    const downQueue = createDeliveryQueues(downRedis, h.prefix, 1);
    try {
      const app = createApp({ ...h.deps, redis: downRedis, queue: downQueue });
      const started = Date.now();
      const res = await request(app).get('/metrics');
      expect(res.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(res.text).toContain('# TYPE hookline_attempts_total counter');
      expect(parseExposition(res.text).filter((s) => s.name === 'hookline_queue_jobs')).toEqual([]);
      // Nor the lag: a stale 0 would hold an autoscaler still.
      expect(parseExposition(res.text).filter((s) => s.name === 'hookline_delivery_lag_seconds')).toEqual([]);
    } finally {
      await downQueue.close().catch(() => undefined);
    }
  });
});
