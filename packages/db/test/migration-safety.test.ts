import { listMigrations } from '../src';
import { documentedIndexes } from './support/documented-indexes';

// Rolling-safety of migrations (docs/operations.md, "Rolling upgrades and the
// compact history"): during a rolling restart the previous version's processes
// run against the migrated schema, so a migration may add and relax, never take
// away what that version reads or writes. Checked on every migration from the
// compact history's on (earlier ones were applied before this rule was written
// down, by stop-the-world deploys). A text check of the SQL, comments removed:
// it catches the statements that break a running version, not every possible one.

const FIRST_CHECKED = '20261207150000_compact_history';

const checked = listMigrations().filter((m) => m.name >= FIRST_CHECKED);

/** The SQL without comments, on one line per statement, upper-cased. */
function statements(sql: string): string[] {
  return sql
    .replace(/--[^\n]*/g, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split(';')
    .map((s) => s.replace(/\s+/g, ' ').trim().toUpperCase())
    .filter(Boolean);
}

const FORBIDDEN: [RegExp, string][] = [
  [/\bDROP COLUMN\b/, 'drops a column (the previous version may still read or write it): leave it NULL, drop it in a later release'],
  [/\bDROP TABLE\b/, 'drops a table'],
  [/\bRENAME\b/, 'renames something the previous version names'],
  [/\bSET NOT NULL\b/, 'adds NOT NULL to a column the previous version may leave NULL'],
  [/\bALTER COLUMN "?[A-Z_]+"? (SET DATA )?TYPE\b/, 'changes a column type (a rewrite under lock; the previous version writes the old type)'],
];

describe('migrations are rolling-safe', () => {
  it('there is at least the compact history to check', () => {
    expect(checked.map((m) => m.name)).toContain(FIRST_CHECKED);
  });

  it.each(checked.map((m) => [m.name, m.sql]))('%s only adds and relaxes', (_name, sql) => {
    const used = new Set(documentedIndexes().map((name) => name.toUpperCase()));
    for (const statement of statements(sql)) {
      for (const [pattern, why] of FORBIDDEN) {
        if (pattern.test(statement)) throw new Error(`${statement}: ${why}`);
      }
      // A new NOT NULL column needs a default, or the previous version's inserts (which do not name it) fail.
      for (const add of statement.matchAll(/\bADD COLUMN ("?[A-Z_]+"?) ([^,]*)/g)) {
        if (/\bNOT NULL\b/.test(add[2]) && !/\bDEFAULT\b/.test(add[2])) throw new Error(`${statement}: adds NOT NULL column ${add[1]} without a default`);
      }
      // An index dropped must serve no query (it is not in the documented list of used indexes).
      for (const drop of statement.matchAll(/\bDROP INDEX (?:CONCURRENTLY )?(?:IF EXISTS )?"?([A-Z0-9_]+)"?/g)) {
        if (used.has(drop[1])) throw new Error(`${statement}: drops ${drop[1].toLowerCase()}, which docs/operations.md says a query uses`);
      }
    }
  });

  it('the check catches what it must', () => {
    const bad = ['ALTER TABLE "deliveries" DROP COLUMN "event"', 'ALTER TABLE "x" RENAME COLUMN "a" TO "b"', 'ALTER TABLE "x" ALTER COLUMN "a" SET NOT NULL'];
    for (const sql of bad) expect(FORBIDDEN.some(([pattern]) => statements(sql).some((s) => pattern.test(s)))).toBe(true);
    expect(statements('-- DROP COLUMN in a comment\nALTER TABLE "events" ADD COLUMN "data_z" BYTEA;')).toEqual(['ALTER TABLE "EVENTS" ADD COLUMN "DATA_Z" BYTEA']);
  });
});
