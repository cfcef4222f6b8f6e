import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@hookline/config';
import { countCircuits, type Db } from '@hookline/db';
import { createProbeAnswers, type Metrics, type ProbeAnswer } from '@hookline/metrics';
import { probeRedis, shardIndexOf, shardLagSeconds, type DeliveryQueue, type RedisClient } from '@hookline/queue';
import type { OutageState } from './outage';

// The worker has no API port, so orchestrators probe and Prometheus scrapes it
// here: /healthz (the process lives), /readyz (PostgreSQL and Redis answer),
// /metrics. The answers are the API's own: both take them from @hookline/metrics.

export type HealthServerOptions = {
  port: number;
  /** WORKER_HEALTH_HOST; Node's default (every interface) when left out. */
  host?: string;
  db: Db;
  redis: RedisClient;
  metrics: Metrics;
  /** Every shard served. */
  queues: readonly DeliveryQueue[];
  /** The worker's delivery slots, busy and in all (hookline_worker_slots_busy_ratio). */
  slots?: () => { busy: number; total: number };
  logger: Logger;
  /** The outage the worker is waiting out (outage.ts): /readyz names it while it lasts. */
  outage?: () => OutageState;
};
export type HealthServer = { port: number; close(): Promise<void> };

function send(res: ServerResponse, answer: ProbeAnswer): void {
  res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
  res.end(answer.body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, { status, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, body: JSON.stringify(body) });
}

export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const { db, redis, metrics, queues, logger } = opts;
  const probes = createProbeAnswers({
    postgres: () => db.ping(),
    redis: () => probeRedis(redis),
    metrics,
    queues,
    countCircuits: () => countCircuits(db.sql),
    lag: queues.map((shard) => ({ shard: shardIndexOf(shard), read: () => shardLagSeconds(redis, shard) })),
    slots: opts.slots,
    // While an outage lasts: which service, since when, and that this worker takes no jobs meanwhile.
    readyDetail: () => {
      const outage = opts.outage?.();
      if (!outage?.since) return {};
      return { outage: { down: outage.down, since: new Date(outage.since).toISOString(), taking_jobs: false } };
    },
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendJson(res, 404, { error: { code: 'RESOURCE_NOT_FOUND', message: `No route ${req.method} ${path}; this port serves GET /healthz, /readyz and /metrics.` } });
    }
    if (path === '/healthz') return send(res, probes.healthz());
    if (path === '/readyz') return send(res, await probes.readyz());
    if (path === '/metrics') return send(res, await probes.metrics());
    sendJson(res, 404, { error: { code: 'RESOURCE_NOT_FOUND', message: `No route GET ${path}; this port serves /healthz, /readyz and /metrics.` } });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error('health server request failed', { path: req.url, err });
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL_ERROR', message: 'Something went wrong on our side.' } });
      else res.end();
    });
  });
  // Probes are short; a stuck client must not keep the worker from shutting down.
  server.keepAliveTimeout = 5_000;
  server.requestTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  logger.info('health server listening', { host: opts.host ?? '::', port });

  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
