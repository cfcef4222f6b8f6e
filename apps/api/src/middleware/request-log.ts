import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '@hookline/config';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/;

/** A request id on every request (echoed as X-Request-Id) and one JSON log line per request. */
export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : `req_${randomUUID().replace(/-/g, '')}`;
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      logger.log(res.statusCode >= 500 ? 'error' : 'http', 'request', {
        request_id: requestId,
        method: req.method,
        // the path only: query strings may carry cursors, never secrets, but keep lines short
        path: req.baseUrl + req.path,
        status: res.statusCode,
        duration_ms: Math.round(durationMs * 10) / 10,
        account_id: res.locals.accountId,
        webhook_id: res.locals.webhookId,
        delivery_id: res.locals.deliveryId,
      });
    });
    next();
  };
}
