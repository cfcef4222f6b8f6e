import { WAITING_STATUSES } from '@hookline/domain';

/** String constants as an SQL list, `('a', 'b')`: for values written in code only (each is checked), never for input. */
export function sqlList(values: readonly string[]): string {
  for (const value of values) if (!/^[a-z_]+$/.test(value)) throw new Error(`not an SQL constant: ${value}`);
  return `(${values.map((value) => `'${value}'`).join(', ')})`;
}

/**
 * The waiting statuses (WAITING_STATUSES) as an SQL list, for `status IN …`.
 * The partial index of waiting deliveries (prisma/migrations/*_waiting_deliveries)
 * has the same list as its predicate, and the relay's scan is planned on that
 * index only while the two agree: packages/db/test/statuses.test.ts fails when
 * one changes without the other.
 */
export const WAITING_STATUSES_SQL = sqlList(WAITING_STATUSES);
