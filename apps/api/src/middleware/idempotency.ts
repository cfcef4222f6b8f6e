import { createHash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { AppError } from '@hookline/domain';
import { isUniqueViolation } from '@hookline/db';
import type { ApiDeps } from '../deps';

// Stripe-style Idempotency-Key: the first answer to (principal, route, key) is
// stored for 24 h and replayed for the same body; another body gets 409.
// A placeholder row is written before the handler runs, so two concurrent
// requests with one key cannot both act.

export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const KEY_RE = /^[\x21-\x7e]{1,255}$/;
const IN_PROGRESS = 0;

function principalOf(res: Response): string {
  if (res.locals.auth) return `acct:${(res.locals.auth as { accountId: string }).accountId}`;
  if (res.locals.platform) return 'platform';
  return 'anonymous';
}

// A stored answer may hold a signing secret or a new API key: it is kept encrypted.
function sealBody(deps: Pick<ApiDeps, 'secretBox'>, body: unknown): { sealed: string } {
  return { sealed: deps.secretBox.encrypt(JSON.stringify(body ?? null)) };
}

function openBody(deps: Pick<ApiDeps, 'secretBox'>, stored: unknown): unknown {
  const sealed = (stored as { sealed?: unknown } | null)?.sealed;
  return typeof sealed === 'string' ? JSON.parse(deps.secretBox.decrypt(sealed)) : stored;
}

export function idempotent(deps: Pick<ApiDeps, 'db' | 'secretBox' | 'logger'>): RequestHandler {
  return async (req, res, next) => {
    const key = req.get('idempotency-key');
    if (key === undefined) return next();
    try {
      if (!KEY_RE.test(key)) throw new AppError('INVALID_PAYLOAD', 'Idempotency-Key must be 1–255 printable ASCII characters.', [{ path: 'Idempotency-Key', message: 'must be 1–255 printable ASCII characters' }]);
      const prisma = deps.db.prisma;
      const scope = `${principalOf(res)}:${req.method} ${req.baseUrl}${req.path}:${key}`;
      const requestHash = createHash('sha256').update(JSON.stringify(req.body ?? null)).digest('hex');
      const now = new Date();

      await prisma.idempotencyRecord.deleteMany({ where: { scope, expiresAt: { lt: now } } });
      const claimed = await prisma.idempotencyRecord
        .create({ data: { scope, requestHash, responseStatus: IN_PROGRESS, expiresAt: new Date(now.getTime() + IDEMPOTENCY_TTL_MS) } })
        .then(() => true, (err: unknown) => {
          if (isUniqueViolation(err)) return false;
          throw err;
        });

      if (!claimed) {
        const existing = await prisma.idempotencyRecord.findUnique({ where: { scope } });
        if (!existing) throw new AppError('IDEMPOTENCY_CONFLICT', 'A request with this Idempotency-Key is in progress; retry shortly.');
        if (existing.requestHash !== requestHash) {
          throw new AppError('IDEMPOTENCY_CONFLICT', 'This Idempotency-Key was already used with a different request body; use a new key for a new request.');
        }
        if (existing.responseStatus === IN_PROGRESS) {
          throw new AppError('IDEMPOTENCY_CONFLICT', 'A request with this Idempotency-Key is still being processed; retry shortly.');
        }
        res.setHeader('Idempotent-Replayed', 'true');
        return void res.status(existing.responseStatus).json(openBody(deps, existing.responseBody));
      }

      // Record the answer the handler gives; a 5xx is not stored, so the client may retry it.
      const json = res.json.bind(res);
      res.json = (body: unknown) => {
        const status = res.statusCode;
        const settle = status >= 500
          ? prisma.idempotencyRecord.delete({ where: { scope } })
          : prisma.idempotencyRecord.update({ where: { scope }, data: { responseStatus: status, responseBody: sealBody(deps, body) } });
        settle
          .catch((err: Error) => deps.logger.warn('could not record an idempotent answer; the key answers 409 until it expires', { err: err.message }))
          .finally(() => json(body));
        return res;
      };
      next();
    } catch (err) {
      next(err);
    }
  };
}
