import type { RequestHandler } from 'express';
import { context, contextFromHeaders, SpanKind, SpanStatusCode, startSpan, trace } from '@hookline/telemetry';
import {
  ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';

/**
 * The server span of a traced route (the publish and the document report):
 * a W3C `traceparent` on the request is its parent; the handler runs with it
 * active, so the outbox write and the enqueue become its children. It ends when
 * the answer is sent (or the connection closes). The path is recorded without
 * its query string; no header or body is. With tracing off the span is the
 * API's no-op one and no listener is added.
 */
export function traced(method: string, route: string, handler: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const span = startSpan(`${method.toUpperCase()} ${route}`, {
      kind: SpanKind.SERVER,
      parent: contextFromHeaders(req.headers),
      attributes: { [ATTR_HTTP_REQUEST_METHOD]: req.method, [ATTR_HTTP_ROUTE]: route, [ATTR_URL_PATH]: req.path },
    });
    if (span.isRecording()) {
      res.once('close', () => {
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      });
    }
    return context.with(trace.setSpan(context.active(), span), () => handler(req, res, next));
  };
}
