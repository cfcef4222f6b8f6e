import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SqlRunner } from './client';

// Applies prisma/migrations/<name>/migration.sql in name order, recording each in
// Prisma's own `_prisma_migrations` table (same columns and checksum), so
// `prisma migrate deploy` agrees with it wherever Prisma's binary engine exists.
// Prisma's CLI cannot migrate offline on this machine, hence this runner.

export const MIGRATIONS_DIR = resolve(__dirname, '../../../prisma/migrations');

// Contract migrations (docs/operations.md, "The waiting set and the contract
// step"): each takes away what only an earlier version's processes used (an
// index, a key), so it must not run while such a process may still run. Applied
// after every migration of MIGRATIONS_DIR, only when asked: `npm run db:contract`
// once a rollout has finished, and always by the one-process embedded server
// (no other version can share its database). Recorded in the same table.
export const CONTRACT_DIR = resolve(__dirname, '../../../prisma/contract');

// Serialises concurrent migrators (an API and several workers starting at once).
const LOCK_ID = 72_707_369;

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export type Migration = { name: string; sql: string; checksum: string };

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

export type MigrateOptions = {
  /** Also the contract migrations (after every other one). */
  contract?: boolean;
  dir?: string;
  contractDir?: string;
};

/** Returns the names it applied (empty when the database was up to date). */
export async function runMigrations(runner: SqlRunner, opts: MigrateOptions = {}): Promise<string[]> {
  const migrations = [
    ...listMigrations(opts.dir ?? MIGRATIONS_DIR),
    ...(opts.contract ? listMigrations(opts.contractDir ?? CONTRACT_DIR) : []),
  ];
  return runner.withSession((sql) => applyAll(sql, migrations));
}

/** The contract migrations not applied yet (an unmigrated database: all of them). */
export async function pendingContract(runner: SqlRunner, contractDir = CONTRACT_DIR): Promise<string[]> {
  const names = listMigrations(contractDir).map((m) => m.name);
  if (names.length === 0) return [];
  const rows = await runner.query<{ migration_name: string }>(
    `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL AND migration_name = ANY($1::text[])`,
    [names],
  ).catch(() => []);
  const applied = new Set(rows.map((row) => row.migration_name));
  return names.filter((name) => !applied.has(name));
}

async function applyAll(sql: SqlRunner, migrations: Migration[]): Promise<string[]> {
  await sql.exec(CREATE_TABLE).catch(() => undefined); // racing creators: the loser's error is harmless, the lock below orders the rest
  await sql.query('SELECT pg_advisory_lock($1)', [LOCK_ID]);
  try {
    await sql.exec(CREATE_TABLE);
    const rows = await sql.query<{ migration_name: string; checksum: string }>(
      'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    const applied = new Map(rows.map((row) => [row.migration_name, row.checksum]));
    const done: string[] = [];
    for (const migration of migrations) {
      const known = applied.get(migration.name);
      if (known) {
        if (known !== migration.checksum) {
          throw new Error(`migration ${migration.name} was edited after it was applied; add a new migration instead`);
        }
        continue;
      }
      // The migration and its record commit together: a crash between the two
      // would leave a change applied but unrecorded, and every later start
      // would fail applying it again.
      await sql.exec('BEGIN');
      try {
        await sql.exec(migration.sql);
        await sql.query(
          'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count) VALUES ($1, $2, $3, now(), 1)',
          [randomUUID(), migration.checksum, migration.name],
        );
        await sql.exec('COMMIT');
      } catch (err) {
        await sql.exec('ROLLBACK').catch(() => undefined);
        throw new Error(`migration ${migration.name} failed: ${(err as Error).message}`);
      }
      done.push(migration.name);
    }
    return done;
  } finally {
    await sql.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]);
  }
}
