import { readFileSync } from 'node:fs';
import { createDb, runMigrations, type Db } from '../src';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';
import { DOC, documentedIndexes } from './support/documented-indexes';

// Every index of the migrated schema is named in docs/operations.md ("Indexes"),
// with the query it serves, and every index named there exists: an index that
// appears without a query to serve (or a row of the table left behind by a
// dropped index) fails here. On PostgreSQL and on PGlite (what `npm start` runs),
// which also proves every migration applies on both. A partitioned table's
// indexes are listed once, on the table: each partition has its own copy of each.

/** The indexes of the contract step, named in the paragraph under the table. */
const DROPPED_BY_CONTRACT = ['attempts_pkey', 'deliveries_event_id_webhook_id_key', 'deliveries_waiting_next_attempt_at_id_idx'];

async function schemaIndexes(db: Db): Promise<string[]> {
  const rows = await db.sql.query<{ indexname: string }>(
    `SELECT x.indexname FROM pg_indexes x JOIN pg_class c ON c.relname = x.tablename AND c.relnamespace = 'public'::regnamespace
      WHERE x.schemaname = 'public' AND x.tablename <> '_prisma_migrations' AND NOT c.relispartition ORDER BY x.indexname`,
  );
  return rows.map((row) => row.indexname).sort();
}

describe('the index list of docs/operations.md', () => {
  const documented = documentedIndexes();

  it('names what the contract step drops, under the table', () => {
    const markdown = readFileSync(DOC, 'utf8');
    const paragraph = markdown.slice(markdown.indexOf('Dropped by the contract step'), markdown.indexOf('Dropped by `20261207150000_compact_history`'));
    for (const name of DROPPED_BY_CONTRACT) {
      expect(paragraph).toContain(`\`${name}\``);
      expect(documented).not.toContain(name);
    }
  });

  it('names each index once, each with a table and a query it serves', () => {
    expect(documented.length).toBeGreaterThan(10);
    expect(new Set(documented).size).toBe(documented.length);
    const markdown = readFileSync(DOC, 'utf8');
    for (const name of documented) {
      const row = markdown.split('\n').find((line) => line.startsWith(`| \`${name}\` |`))!;
      const [, , table, serves] = row.split('|').map((cell) => cell.trim());
      expect(table).toMatch(/^[a-z_]+ \(/);
      expect(serves.length).toBeGreaterThan(10);
    }
  });

  it('is exactly the indexes of the migrated schema on PostgreSQL', async () => {
    let t: TestDatabase | undefined;
    try {
      t = await createTestDatabase({ poolSize: 1 });
      expect(await schemaIndexes(t.db)).toEqual([...documented].sort());
    } finally {
      await t?.drop();
    }
  });

  it('before the contract step, also the two it drops (which the previous version uses)', async () => {
    let t: TestDatabase | undefined;
    try {
      t = await createTestDatabase({ poolSize: 1, contract: false });
      expect(await schemaIndexes(t.db)).toEqual([...documented, ...DROPPED_BY_CONTRACT].sort());
    } finally {
      await t?.drop();
    }
  });

  it('is exactly the indexes of the migrated schema on PGlite', async () => {
    const db = await createDb({ pgliteDir: 'memory://' });
    try {
      await runMigrations(db.sql, { contract: true });
      expect(await schemaIndexes(db)).toEqual([...documented].sort());
    } finally {
      await db.close();
    }
  }, 60_000);
});
