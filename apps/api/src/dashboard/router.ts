import cookieParser from 'cookie-parser';
import express, { Router, type Response } from 'express';
import type { ApiDeps } from '../deps';
import { dashboardAssets } from './assets';
import { signedIn, WEBHOOKS, type DashboardKit } from './context';
import { mountDeliveries } from './delivery-routes';
import { dashboardErrors, notFoundPage } from './error-pages';
import { cookieSecret, createSessionStore, type Flash } from './session';
import { mountSignIn } from './sign-in-routes';
import { mountWebhooks } from './webhook-routes';

// The integrator's Integrations page (docs/api.md#pages-and-operations). Server-rendered
// HTML over the same service functions as /v1, so both enforce one set of
// rules; no route queries the database itself. This router parses its own
// form bodies and renders its own errors as HTML: nothing under /dashboard
// answers with JSON envelopes or stack traces. It assembles one module per
// concern: sign-in-routes.ts (sign-in, sessions, CSRF), webhook-routes.ts,
// delivery-routes.ts and error-pages.ts.

/** Only same-origin scripts and styles; no inline code, nothing from another host. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

export function createDashboardRouter(deps: ApiDeps): Router {
  const router = Router();
  const sessions = createSessionStore(deps.redis, deps.config.QUEUE_PREFIX);

  router.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
    // Pages carry CSRF tokens and, after Reveal, a signing secret: never cache them.
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Vary', 'Cookie');
    next();
  });

  // ---- assets (before any session work: they are the same for everyone) ----
  router.use('/assets', dashboardAssets());

  router.use(cookieParser(cookieSecret(deps.config)));
  router.use(express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 }));

  // The session loader runs for every route mounted after it.
  const { requireSignedIn, requireCsrf, requirePlan, renderSignIn } = mountSignIn(router, deps, sessions);
  const kit: DashboardKit = {
    deps,
    sessions,
    page: [requireSignedIn, requirePlan],
    action: [requireSignedIn, requireCsrf, requirePlan],
    flashAndGo: async (res: Response, flash: Flash, to: string) => {
      await sessions.setFlash(signedIn(res).session.id, flash);
      res.redirect(303, to);
    },
  };

  router.get('/integrations', ...kit.page, (_req, res) => res.redirect(303, WEBHOOKS));
  mountWebhooks(router, kit);
  mountDeliveries(router, kit);

  router.use(notFoundPage);
  router.use(dashboardErrors(deps, renderSignIn));
  return router;
}
