import express, { type Express, type Request, type RequestHandler } from 'express';
import { AppError } from '@hookline/domain';
import helmet from 'helmet';
import type { ApiDeps } from './deps';
import { errorHandler, notFoundHandler } from './middleware/errors';
import { requestLog } from './middleware/request-log';
import { mountRoutes } from './routes/define';
import { INTEGRATOR_ROUTES, OPS_ROUTES, PLATFORM_ROUTES } from './routes';
import { createOpsPagesRouter } from './routes/ops';
import { createDashboardRouter } from './dashboard/router';
import { createListenHub, type ListenHub } from './listen/hub';

export type { ApiDeps } from './deps';

/**
 * No CORS is offered (the API is for servers; the dashboard is same-origin), so
 * OPTIONS is a method like PUT that no route has: the 404 envelope, instead of
 * Express's automatic text/plain list of methods. The dashboard keeps its own pages.
 */
const refuseOptions: RequestHandler = (req, _res, next) => {
  if (req.method !== 'OPTIONS' || /^\/dashboard(\/|$)/.test(req.path)) return next();
  next(new AppError('RESOURCE_NOT_FOUND', `No route OPTIONS ${req.path}: Hookline offers no CORS; call the API from a server, not from a browser. See /docs for the API.`));
};

/**
 * The HTTP app, built from plain dependencies (no DI container): main.ts, the
 * standalone process and every test build the same app.
 * The API never sends a callback: it writes rows and enqueues jobs.
 */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  // `hookline listen` sockets are upgrades of the HTTP server, not Express routes: the server
  // created for this app (createHttpServer) serves them; until then the hub holds nothing.
  // An upgrade is no Express request: its client address is read through the app's request
  // prototype, so it is req.ip as for every route (under 'trust proxy' below).
  app.locals[LISTEN_HUB] = createListenHub(deps, (req) => (Object.create(app.request, { headers: { value: req.headers }, socket: { value: req.socket } }) as Request).ip);
  app.disable('x-powered-by');
  // Default: no proxy is trusted, so X-Forwarded-For cannot choose a client's address (docs/security.md).
  app.set('trust proxy', deps.config.TRUST_PROXY ?? false);
  app.set('query parser', 'simple');
  app.use(requestLog(deps.logger));
  app.use(helmet({ contentSecurityPolicy: false, crossOriginEmbedderPolicy: false }));

  app.use(refuseOptions);

  // Operations first, without authentication: probes, metrics, /openapi.json, then /docs and the admin view.
  app.use(mountRoutes(deps, '', OPS_ROUTES), createOpsPagesRouter(deps));
  app.use('/dashboard', createDashboardRouter(deps));

  // Each route reads its JSON body only after its credentials are checked (mountRoutes).
  app.use('/internal/v1', mountRoutes(deps, '/internal/v1', PLATFORM_ROUTES));
  app.use('/v1', mountRoutes(deps, '/v1', INTEGRATOR_ROUTES));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}

const LISTEN_HUB = 'hooklineListenHub';

/** The app's `hookline listen` hub (createHttpServer attaches it to the server, shutdown closes it). */
export const listenHubOf = (app: Express): ListenHub | undefined => app.locals[LISTEN_HUB] as ListenHub | undefined;
