import { Router } from 'express';
import { checkReadiness, refreshCircuits, refreshQueueDepth } from '@hookline/metrics';
import { countCircuits } from '@hookline/db';
import { probeRedis } from '@hookline/queue';
import type { ApiDeps } from '../deps';
import { getOpenApiDocument } from '../openapi';
import { createAdminRouter } from '../ops/admin';
import { createDocsRouter } from '../ops/docs';

/**
 * Operations endpoints (docs/api.md#pages-and-operations): probes, metrics, the OpenAPI
 * document and its page, and the queue admin view. Mounted before everything
 * else and without authentication, except the admin view; none of them reveal
 * a secret, an id or a URL.
 */
export function createOpsRouter(deps: ApiDeps): Router {
  const router = Router();

  // Liveness only: a database outage must not make an orchestrator restart a healthy process.
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const readiness = await checkReadiness({ postgres: () => deps.db.ping(), redis: () => probeRedis(deps.redis) });
    res.set('Cache-Control', 'no-store');
    if (readiness.ready) return void res.json({ status: 'ready', checks: readiness.checks });
    res.status(503).json({ error: { code: 'SERVICE_UNAVAILABLE', message: readiness.message }, checks: readiness.checks });
  });

  router.get('/metrics', async (_req, res, next) => {
    try {
      await Promise.all([refreshQueueDepth(deps.metrics, [deps.queue]), refreshCircuits(deps.metrics, () => countCircuits(deps.db.sql))]);
      const text = await deps.metrics.registry.metrics();
      res.set('Cache-Control', 'no-store').type(deps.metrics.registry.contentType).send(text);
    } catch (err) {
      next(err);
    }
  });

  router.get('/openapi.json', (_req, res) => {
    res.json(getOpenApiDocument());
  });
  router.use(createDocsRouter());

  const admin = createAdminRouter(deps);
  if (admin) router.use(admin);

  return router;
}
