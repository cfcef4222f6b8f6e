import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@hookline/config';
import { countCircuits, type Db } from '@hookline/db';
import { checkReadiness, refreshCircuits, refreshQueueDepth, type Metrics } from '@hookline/metrics';
import { probeRedis, type DeliveryQueue } from '@hookline/queue';
import type IORedis from 'ioredis';

// The worker has no API port, so orchestrators probe and Prometheus scrapes it
// here: /healthz (the process lives), /readyz (PostgreSQL and Redis answer),
// /metrics. Same semantics and bodies as the API's endpoints.

export type HealthServerOptions = { port: number; host?: string; db: Db; redis: IORedis; metrics: Metrics; queue: DeliveryQueue; logger: Logger };
export type HealthServer = { port: number; close(): Promise<void> };

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const { db, redis, metrics, queue, logger } = opts;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendJson(res, 404, { error: { code: 'RESOURCE_NOT_FOUND', message: `No route ${req.method} ${path}; this port serves GET /healthz, /readyz and /metrics.` } });
    }
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const readiness = await checkReadiness({ postgres: () => db.ping(), redis: () => probeRedis(redis) });
      if (readiness.ready) return sendJson(res, 200, { status: 'ready', checks: readiness.checks });
      return sendJson(res, 503, { error: { code: 'SERVICE_UNAVAILABLE', message: readiness.message }, checks: readiness.checks });
    }
    if (path === '/metrics') {
      await Promise.all([refreshQueueDepth(metrics, [queue]), refreshCircuits(metrics, () => countCircuits(db.sql))]);
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
      res.end(text);
      return;
    }
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
  logger.info('health server listening', { port });

  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
