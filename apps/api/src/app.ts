import express, { type Express } from 'express';
import helmet from 'helmet';
import type { ApiDeps } from './deps';
import { errorHandler, notFoundHandler } from './middleware/errors';
import { jsonBody } from './middleware/json-body';
import { requestLog } from './middleware/request-log';
import { mountRoutes } from './routes/define';
import { INTEGRATOR_ROUTES, OPS_ROUTES, PLATFORM_ROUTES } from './routes';
import { createOpsPagesRouter } from './routes/ops';
import { createDashboardRouter } from './dashboard/router';

export type { ApiDeps } from './deps';

/**
 * The HTTP app, built from plain dependencies (no DI container): main.ts, the
 * standalone process and every test build the same app.
 * The API never sends a callback: it writes rows and enqueues jobs.
 */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.config.TRUST_PROXY ?? 'loopback');
  app.set('query parser', 'simple');
  app.use(requestLog(deps.logger));
  app.use(helmet({ contentSecurityPolicy: false, crossOriginEmbedderPolicy: false }));

  // Operations first, without authentication: probes, metrics, /openapi.json, then /docs and the admin view.
  app.use(mountRoutes(deps, '', OPS_ROUTES), createOpsPagesRouter(deps));
  app.use('/dashboard', createDashboardRouter(deps));

  app.use('/internal/v1', jsonBody, mountRoutes(deps, '/internal/v1', PLATFORM_ROUTES));
  app.use('/v1', jsonBody, mountRoutes(deps, '/v1', INTEGRATOR_ROUTES));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
