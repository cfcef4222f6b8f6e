import type { SqlRunner } from './client';

/**
 * This database's installation id (written once by its migration): it marks
 * the Redis queue prefix this installation's workers use (packages/queue's queue-owner.ts).
 */
export async function readInstallationId(sql: Pick<SqlRunner, 'query'>): Promise<string> {
  const [row] = await sql.query<{ id: string }>('SELECT id FROM installation ORDER BY created_at, id LIMIT 1');
  if (!row) throw new Error('the installation table is empty; run the migrations (npm run db:migrate)');
  return row.id;
}
