import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createDb, runMigrations, type Db } from '@hookline/db';

// Tests get a fresh, migrated database of their own on the machine's PostgreSQL,
// dropped afterwards (TEST_DATABASE_URL names the server; default: local trust auth).
export type TestDatabase = { url: string; db: Db; drop(): Promise<void> };

const serverUrl = () => process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

export async function createTestDatabase(opts: { poolSize?: number; contract?: boolean } = {}): Promise<TestDatabase> {
  const name = `hookline_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl(), name);
  const db = await createDb({ databaseUrl: url, poolSize: opts.poolSize ?? 5 });
  // COMPACT_HISTORY=true in the test run's environment runs the suites with the compact history's writes.
  db.compact = process.env.COMPACT_HISTORY === 'true';
  // The schema as it is once a rollout has finished (the contract steps too); { contract: false }: mid-rollout.
  await runMigrations(db.sql, { contract: opts.contract ?? true });
  return {
    url,
    db,
    async drop() {
      await db.close().catch(() => undefined);
      const cleaner = new Client({ connectionString: serverUrl() });
      await cleaner.connect();
      try {
        await cleaner.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await cleaner.end();
      }
    },
  };
}
