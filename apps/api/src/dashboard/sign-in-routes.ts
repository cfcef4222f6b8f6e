import type { Request, RequestHandler, Response, Router } from 'express';
import { AppError, planAllowsWebhooks } from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { authenticateApiKey } from '../middleware/auth';
import { failureLimiter } from '../middleware/failure-limit';
import { activeApiKey } from '../services/accounts';
import { planRequiredPage, signInLinkPage, signInPage } from './auth-views';
import { formText, queryText, send, signedCookie, signedIn, WEBHOOKS, type SignedIn } from './context';
import { BASE } from './layout';
import { SESSION_COOKIE, SESSION_TTL_SECONDS, SIGN_IN_COOKIE, newToken, tokensMatch, type SessionStore } from './session';
import { peekSignInLink, takeSignInLink, type SignInGrant } from './sign-in-link';

// Sign-in, sessions and CSRF: the session every request carries (re-checked
// against its API key each time), the guards of pages and form posts, and the
// sign-in and sign-out routes (an API key, or a one-time link of npm start).

export type RenderSignIn = (req: Request, res: Response, status: number, opts?: { error?: string; notice?: string }) => void;

export type SignInGuards = {
  /** Signed in (else the sign-in page, or a redirect to it for a GET). */
  requireSignedIn: RequestHandler;
  /** Every POST of a signed-in user carries the session's token. */
  requireCsrf: RequestHandler;
  /** The account's plan includes webhooks. */
  requirePlan: RequestHandler;
  renderSignIn: RenderSignIn;
};

const sessionEndedNotice = 'Your session ended because its API key was revoked. Sign in with an active key.';
const deadLinkNotice = 'This sign-in link has expired or was already used. Sign in with an API key, or restart npm start for a new link.';

/** Loads the session on every request that follows, and serves sign-in and sign-out; returns the guards of the other routes. */
export function mountSignIn(router: Router, deps: ApiDeps, sessions: SessionStore): SignInGuards {
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

  // ---- session loading: every request re-checks that the key still works ----
  const loadSession: RequestHandler = async (req, res, next) => {
    const sid = signedCookie(req, SESSION_COOKIE);
    if (typeof sid !== 'string') return next();
    const session = await sessions.get(sid);
    if (!session) {
      res.clearCookie(SESSION_COOKIE, { path: BASE });
      return next();
    }
    // A revoked key ends every session it opened, at once.
    const key = await activeApiKey(deps, session.keyId, session.accountId);
    if (!key) {
      await sessions.destroy(session.id);
      res.clearCookie(SESSION_COOKIE, { path: BASE });
      res.locals.sessionEnded = true;
      return next();
    }
    res.locals.accountId = session.accountId;
    res.locals.dashboard = {
      session,
      viewer: { accountName: key.accountName, accountId: session.accountId, keyPrefix: key.prefix, mode: key.mode, csrfToken: session.csrfToken },
      auth: { accountId: session.accountId, keyId: session.keyId, mode: key.mode, plan: key.plan },
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
  const renderSignIn: RenderSignIn = (req, res, status, opts = {}) => {
    send(res, status, signInPage({ csrfToken: signInCsrf(req, res), error: opts.error, notice: opts.notice }));
  };

  const requireSignedIn: RequestHandler = (req, res, next) => {
    if (res.locals.dashboard) return next();
    if (res.locals.sessionEnded) return renderSignIn(req, res, 401, { notice: sessionEndedNotice });
    if (req.method === 'GET') return res.redirect(303, BASE);
    renderSignIn(req, res, 401, { notice: 'Your session has ended. Sign in again, then repeat the action.' });
  };

  /** In the form or (fetch) in X-CSRF-Token. */
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
  const liveKeyOf = (grant: SignInGrant) => activeApiKey(deps, grant.keyId, grant.accountId);

  router.get('/sign-in/link', async (req, res) => {
    const token = queryText(req, 'token');
    const grant = await peekSignInLink(deps.redis, deps.config.QUEUE_PREFIX, token);
    const key = grant ? await liveKeyOf(grant) : null;
    if (!token || !key) return renderSignIn(req, res, 410, { notice: deadLinkNotice });
    send(res, 200, signInLinkPage({ csrfToken: signInCsrf(req, res), token, accountName: key.accountName, keyPrefix: key.prefix }));
  });

  router.post('/sign-in/link', async (req, res) => {
    if (!tokensMatch(signedCookie(req, SIGN_IN_COOKIE), formText(req, '_csrf'))) {
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

  return { requireSignedIn, requireCsrf, requirePlan, renderSignIn };
}
