import cookieParser from 'cookie-parser';
import express, { Router, type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { AppError, DASHBOARD_EVENT_NAMES, attemptResource, deliveryListQuery, planAllowsWebhooks, updateWebhookBody, webhookStatus, type UpdateWebhookBody } from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { authenticateApiKey } from '../middleware/auth';
import { failureLimiter } from '../middleware/failure-limit';
import { toAppError } from '../middleware/errors';
import { listDeliveries, retryDelivery } from '../services/deliveries';
import { attemptRow } from '../services/history-rows';
import { webhookHealth } from '../services/webhook-health';
import { createWebhook, deleteWebhook, getWebhook, getWebhookRow, listWebhooks, revealSigningSecret, sendTest, updateWebhook } from '../services/webhooks';
import { dashboardAssets } from './assets';
import { errorPage, planRequiredPage, signInLinkPage, signInPage } from './auth-views';
import { deliveryLogPage, type DeliveryWithAttempts } from './delivery-views';
import { editValuesOf, editWebhookPage, type EditFieldErrors, type EditFormValues } from './edit-views';
import { html, toHtmlString, type SafeHtml } from './html';
import { BASE, path, type Viewer } from './layout';
import { SESSION_COOKIE, SESSION_TTL_SECONDS, SIGN_IN_COOKIE, cookieSecret, createSessionStore, newToken, tokensMatch, type DashboardSession, type Flash } from './session';
import { peekSignInLink, takeSignInLink, type SignInGrant } from './sign-in-link';
import { addWebhookPage, confirmDeletePage, describeError, webhooksPage, type FieldErrors, type LastDelivery, type WebhookCard, type WebhookFormValues } from './webhook-views';

/** cookie-parser types signed cookies as `any`: a signed cookie is a string or absent. */
function signedCookie(req: Request, name: string): string | undefined {
  const value = (req.signedCookies as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}

// The integrator's Integrations page (docs/api.md#pages-and-operations). Server-rendered
// HTML over the same service functions as /v1, so both enforce one set of
// rules. This router parses its own form bodies and renders its own errors as
// HTML: nothing under /dashboard answers with JSON envelopes or stack traces.

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

const WEBHOOKS_PER_PAGE = 20;
const DELIVERIES_PER_PAGE = 20;
const WEBHOOKS = path('integrations', 'webhooks');

type SignedIn = {
  session: DashboardSession;
  viewer: Viewer;
  auth: { accountId: string; keyId: string; mode: 'live' | 'test'; plan: string };
};

const signedIn = (res: Response): SignedIn => {
  const ctx = res.locals.dashboard as SignedIn | undefined;
  if (!ctx) throw new AppError('UNAUTHORIZED', 'Sign in with an API key to continue.');
  return ctx;
};

function send(res: Response, status: number, body: SafeHtml): void {
  res.status(status).type('html').send(toHtmlString(body));
}

const formText = (req: Request, name: string): string => {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : '';
};

const queryText = (req: Request, name: string): string | null => {
  const value = req.query[name];
  return typeof value === 'string' && value !== '' ? value : null;
};

/** Where a form may send the browser back to: a dashboard path of this site, never another host. */
function safeReturn(target: string, fallback: string): string {
  return /^\/dashboard\/[A-Za-z0-9/_\-.?=&%]*$/.test(target) && !target.includes('//') ? target : fallback;
}

export function createDashboardRouter(deps: ApiDeps): Router {
  const router = Router();
  const sessions = createSessionStore(deps.redis, deps.config.QUEUE_PREFIX);
  const cookieOptions = (req: Request, maxAgeSeconds: number) => ({
    httpOnly: true,
    sameSite: 'strict' as const,
    signed: true,
    // Always Secure in production (a TLS-terminating proxy the app does not trust
    // would otherwise leave it off); elsewhere only over https, so http://localhost works.
    secure: req.secure || deps.config.NODE_ENV === 'production',
    path: BASE,
    maxAge: maxAgeSeconds * 1000,
  });

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

  // ---- session loading: every request re-checks that the key still works ----
  const loadSession: RequestHandler = async (req, res, next) => {
    const sid = signedCookie(req, SESSION_COOKIE);
    if (typeof sid !== 'string') return next();
    const session = await sessions.get(sid);
    if (!session) {
      res.clearCookie(SESSION_COOKIE, { path: BASE });
      return next();
    }
    // A cheap primary-key lookup: a revoked key ends every session it opened, at once.
    const key = await deps.db.prisma.apiKey.findUnique({
      where: { id: session.keyId },
      select: { revokedAt: true, mode: true, prefix: true, accountId: true, account: { select: { name: true, plan: true } } },
    });
    if (!key || key.revokedAt || key.accountId !== session.accountId) {
      await sessions.destroy(session.id);
      res.clearCookie(SESSION_COOKIE, { path: BASE });
      res.locals.sessionEnded = true;
      return next();
    }
    const mode = key.mode === 'live' ? 'live' : 'test';
    res.locals.accountId = session.accountId;
    res.locals.dashboard = {
      session,
      viewer: { accountName: key.account.name, accountId: session.accountId, keyPrefix: key.prefix, mode, csrfToken: session.csrfToken },
      auth: { accountId: session.accountId, keyId: session.keyId, mode, plan: key.account.plan },
    } satisfies SignedIn;
    next();
  };
  router.use(loadSession);

  /** The pre-session CSRF token of the sign-in forms, (re)set in its cookie. */
  const signInCsrf = (req: Request, res: Response): string => {
    const existing = signedCookie(req, SIGN_IN_COOKIE);
    const token = typeof existing === 'string' && existing.length >= 20 ? existing : newToken();
    res.cookie(SIGN_IN_COOKIE, token, cookieOptions(req, 3_600));
    return token;
  };

  /** The sign-in page, with a fresh pre-session CSRF token for its form. */
  const renderSignIn = (req: Request, res: Response, status: number, opts: { error?: string; notice?: string } = {}) => {
    send(res, status, signInPage({ csrfToken: signInCsrf(req, res), error: opts.error, notice: opts.notice }));
  };

  const sessionEndedNotice = 'Your session ended because its API key was revoked. Sign in with an active key.';

  const requireSignedIn: RequestHandler = (req, res, next) => {
    if (res.locals.dashboard) return next();
    if (res.locals.sessionEnded) return renderSignIn(req, res, 401, { notice: sessionEndedNotice });
    if (req.method === 'GET') return res.redirect(303, BASE);
    renderSignIn(req, res, 401, { notice: 'Your session has ended. Sign in again, then repeat the action.' });
  };

  /** Every POST of a signed-in user carries the session's token, in the form or (fetch) in X-CSRF-Token. */
  const requireCsrf: RequestHandler = (req, res, next) => {
    const presented = formText(req, '_csrf') || req.get('x-csrf-token');
    if (!tokensMatch(signedIn(res).session.csrfToken, presented)) {
      throw new AppError('FORBIDDEN', 'This form has expired or did not come from this dashboard. Go back, reload the page and try again.');
    }
    next();
  };

  const requirePlan: RequestHandler = (_req, res, next) => {
    const ctx = signedIn(res);
    if (planAllowsWebhooks(ctx.auth.plan)) return next();
    send(res, 403, planRequiredPage(ctx.viewer, ctx.auth.plan));
  };

  const page = [requireSignedIn, requirePlan];
  const action = [requireSignedIn, requireCsrf, requirePlan];

  const flashAndGo = async (res: Response, flash: Flash, to: string) => {
    await sessions.setFlash(signedIn(res).session.id, flash);
    res.redirect(303, to);
  };

  // ---- sign in / sign out ----
  // Failed sign-ins per client address, counted in Redis (shared by API replicas), so
  // the sign-in form cannot be used to guess keys. The key is checked first: a valid
  // key always signs in, however many sign-ins failed from the same address (an
  // office behind one NAT), and costs nothing; only failures are counted and refused.
  const failedSignIns = failureLimiter(deps, 'dash:signin-fail');

  router.get('/', (req, res) => {
    if (res.locals.dashboard) return res.redirect(303, WEBHOOKS);
    if (res.locals.sessionEnded) return renderSignIn(req, res, 401, { notice: sessionEndedNotice });
    renderSignIn(req, res, 200, { notice: req.query.signed_out === '1' ? 'You are signed out.' : undefined });
  });

  router.post('/sign-in', async (req, res) => {
    if (!tokensMatch(signedCookie(req, SIGN_IN_COOKIE), formText(req, '_csrf'))) {
      throw new AppError('FORBIDDEN', 'The sign-in form has expired or cookies are blocked. Reload the sign-in page, allow cookies for this site, and try again.');
    }
    const key = formText(req, 'api_key').trim();
    if (!key) return renderSignIn(req, res, 400, { error: 'Paste an API key to sign in.' });
    const auth = await authenticateApiKey(deps, key);
    if (auth) return startSession(req, res, { keyId: auth.keyId, accountId: auth.accountId });
    // The key is never echoed back into the page.
    const waitSeconds = await failedSignIns.fail(req);
    if (waitSeconds > 0) {
      res.setHeader('Retry-After', String(waitSeconds));
      return renderSignIn(req, res, 429, { error: `Too many failed sign-ins from this address. Wait ${Math.ceil(waitSeconds / 60)} minute(s) and try again.` });
    }
    return renderSignIn(req, res, 401, { error: 'That API key is unknown or revoked. Paste an active key (hk_live_… or hk_test_…) of your account.' });
  });

  // A new session id on every sign-in: nothing set before signing in survives it.
  async function startSession(req: Request, res: Response, grant: SignInGrant) {
    if (res.locals.dashboard) await sessions.destroy(signedIn(res).session.id);
    const session = await sessions.create(grant);
    res.clearCookie(SIGN_IN_COOKIE, { path: BASE });
    res.cookie(SESSION_COOKIE, session.id, cookieOptions(req, SESSION_TTL_SECONDS));
    res.redirect(303, WEBHOOKS);
  }

  // One-time sign-in links (see sign-in-link.ts): the GET only shows a button;
  // the POST, CSRF-checked like the key form, uses the link up and signs in.
  const deadLinkNotice = 'This sign-in link has expired or was already used. Sign in with an API key, or restart npm start for a new link.';
  const liveKeyOf = (grant: SignInGrant) =>
    deps.db.prisma.apiKey.findFirst({
      where: { id: grant.keyId, accountId: grant.accountId, revokedAt: null },
      select: { prefix: true, account: { select: { name: true } } },
    });

  router.get('/sign-in/link', async (req, res) => {
    const token = queryText(req, 'token');
    const grant = await peekSignInLink(deps.redis, deps.config.QUEUE_PREFIX, token);
    const key = grant ? await liveKeyOf(grant) : null;
    if (!token || !key) return renderSignIn(req, res, 410, { notice: deadLinkNotice });
    send(res, 200, signInLinkPage({ csrfToken: signInCsrf(req, res), token, accountName: key.account.name, keyPrefix: key.prefix }));
  });

  router.post('/sign-in/link', async (req, res) => {
    const signInCookie = (req.signedCookies as Record<string, string | undefined> | undefined)?.[SIGN_IN_COOKIE];
    if (!tokensMatch(signInCookie, formText(req, '_csrf'))) {
      throw new AppError('FORBIDDEN', 'The sign-in form has expired or cookies are blocked. Open the link again, allow cookies for this site, and try again.');
    }
    const grant = await takeSignInLink(deps.redis, deps.config.QUEUE_PREFIX, formText(req, 'token'));
    if (!grant || !(await liveKeyOf(grant))) return renderSignIn(req, res, 410, { notice: deadLinkNotice });
    await startSession(req, res, grant);
  });

  router.post('/sign-out', requireSignedIn, requireCsrf, async (_req, res) => {
    await sessions.destroy(signedIn(res).session.id);
    res.clearCookie(SESSION_COOKIE, { path: BASE });
    res.redirect(303, `${BASE}?signed_out=1`);
  });

  router.get('/integrations', ...page, (_req, res) => res.redirect(303, WEBHOOKS));

  // ---- the Webhooks tab ----
  async function lastDeliveryOf(webhookId: string): Promise<LastDelivery> {
    const row = await deps.db.prisma.delivery.findFirst({
      where: { webhookId },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      select: {
        status: true, event: true, eventRecord: { select: { event: true } }, createdAt: true, lastAttemptAt: true, nextAttemptAt: true,
        attempts: { orderBy: { attemptNumber: 'desc' }, take: 1, select: { responseStatus: true, error: true } },
      },
    });
    if (!row) return null;
    const [attempt] = row.attempts;
    return {
      status: row.status,
      // A delivery's own copy of the event's name is NULL in the compact history.
      event: row.event ?? row.eventRecord.event,
      createdAt: row.createdAt.toISOString(),
      lastAttemptAt: row.lastAttemptAt?.toISOString() ?? null,
      nextAttemptAt: row.nextAttemptAt?.toISOString() ?? null,
      responseStatus: attempt?.responseStatus ?? null,
      error: attempt?.error ?? null,
    };
  }

  async function renderWebhooks(res: Response, opts: { cursor: string | null; reveal?: { webhookId: string; secret: string }; status?: number }) {
    const ctx = signedIn(res);
    const list = await listWebhooks(deps, ctx.auth.accountId, { limit: WEBHOOKS_PER_PAGE, cursor: opts.cursor });
    // The health of the whole page in one statement (services/webhook-health.ts).
    const health = await webhookHealth(deps, list.data.map((w) => w.id));
    // One index-backed query per card (at most 20): (webhook_id, created_at desc, id desc).
    const cards: WebhookCard[] = await Promise.all(
      list.data.map(async (webhook) => ({
        webhook,
        lastDelivery: await lastDeliveryOf(webhook.id),
        health: health.get(webhook.id)!,
        revealedSecret: opts.reveal?.webhookId === webhook.id ? opts.reveal.secret : undefined,
      })),
    );
    const flash = await sessions.takeFlash(ctx.session.id);
    send(res, opts.status ?? 200, webhooksPage({ viewer: ctx.viewer, cards, flash, cursor: opts.cursor, nextCursor: list.next_cursor }));
  }

  router.get('/integrations/webhooks', ...page, async (req, res) => {
    await renderWebhooks(res, { cursor: queryText(req, 'cursor') });
  });

  router.get('/integrations/webhooks/new', ...page, (_req, res) => {
    send(res, 200, addWebhookPage({ viewer: signedIn(res).viewer, values: { url: '', parser_id: '', secret: '' }, errors: {} }));
  });

  router.post('/integrations/webhooks', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const values: WebhookFormValues = { url: formText(req, 'url').trim(), parser_id: formText(req, 'parser_id').trim(), secret: formText(req, 'secret') };
    try {
      // The same service (and so the same validation) as POST /v1/webhooks; blank optional fields mean "none".
      const { webhook } = await createWebhook(
        deps,
        { accountId: ctx.auth.accountId, mode: ctx.auth.mode },
        {
          url: values.url,
          events: [...DASHBOARD_EVENT_NAMES],
          ...(values.parser_id ? { parser_id: values.parser_id } : {}),
          ...(values.secret ? { secret: values.secret } : {}),
        },
        'dashboard',
      );
      res.locals.webhookId = webhook.id;
      await flashAndGo(res, { tone: 'success', webhookId: webhook.id, message: 'Webhook added. Reveal or copy its signing secret below, then press Send test to try your endpoint.' }, WEBHOOKS);
    } catch (err) {
      const errors = formErrors(err);
      if (!errors) throw err;
      send(res, 400, addWebhookPage({ viewer: ctx.viewer, values, errors }));
    }
  });

  router.post('/integrations/webhooks/:id/reveal', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const secret = await revealSigningSecret(deps, ctx.auth.accountId, id);
    await renderWebhooks(res, { cursor: formText(req, 'cursor') || null, reveal: { webhookId: id, secret } });
  });

  // For the Copy button: the same secret as Reveal, as JSON for a same-origin fetch with X-CSRF-Token.
  router.post('/integrations/webhooks/:id/secret', ...action, async (req, res) => {
    const id = String(req.params.id);
    res.locals.webhookId = id;
    res.json({ signing_secret: await revealSigningSecret(deps, signedIn(res).auth.accountId, id) });
  });

  router.post('/integrations/webhooks/:id/test', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const row = await getWebhookRow(deps, ctx.auth.accountId, id);
    const status = webhookStatus(row);
    if (status === 'paused' || status === 'disabled') {
      return flashAndGo(res, { tone: 'error', webhookId: id, message: `This webhook is ${status}: press Resume before sending a test.` }, WEBHOOKS);
    }
    // Stop waiting once the browser has gone; the test itself is still delivered.
    const aborted = new AbortController();
    res.on('close', () => aborted.abort());
    let flash: Flash;
    try {
      const outcome = await sendTest(deps, ctx.auth.accountId, id, { signal: aborted.signal });
      if (!outcome) return;
      const { attempt } = outcome;
      const code = attempt.response_status !== null ? `HTTP ${attempt.response_status}` : describeError(attempt.error ?? 'no response');
      flash = attempt.status === 'succeeded'
        ? { tone: 'success', webhookId: id, message: `Test delivered: ${code} in ${attempt.duration_ms} ms.` }
        : { tone: 'error', webhookId: id, message: `Test failed: ${code} after ${attempt.duration_ms} ms${attempt.error && attempt.response_status !== null ? ` (${describeError(attempt.error)})` : ''}. Your endpoint must answer 2xx within the timeout; see the delivery log for the response.` };
    } catch (err) {
      const appError = toAppError(err);
      if (appError.status >= 500 && appError.code !== 'SERVICE_UNAVAILABLE') throw err;
      flash = { tone: 'error', webhookId: id, message: appError.message };
    }
    await flashAndGo(res, flash, WEBHOOKS);
  });

  const setActive = (isActive: boolean): RequestHandler => async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    await updateWebhook(deps, { accountId: ctx.auth.accountId, mode: ctx.auth.mode }, id, { is_active: isActive });
    const message = isActive ? 'Webhook resumed: callbacks are sent again.' : 'Webhook paused.';
    await flashAndGo(res, { tone: 'success', webhookId: id, message }, WEBHOOKS);
  };
  router.post('/integrations/webhooks/:id/pause', ...action, setActive(false));
  router.post('/integrations/webhooks/:id/resume', ...action, setActive(true));

  // ---- editing: the same schema and service as PATCH /v1/webhooks/:id ----
  router.get('/integrations/webhooks/:id/edit', ...page, async (req, res) => {
    const ctx = signedIn(res);
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, String(req.params.id));
    send(res, 200, editWebhookPage({ viewer: ctx.viewer, webhook, values: editValuesOf(webhook), errors: {} }));
  });

  router.post('/integrations/webhooks/:id/edit', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, id);
    const rawEvents = (req.body as Record<string, unknown> | undefined)?.events;
    const values: EditFormValues = {
      url: formText(req, 'url').trim(),
      parser_id: formText(req, 'parser_id').trim(),
      events: (Array.isArray(rawEvents) ? rawEvents : rawEvents === undefined ? [] : [rawEvents]).filter((e): e is string => typeof e === 'string'),
      secret: formText(req, 'secret'),
      remove_secret: formText(req, 'remove_secret') !== '',
      filter: formText(req, 'filter').trim(),
      headers: formText(req, 'headers'),
    };
    if (values.secret !== '' && values.remove_secret) {
      return send(res, 400, editWebhookPage({ viewer: ctx.viewer, webhook, values, errors: { secret: 'type a new value or tick Remove, not both' } }));
    }
    // Blank removes the filter; anything else must be JSON, then passes PATCH's own rules.
    let filter: unknown = null;
    if (values.filter !== '') {
      try {
        filter = JSON.parse(values.filter);
      } catch {
        const message = 'must be valid JSON, e.g. {"status": ["failed", "partial"]} (or blank for no filter)';
        return send(res, 400, editWebhookPage({ viewer: ctx.viewer, webhook, values, errors: { filter: message } }));
      }
    }
    // One `Name: value` per line; blank removes them all. PATCH's own rules then apply.
    const headers = headersOfText(values.headers);
    if (typeof headers === 'string') return send(res, 400, editWebhookPage({ viewer: ctx.viewer, webhook, values, errors: { headers } }));
    // The body PATCH /v1/webhooks/:id would get: blank scope means all parsers; the
    // secret only when replaced or removed; events only for API webhooks.
    const body: Record<string, unknown> = {
      url: values.url,
      parser_id: values.parser_id === '' ? null : values.parser_id,
      ...(webhook.source === 'api' ? { events: values.events } : {}),
      ...(values.secret !== '' ? { secret: values.secret } : values.remove_secret ? { secret: null } : {}),
      filter,
      headers,
    };
    try {
      const patch: UpdateWebhookBody = updateWebhookBody.parse(body);
      await updateWebhook(deps, { accountId: ctx.auth.accountId, mode: ctx.auth.mode }, id, patch);
    } catch (err) {
      const errors = editFormErrors(err);
      if (!errors) throw err;
      return send(res, 400, editWebhookPage({ viewer: ctx.viewer, webhook, values, errors }));
    }
    await flashAndGo(res, { tone: 'success', webhookId: id, message: 'Webhook updated: the changes apply to the next deliveries.' }, WEBHOOKS);
  });

  router.get('/integrations/webhooks/:id/delete', ...page, async (req, res) => {
    const ctx = signedIn(res);
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, String(req.params.id));
    send(res, 200, confirmDeletePage({ viewer: ctx.viewer, webhook }));
  });

  router.post('/integrations/webhooks/:id/delete', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, id);
    await deleteWebhook(deps, ctx.auth.accountId, id);
    await flashAndGo(res, { tone: 'success', message: `Webhook deleted: ${webhook.url} gets no further callbacks.` }, WEBHOOKS);
  });

  // ---- the delivery log ----
  router.get('/integrations/webhooks/:id/deliveries', ...page, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const status = queryText(req, 'status');
    const event = queryText(req, 'event');
    const cursor = queryText(req, 'cursor');
    // The query GET /v1/webhooks/:id/deliveries takes, through the same schema and service.
    const query = deliveryListQuery.safeParse({ limit: String(DELIVERIES_PER_PAGE), ...(status ? { status } : {}), ...(event ? { event } : {}), ...(cursor ? { cursor } : {}) });
    if (!query.success) {
      const field = query.error.issues[0]?.path[0];
      if (field === 'event') throw new AppError('INVALID_PAYLOAD', 'That event filter is not one this log knows; choose an event from the list.');
      if (field === 'status') throw new AppError('INVALID_PAYLOAD', 'That status filter is not one this log knows; choose a status from the list.');
      throw new AppError('INVALID_PAYLOAD', 'That page link is not valid; start again from the newest deliveries.');
    }
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, id);
    const list = await listDeliveries(deps, ctx.auth.accountId, id, query.data);
    // One query for the attempts of the whole page; the deliveries were already scoped to this account's webhook.
    const attempts = list.data.length
      ? await deps.db.prisma.attempt.findMany({ where: { deliveryId: { in: list.data.map((d) => d.id) } }, orderBy: [{ deliveryId: 'asc' }, { attemptNumber: 'desc' }] })
      : [];
    const items: DeliveryWithAttempts[] = list.data.map((delivery) => ({
      delivery,
      attempts: attempts.filter((a) => a.deliveryId === delivery.id).map((a) => attemptResource(attemptRow(a, { eventId: delivery.event_id, event: delivery.event }))),
    }));
    const flash = await sessions.takeFlash(ctx.session.id);
    send(res, 200, deliveryLogPage({
      viewer: ctx.viewer, webhook, items, status, event, cursor, nextCursor: list.next_cursor, flash, openDeliveryId: queryText(req, 'open'),
    }));
  });

  router.post('/integrations/deliveries/:id/retry', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.deliveryId = id;
    const { delivery } = await retryDelivery(deps, ctx.auth.accountId, id);
    const fallback = path('integrations', 'webhooks', delivery.webhook_id, 'deliveries');
    const back = safeReturn(formText(req, 'return_to'), fallback);
    const to = `${back}${back.includes('?') ? '&' : '?'}open=${encodeURIComponent(delivery.id)}`;
    await flashAndGo(res, { tone: 'success', message: `Retry queued for ${delivery.event}: one more attempt is on its way. Reload in a moment to see it.` }, to);
  });

  // ---- anything else under /dashboard, and every error, as an HTML page ----
  router.use((_req, res) => {
    const ctx = res.locals.dashboard as SignedIn | undefined;
    send(res, 404, errorPage({ status: 404, title: 'Page not found', message: 'There is no dashboard page at this address.', viewer: ctx?.viewer }));
  });

  router.use(dashboardErrors(deps, renderSignIn));
  return router;
}

/** Field-level messages for the Add Webhook form, or null when the error is not about the input. */
function formErrors(err: unknown): FieldErrors | null {
  const appError = toAppError(err);
  if (appError.code !== 'INVALID_PAYLOAD' && appError.code !== 'DUPLICATE_WEBHOOK' && appError.code !== 'LIMIT_REACHED') return null;
  const errors: FieldErrors = {};
  const label: Record<string, keyof WebhookFormValues> = { url: 'url', parser_id: 'parser_id', secret: 'secret' };
  for (const detail of appError.details ?? []) {
    const field = label[detail.path];
    if (field && !errors[field]) errors[field] = `${detail.message}`;
    else if (!field && !errors.form) errors.form = `${detail.path}: ${detail.message}`;
  }
  if (appError.code === 'DUPLICATE_WEBHOOK') errors.url = appError.message;
  if (!errors.url && !errors.parser_id && !errors.secret && !errors.form) errors.form = appError.message;
  return errors;
}

/** The Edit form's custom headers (one `Name: value` per line) as PATCH's `headers`, or what is wrong with a line. */
function headersOfText(text: string): Record<string, string> | string {
  const headers: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return `line ${index + 1}: must be Name: value, e.g. Authorization: Bearer 3f9c…`;
    const name = line.slice(0, colon).trim();
    // A name given twice is reported by PATCH's rules (header names are case-insensitive) unless the exact same: say so here.
    if (Object.hasOwn(headers, name)) return `line ${index + 1}: ${name} is given twice`;
    headers[name] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Field-level messages for the Edit form (the API's own messages), or null when the error is not about the input. */
function editFormErrors(err: unknown): EditFieldErrors | null {
  const appError = toAppError(err);
  // LIMIT_REACHED here is the filter-value cap, and names the filter.
  if (appError.code !== 'INVALID_PAYLOAD' && appError.code !== 'DUPLICATE_WEBHOOK' && appError.code !== 'LIMIT_REACHED') return null;
  const errors: EditFieldErrors = {};
  const fields = ['url', 'parser_id', 'events', 'secret', 'filter', 'headers'] as const;
  for (const detail of appError.details ?? []) {
    const field = fields.find((name) => detail.path === name || detail.path.startsWith(`${name}.`));
    // A filter's (or a header's) message says which of its entries it is about (filter.<path>, headers.<name>).
    const message = (field === 'filter' || field === 'headers') && detail.path !== field ? `${detail.path.slice(field.length + 1)}: ${detail.message}` : detail.message;
    if (field && !errors[field]) errors[field] = message;
    else if (!field && !errors.form) errors.form = `${detail.path}: ${detail.message}`;
  }
  if (appError.code === 'DUPLICATE_WEBHOOK') errors.url = appError.message;
  if (!fields.some((name) => errors[name]) && !errors.form) errors.form = appError.message;
  return errors;
}

type RenderSignIn = (req: Request, res: Response, status: number, opts?: { error?: string; notice?: string }) => void;

function dashboardErrors(deps: ApiDeps, renderSignIn: RenderSignIn): ErrorRequestHandler {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const appError = toAppError(err);
    if (appError.status >= 500) {
      const cause = (err as { cause?: unknown })?.cause ?? err;
      deps.logger.error('dashboard request failed', {
        request_id: res.locals.requestId as string | undefined,
        method: req.method,
        path: req.baseUrl + req.path,
        code: appError.code,
        err: cause instanceof Error ? { name: cause.name, message: cause.message, stack: cause.stack } : String(cause),
      });
    }
    if (res.headersSent) return;
    const viewer = (res.locals.dashboard as SignedIn | undefined)?.viewer ?? null;
    if (appError.code === 'UNAUTHORIZED') return renderSignIn(req, res, 401, { notice: appError.message });
    const pages: Record<string, { title: string; message: string }> = {
      FORBIDDEN: { title: 'Request refused', message: appError.message },
      RESOURCE_NOT_FOUND: { title: 'Not found', message: `${appError.message} It may have been deleted, or it belongs to another account.` },
      PAYLOAD_TOO_LARGE: { title: 'Form too large', message: 'That form was larger than the dashboard accepts; shorten the values and try again.' },
      SERVICE_UNAVAILABLE: { title: 'Temporarily unavailable', message: appError.message },
      INVALID_PAYLOAD: { title: 'Something in the request is not right', message: appError.message },
    };
    const known = pages[appError.code] ?? { title: 'Something went wrong', message: 'Something went wrong on our side; try again, and contact support if it persists.' };
    if (appError.code === 'SERVICE_UNAVAILABLE') res.setHeader('Retry-After', '5');
    res.status(appError.status).type('html').send(
      toHtmlString(errorPage({
        status: appError.status,
        title: known.title,
        message: known.message,
        viewer,
        action: appError.code === 'SERVICE_UNAVAILABLE' ? html`<a href="${BASE}">Try again</a>` : undefined,
      })),
    );
  };
}
