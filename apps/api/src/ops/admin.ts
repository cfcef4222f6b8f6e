import { dirname } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import { Router, type RequestHandler } from 'express';
import { AppError } from '@hookline/domain';
import { ALL_QUEUES, DELIVERY_QUEUE } from '@hookline/queue';
import type { ApiDeps } from '../deps';
import { safeEqual } from '../middleware/auth';
import { failureLimiter, tooManyFailures, type FailureLimitDeps } from '../middleware/failure-limit';

export const ADMIN_QUEUES_PATH = '/admin/queues';
const ADMIN_USER = 'admin';

/**
 * HTTP Basic auth for the admin view: user `admin`, password ADMIN_PASSWORD.
 * User and password are both compared in constant time, and both always are,
 * so the answer's timing tells nothing about which one was wrong. Wrong Basic
 * credentials are counted per client address (failure-limit.ts): past the
 * budget a wrong password gets 429 RATE_LIMITED with Retry-After (no Basic
 * challenge) until the window ends. The right password always gets in.
 */
export function requireAdminPassword(deps: FailureLimitDeps, password: string): RequestHandler {
  const challenge = { 'WWW-Authenticate': 'Basic realm="Hookline admin", charset="UTF-8"' };
  const unauthorized = () => new AppError('UNAUTHORIZED', 'The admin view needs HTTP Basic credentials: user "admin" and the ADMIN_PASSWORD of this deployment.', undefined, challenge);
  const failures = failureLimiter(deps, 'auth-fail:admin');
  return async (req, _res, next) => {
    try {
      const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.get('authorization') ?? '');
      // No Basic credentials (a browser's first request) is not a guess: just the challenge.
      if (!match) return next(unauthorized());
      const decoded = Buffer.from(match[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const user = colon >= 0 ? decoded.slice(0, colon) : '';
      const given = colon >= 0 ? decoded.slice(colon + 1) : '';
      const userOk = safeEqual(user, ADMIN_USER);
      const passwordOk = safeEqual(given, password);
      if (userOk && passwordOk) return next();
      const waitSeconds = await failures.fail(req);
      next(waitSeconds > 0 ? tooManyFailures('admin passwords', waitSeconds) : unauthorized());
    } catch (err) {
      next(err);
    }
  };
}

/**
 * Browsers replay Basic credentials on cross-site requests, so a page elsewhere
 * could make an admin's browser pause or empty a queue. Bull Board changes
 * state only with non-GET requests: those must come from this origin.
 */
const sameOriginWrites: RequestHandler = (req, _res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD') return next();
  const site = req.get('sec-fetch-site');
  const origin = req.get('origin');
  const crossSite = (site !== undefined && site !== 'same-origin' && site !== 'none')
    || (origin !== undefined && origin !== `${req.protocol}://${req.get('host')}`);
  if (crossSite) return next(new AppError('FORBIDDEN', 'Admin actions must come from the admin page itself.'));
  next();
};

/**
 * Bull Board's page links a web font from fonts.googleapis.com; the page works
 * without it, and dropping the link keeps the admin view free of third-party
 * requests (offline, air-gapped, and no admin IP sent to a CDN).
 */
const stripExternalFonts: RequestHandler = (req, res, next) => {
  if (req.method !== 'GET' || req.path.startsWith('/api/') || req.path.startsWith('/static/')) return next();
  const send = res.send.bind(res);
  res.send = (body?: unknown) => send(typeof body === 'string' ? body.replace(/<link[^>]+href="https:\/\/fonts\.(googleapis|gstatic)\.com[^>]*>\s*/g, '') : body);
  next();
};

/**
 * Bull Board over every queue of ALL_QUEUES — the delivery queue as each of its
 * shards — or null when ADMIN_PASSWORD is unset (the route does not exist
 * then). Queues need the deployment's QUEUE_PREFIX: without it the board would
 * show empty queues under the default.
 */
export function createAdminRouter(deps: Pick<ApiDeps, 'config' | 'queue' | 'redis' | 'logger'>): Router | null {
  const password = deps.config.ADMIN_PASSWORD;
  if (!password) return null;

  // The delivery shards are the app's own (right prefixes, shared connection). A
  // future queue gets its own Queue on the same producer connection; BullMQ
  // does not close a connection it was given, so nothing leaks on shutdown.
  const queues = ALL_QUEUES.flatMap((name) =>
    name === DELIVERY_QUEUE ? deps.queue.shards : [new Queue(name, { connection: deps.redis, prefix: deps.config.QUEUE_PREFIX })],
  );

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue as Queue)),
    serverAdapter,
    options: {
      // Served from node_modules by the express adapter: no CDN. The UI package is
      // @bull-board/api's own dependency, so it is looked up from there.
      uiBasePath: dirname(require.resolve('@bull-board/ui/package.json', { paths: [dirname(require.resolve('@bull-board/api'))] })),
      uiConfig: { boardTitle: 'Hookline queues' },
    },
  });

  const router = Router();
  router.use(ADMIN_QUEUES_PATH, requireAdminPassword(deps, password), sameOriginWrites, stripExternalFonts, serverAdapter.getRouter() as RequestHandler);
  return router;
}
