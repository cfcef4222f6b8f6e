import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { AppError, toEnvelope, type ErrorDetail } from '@hookline/domain';
import type { Logger } from '@hookline/config';
import { hasErrorCode, isDatabaseUnreachable } from '@hookline/db';

// Every failure leaves as the error envelope of docs/api.md#errors: never a stack trace, never HTML.

const EXPECTED: Record<string, string> = { object: 'a JSON object', array: 'an array', string: 'a string', number: 'a number', boolean: 'true or false' };

export function zodDetails(err: ZodError): ErrorDetail[] {
  return err.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return { path: [path, ...issue.keys].filter(Boolean).join('.'), message: 'is not a known field' };
    }
    // zod's own wording ("Invalid input: expected object, received undefined") names no remedy.
    if (issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')) {
      return { path: path || '(body)', message: `must be ${EXPECTED[issue.expected] ?? `of type ${issue.expected}`}` };
    }
    return { path: path || '(body)', message: issue.message };
  });
}

export function fromZod(err: ZodError): AppError {
  const details = zodDetails(err);
  const first = details[0];
  return new AppError('INVALID_PAYLOAD', first ? `${first.path}: ${first.message}` : 'Invalid request.', details);
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) return fromZod(err);
  const e = err as { type?: string; status?: number; statusCode?: number };
  // body-parser / raw-body errors
  if (e?.type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE', 'Request body is larger than 256 KiB.');
  if (e?.type === 'entity.parse.failed') return new AppError('INVALID_PAYLOAD', 'Request body is not valid JSON.');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new AppError('INVALID_PAYLOAD', 'Request body must be UTF-8 JSON.');
  if (e?.type === 'request.aborted' || e?.type === 'request.size.invalid' || e?.type === 'stream.encoding.set') return new AppError('INVALID_PAYLOAD', 'Request body could not be read.');
  if (hasErrorCode(err, ['22021', '22P02', '22P05', '54000'])) return new AppError('INVALID_PAYLOAD', 'The request contains characters or values PostgreSQL cannot store (for example a NUL character).');
  if (isDatabaseUnreachable(err)) return new AppError('SERVICE_UNAVAILABLE', 'The database is unreachable; try again shortly.');
  // Express 5 fails to decode a path parameter with a URIError (status 400).
  if (err instanceof URIError) return new AppError('INVALID_PAYLOAD', 'The URL is not valid percent-encoding; encode each path segment with encodeURIComponent.');
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new AppError('INVALID_PAYLOAD', 'The request could not be understood; check its URL, headers and body against /docs.');
  return new AppError('INTERNAL_ERROR', 'Something went wrong on our side; try again, and contact support if it persists.');
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const appError = toAppError(err);
    if (appError.status >= 500) {
      logger.error('request failed', { request_id: res.locals.requestId as string | undefined, method: req.method, path: req.path, code: appError.code, err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) });
    }
    if (res.headersSent) return;
    for (const [name, value] of Object.entries(appError.headers ?? {})) res.setHeader(name, value);
    res.status(appError.status).json(toEnvelope(appError));
  };
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError('RESOURCE_NOT_FOUND', `No route ${req.method} ${req.path}. See /docs for the API.`));
};
