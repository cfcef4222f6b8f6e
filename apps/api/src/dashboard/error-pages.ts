import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import type { ApiDeps } from '../deps';
import { toAppError } from '../middleware/errors';
import { errorPage } from './auth-views';
import { send, viewerOf } from './context';
import { html, toHtmlString } from './html';
import { BASE } from './layout';
import type { RenderSignIn } from './sign-in-routes';

// Anything else under /dashboard, and every error, as an HTML page: nothing
// under /dashboard answers with a JSON envelope or a stack trace.

export const notFoundPage: RequestHandler = (_req, res) => {
  send(res, 404, errorPage({ status: 404, title: 'Page not found', message: 'There is no dashboard page at this address.', viewer: viewerOf(res) }));
};

export function dashboardErrors(deps: ApiDeps, renderSignIn: RenderSignIn): ErrorRequestHandler {
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
    const viewer = viewerOf(res) ?? null;
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
