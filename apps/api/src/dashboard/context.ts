import type { Request, RequestHandler, Response } from 'express';
import { AppError } from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { toHtmlString, type SafeHtml } from './html';
import { path, type Viewer } from './layout';
import type { DashboardSession, Flash, SessionStore } from './session';

// What the dashboard's route modules share: the signed-in context a request
// carries, the guards, and small readers of forms and queries. router.ts builds
// one DashboardKit and hands it to each module.

export const WEBHOOKS = path('integrations', 'webhooks');

export type SignedIn = {
  session: DashboardSession;
  viewer: Viewer;
  auth: { accountId: string; keyId: string; mode: 'live' | 'test'; plan: string };
};

export type DashboardKit = {
  deps: ApiDeps;
  sessions: SessionStore;
  /** A page for a signed-in user whose plan includes webhooks. */
  page: RequestHandler[];
  /** A form post of such a user: also the session's CSRF token. */
  action: RequestHandler[];
  /** Post/Redirect/Get: the message is shown once, on the page redirected to. */
  flashAndGo: (res: Response, flash: Flash, to: string) => Promise<void>;
};

/** The signed-in context the session loader put on the response (sign-in-routes.ts). */
export const signedIn = (res: Response): SignedIn => {
  const ctx = res.locals.dashboard as SignedIn | undefined;
  if (!ctx) throw new AppError('UNAUTHORIZED', 'Sign in with an API key to continue.');
  return ctx;
};

/** The viewer, when signed in (error pages show the header then). */
export const viewerOf = (res: Response): Viewer | undefined => (res.locals.dashboard as SignedIn | undefined)?.viewer;

export function send(res: Response, status: number, body: SafeHtml): void {
  res.status(status).type('html').send(toHtmlString(body));
}

export const formText = (req: Request, name: string): string => {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : '';
};

export const queryText = (req: Request, name: string): string | null => {
  const value = req.query[name];
  return typeof value === 'string' && value !== '' ? value : null;
};

/** cookie-parser types signed cookies as `any`: a signed cookie is a string or absent. */
export function signedCookie(req: Request, name: string): string | undefined {
  const value = (req.signedCookies as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** Where a form may send the browser back to: a dashboard path of this site, never another host. */
export function safeReturn(target: string, fallback: string): string {
  return /^\/dashboard\/[A-Za-z0-9/_\-.?=&%]*$/.test(target) && !target.includes('//') ? target : fallback;
}
