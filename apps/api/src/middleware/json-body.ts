import express, { type RequestHandler } from 'express';
import { AppError } from '@hookline/domain';

export const MAX_BODY_BYTES = 256 * 1024;
/**
 * Deeper bodies are refused: JSON.parse copes with any depth, but the
 * recursive serialisers after it (Prisma's, JSON.stringify) overflow the stack
 * somewhere past a few thousand levels, which would be a 500.
 */
export const MAX_JSON_DEPTH = 128;

const parseJson = express.json({ limit: MAX_BODY_BYTES, strict: false, type: () => true });

/** True when the parsed value nests arrays/objects deeper than `max` (iterative: a deep value cannot overflow this check). */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth > max) return true;
    for (const inner of Object.values(current)) stack.push([inner, depth + 1]);
  }
  return false;
}

/**
 * The dotted path of the first `__proto__` key in a parsed body, or null.
 * JSON.parse keeps such a key as an own property, but copying the object (zod
 * does, for every object it parses) sets the copy's prototype instead, so the
 * key would vanish from what is stored and sent without a word. It is refused,
 * naming where it is. (`constructor` and every other key are kept verbatim.)
 */
function protoKeyPath(value: unknown): string | null {
  const stack: Array<[unknown, string[]]> = [[value, []]];
  while (stack.length) {
    const [current, path] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (Object.prototype.hasOwnProperty.call(current, '__proto__')) return [...path, '__proto__'].join('.');
    for (const [key, inner] of Object.entries(current)) stack.push([inner, [...path, key]]);
  }
  return null;
}

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
  parseJson(req, res, (err?: unknown) => {
    if (err) return next(err);
    if (nestedDeeperThan(req.body, MAX_JSON_DEPTH)) {
      return next(new AppError('INVALID_PAYLOAD', `Request body is nested more than ${MAX_JSON_DEPTH} levels deep; flatten it.`));
    }
    const proto = protoKeyPath(req.body);
    if (proto !== null) {
      const message = 'is a key named "__proto__", which is reserved: it cannot be stored or passed on as given; rename it';
      return next(new AppError('INVALID_PAYLOAD', `${proto}: ${message}`, [{ path: proto, message }]));
    }
    next();
  });
};
