// Database errors arrive wrapped: a Prisma error around a driver adapter error
// (Prisma 7 puts it in `meta.driverAdapterError`, with the SQLSTATE as
// `originalCode`), or a pg error, each possibly with a `cause`. These helpers
// walk that chain so callers ask one question instead of re-walking it.

export type ErrorLike = {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  originalCode?: unknown;
  kind?: unknown;
  cause?: unknown;
  meta?: { code?: unknown; driverAdapterError?: unknown };
};

/** The error and every error it wraps, outermost first (at most `limit`). */
export function* errorChain(err: unknown, limit = 6): Generator<ErrorLike> {
  let cur: unknown = err;
  for (let depth = 0; cur && typeof cur === 'object' && depth < limit; depth++) {
    const e = cur as ErrorLike;
    yield e;
    cur = e.cause ?? e.meta?.driverAdapterError;
  }
}

/** The codes (SQLSTATE, Prisma P-code, Node errno) carried anywhere in the chain. */
export function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (const e of errorChain(err)) {
    for (const code of [e.code, e.originalCode, e.meta?.code]) if (typeof code === 'string') codes.push(code);
    // Prisma reports a malformed JSON text value (22P02) by kind only.
    if (e.kind === 'InvalidInputValue') codes.push('22P02');
  }
  return codes;
}

export const hasErrorCode = (err: unknown, codes: readonly string[]) => errorCodes(err).some((code) => codes.includes(code));

/** A unique constraint refused the row: Prisma's P2002, SQLSTATE 23505, or a message naming `constraint`. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (hasErrorCode(err, ['P2002', '23505'])) return true;
  return constraint !== undefined && [...errorChain(err)].some((e) => typeof e.message === 'string' && e.message.includes(constraint));
}

const UNREACHABLE_MESSAGE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|Can't reach database|Connection terminated|connection.*(closed|refused|terminated)|too many clients|the database system is (starting|shutting) up|terminating connection/i;

/** Node errnos, SQLSTATEs (admin shutdown, cannot connect now, too many connections) and Prisma codes that mean "not reachable now". */
const UNREACHABLE_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', '57P01', '57P03', '53300', 'P1001', 'P1017', 'P2024'];

/**
 * PostgreSQL could not be reached, or refused connections for now (starting,
 * shutting down, out of connections): an outage to wait out, not a mistake to
 * report. A wrong password, a missing database or a bad statement is not one.
 */
export function isDatabaseUnreachable(err: unknown): boolean {
  if (hasErrorCode(err, UNREACHABLE_CODES)) return true;
  return [...errorChain(err)].some((e) => typeof e.message === 'string' && UNREACHABLE_MESSAGE.test(e.message) && /prisma|pg|database|postgres|connect/i.test(`${String(e.name)} ${e.message}`));
}
