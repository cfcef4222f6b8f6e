import { createHash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { AppError } from '@hookline/domain';
import { answerIdempotencyKey, IN_PROGRESS, readIdempotencyRecords, releaseIdempotencyKey, takeIdempotencyKey, type IdempotencyRecord } from '@hookline/db';
import type { ApiDeps } from '../deps';

// Stripe-style Idempotency-Key: the first answer to (principal, route, key) is
// kept for 24 h and replayed for the same body; another body gets 409. The
// rows and the one rule that takes them are in packages/db/src/idempotency.ts.
//
// Two ways a route honours it (ApiRoute.idempotent):
// - 'in-transaction' (the platform's publish and document report): the route
//   records the key together with its own writes, in the same statement or
//   transaction, so a key costs no round trip of its own and a request that
//   dies leaves nothing behind;
// - true (every other POST): claimKey takes the key for IDEMPOTENCY_LEASE
//   before the handler runs (two concurrent requests with one key cannot both
//   act) and stores the answer when the handler gives it; a request whose
//   process died frees its key when the lease ends.

export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
export const DEFAULT_IDEMPOTENCY_LEASE_MS = 60_000;
const KEY_RE = /^[\x21-\x7e]{1,255}$/;

/** The request's key, as readKey left it for the route. */
export type IdempotencyContext = { scope: string; requestHash: string };

function principalOf(res: Response): string {
  if (res.locals.auth) return `acct:${(res.locals.auth as { accountId: string }).accountId}`;
  if (res.locals.platform) return 'platform';
  return 'anonymous';
}

/** The key of this request, if it sent one (set by readKey). */
export const idempotencyOf = (res: Response): IdempotencyContext | undefined => res.locals.idempotency as IdempotencyContext | undefined;

/** Validates Idempotency-Key and derives its scope and the body's hash; no I/O. */
export const readKey: RequestHandler = (req, res, next) => {
  const key = req.get('idempotency-key');
  if (key === undefined) return next();
  if (!KEY_RE.test(key)) {
    return next(new AppError('INVALID_PAYLOAD', 'Idempotency-Key must be 1–255 printable ASCII characters.', [{ path: 'Idempotency-Key', message: 'must be 1–255 printable ASCII characters' }]));
  }
  const context: IdempotencyContext = {
    scope: `${principalOf(res)}:${req.method} ${req.baseUrl}${req.path}:${key}`,
    requestHash: createHash('sha256').update(JSON.stringify(req.body ?? null)).digest('hex'),
  };
  res.locals.idempotency = context;
  next();
};

export const keyInUse = () => new AppError('IDEMPOTENCY_CONFLICT', 'A request with this Idempotency-Key is still being processed; retry shortly.');
export const keyReused = () =>
  new AppError('IDEMPOTENCY_CONFLICT', 'This Idempotency-Key was already used with a different request body; use a new key for a new request.');

// A stored answer may hold a signing secret or a new API key: it is kept encrypted.
export function sealAnswer(deps: Pick<ApiDeps, 'secretBox'>, body: unknown): { sealed: string } {
  return { sealed: deps.secretBox.encrypt(JSON.stringify(body ?? null)) };
}

function openAnswer(deps: Pick<ApiDeps, 'secretBox'>, stored: unknown): unknown {
  const sealed = (stored as { sealed?: unknown } | null)?.sealed;
  return typeof sealed === 'string' ? JSON.parse(deps.secretBox.decrypt(sealed)) : stored;
}

/**
 * Answers a request whose key's row is live (null: it expired in between):
 * the stored answer for the same body, or 409.
 */
export function replay(deps: Pick<ApiDeps, 'secretBox'>, res: Response, context: IdempotencyContext, record: IdempotencyRecord | null | undefined): void {
  if (!record) throw keyInUse();
  if (record.requestHash !== context.requestHash) throw keyReused();
  if (record.responseStatus === IN_PROGRESS) throw keyInUse();
  res.setHeader('Idempotent-Replayed', 'true');
  res.status(record.responseStatus).json(openAnswer(deps, record.responseBody));
}

/** For routes that do not record the key themselves: claim it for a lease, store the answer. */
export function claimKey(deps: Pick<ApiDeps, 'db' | 'secretBox' | 'logger'>, leaseMs = DEFAULT_IDEMPOTENCY_LEASE_MS): RequestHandler {
  return async (_req, res, next) => {
    const context = idempotencyOf(res);
    if (!context) return next();
    try {
      const sql = deps.db.sql;
      const claimed = await takeIdempotencyKey(sql, { scope: context.scope, request_hash: context.requestHash, response_status: IN_PROGRESS, response_body: null, ttl_ms: leaseMs });
      if (!claimed) {
        const records = await readIdempotencyRecords(sql, [context.scope]);
        return replay(deps, res, context, records.get(context.scope));
      }

      // Record the answer the handler gives; a 5xx is not stored, so the client may retry it.
      const json = res.json.bind(res);
      res.json = (body: unknown) => {
        const status = res.statusCode;
        const settle = status >= 500 ? releaseIdempotencyKey(sql, context.scope) : answerIdempotencyKey(sql, context.scope, status, sealAnswer(deps, body), IDEMPOTENCY_TTL_MS);
        settle
          .catch((err: Error) => deps.logger.warn('could not record an idempotent answer; the key is free again when its lease ends', { err: err.message }))
          .finally(() => json(body));
        return res;
      };
      next();
    } catch (err) {
      next(err);
    }
  };
}
