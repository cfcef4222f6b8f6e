import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMigrations } from '../src';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// The migration runner on a real PostgreSQL database: a migration and the row
// that records it commit together, so a failure (or a crash) between the two
// never leaves a schema change applied but unrecorded, which the next start
// would try to apply again and fail on.

let t: TestDatabase;
const dirs: string[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
});

afterAll(async () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await t?.drop();
});

function migrationsDir(migrations: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hookline-migrations-'));
  dirs.push(dir);
  for (const [name, sql] of Object.entries(migrations)) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

const exists = async (table: string) =>
  (await t.db.sql.query<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [table]))[0].found !== null;

describe('runMigrations', () => {
  it('applies a migration and its record atomically: a failed record leaves nothing applied', async () => {
    // The record of this migration cannot be written (the CHECK refuses it), as if the process died right after the migration.
    const broken = migrationsDir({
      '30000101000000_probe': `CREATE TABLE migrate_probe (x int);
ALTER TABLE "_prisma_migrations" ADD CONSTRAINT refuse_probe CHECK (migration_name <> '30000101000000_probe');`,
    });
    await expect(runMigrations(t.db.sql, { dir: broken })).rejects.toThrow(/30000101000000_probe/);
    expect(await exists('migrate_probe')).toBe(false);

    // Nothing half-applied: the same migration, without the sabotage, applies once and is recorded.
    const fixed = migrationsDir({ '30000101000000_probe': 'CREATE TABLE migrate_probe (x int);' });
    expect(await runMigrations(t.db.sql, { dir: fixed })).toEqual(['30000101000000_probe']);
    expect(await exists('migrate_probe')).toBe(true);
    expect(await runMigrations(t.db.sql, { dir: fixed })).toEqual([]);
  });

  it('a failing migration is rolled back and named in the error', async () => {
    const dir = migrationsDir({ '30000102000000_bad': 'CREATE TABLE migrate_bad (x int);\nSELECT no_such_function();' });
    await expect(runMigrations(t.db.sql, { dir })).rejects.toThrow(/migration 30000102000000_bad failed/);
    expect(await exists('migrate_bad')).toBe(false);
  });
});
