import type { SqlRunner } from './client';

/** Webhooks (not deleted) by circuit state other than closed: the /metrics gauge of open circuits. */
export async function countCircuits(sql: SqlRunner): Promise<{ open: number; half_open: number }> {
  const rows = await sql.query<{ circuit: string; n: number }>(
    `SELECT circuit, count(*)::int AS n FROM webhooks WHERE circuit <> 'closed' AND deleted_at IS NULL GROUP BY circuit`,
  );
  const count = (state: string) => rows.find((row) => row.circuit === state)?.n ?? 0;
  return { open: count('open'), half_open: count('half_open') };
}
