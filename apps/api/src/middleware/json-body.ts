import express, { type RequestHandler } from 'express';
import { AppError } from '@hookline/domain';

export const MAX_BODY_BYTES = 256 * 1024;

const parseJson = express.json({ limit: MAX_BODY_BYTES, strict: false, type: () => true });

/**
 * JSON bodies only, 256 KiB at most. A body sent with another Content-Type is
 * refused with a message saying what to send, instead of being silently ignored.
 */
export const jsonBody: RequestHandler = (req, res, next) => {
  const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
  if (!hasBody) {
    req.body = undefined;
    return next();
  }
  if (!req.is('application/json') && !req.is('application/*+json')) {
    return next(new AppError('INVALID_PAYLOAD', 'Content-Type must be application/json.'));
  }
  parseJson(req, res, next);
};
