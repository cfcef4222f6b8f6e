import { CONTRACT_DIR, listMigrations } from '../src';
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

/**
 * The SQL without comments, on one line per statement, upper-cased. A function's
 * body is left out: the migration creates it, it does not run it (what it does
 * when run is checked by its own tests); a DO block's body runs, and is checked.
 */
function statements(sql: string): string[] {
  return sql
    .replace(/--[^\n]*/g, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(CREATE (?:OR REPLACE )?FUNCTION[\s\S]*?)\$\$[\s\S]*?\$\$/gi, '$1$$$$ $$$$')
    .split(';')
    .map((s) => s.replace(/\s+/g, ' ').trim().toUpperCase())
    .filter(Boolean);
}

const FORBIDDEN: [RegExp, string][] = [
  [/\bDROP COLUMN\b/, 'drops a column (the previous version may still read or write it): leave it NULL, drop it in a later release'],
  [/\bDROP TABLE\b/, 'drops a table'],
  [/\bSET NOT NULL\b/, 'adds NOT NULL to a column the previous version may leave NULL'],
  [/\bALTER COLUMN "?[A-Z_]+"? (SET DATA )?TYPE\b/, 'changes a column type (a rewrite under lock; the previous version writes the old type)'],
];

// The one exception: a table swapped for a partitioned one under its name
// (20261207160000_partitioned_history). The old table and its indexes may be
// renamed to <table>_legacy… only when the same migration creates the table again
// under the old name, LIKE the renamed one (same columns, defaults and NOT NULLs),
// and every index renamed again under its old name, so every name the previous
// version uses still means the same thing. apps/worker/test/rolling-upgrade.test.ts
// runs the previous version's statements against the result.
function swapProblem(statement: string, all: string[]): string | null {
  const table = /^ALTER TABLE "?([A-Z_]+)"? RENAME TO "?([A-Z_]+)"?$/.exec(statement);
  if (table) {
    const [, name, to] = table;
    if (to !== `${name}_LEGACY`) return `renames ${name} to ${to}, not ${name}_LEGACY`;
    const recreated = all.some((s) => s.startsWith(`CREATE TABLE "${name}" (LIKE "${to}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY`));
    return recreated ? null : `renames ${name} without creating it again LIKE ${to}`;
  }
  const index = /^ALTER INDEX "?([A-Z0-9_]+)"? RENAME TO "?([A-Z0-9_]+)"?$/.exec(statement);
  if (index) {
    const [, name, to] = index;
    const swapped = all.some((s) => {
      const m = /^ALTER TABLE "?([A-Z_]+)"? RENAME TO /.exec(s);
      return m !== null && name.startsWith(`${m[1]}_`) && to === `${m[1]}_LEGACY_${name.slice(m[1].length + 1)}`;
    });
    const again = all.some((s) => s.includes(`INDEX "${name}" ON`) || s.includes(`CONSTRAINT "${name}" PRIMARY KEY`));
    return swapped && again ? null : `renames index ${name} outside a table swap, or without making it again`;
  }
  return 'renames something the previous version names';
}

describe('migrations are rolling-safe', () => {
  it('there is at least the compact history to check', () => {
    expect(checked.map((m) => m.name)).toContain(FIRST_CHECKED);
  });

  it.each(checked.map((m) => [m.name, m.sql]))('%s only adds and relaxes', (_name, sql) => {
    const used = new Set(documentedIndexes().map((name) => name.toUpperCase()));
    const all = statements(sql);
    for (const statement of all) {
      if (/\bRENAME\b/.test(statement)) {
        const problem = swapProblem(statement, all);
        if (problem) throw new Error(`${statement}: ${problem}`);
      }
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

  // A contract step (prisma/contract, run once no earlier version runs) takes away
  // only what no query of this version uses: an index or key not in the list.
  it.each(listMigrations(CONTRACT_DIR).map((m) => [m.name, m.sql]))('contract step %s drops nothing this version uses', (_name, sql) => {
    const used = new Set(documentedIndexes().map((name) => name.toUpperCase()));
    const dropped = statements(sql).flatMap((statement) => [
      ...statement.matchAll(/\bDROP INDEX (?:CONCURRENTLY )?(?:IF EXISTS )?"?([A-Z0-9_]+)"?/g),
      ...statement.matchAll(/\bDROP CONSTRAINT (?:IF EXISTS )?"?([A-Z0-9_]+)"?/g),
    ].map((m) => m[1]));
    expect(dropped.length).toBeGreaterThan(0);
    for (const name of dropped) expect(used.has(name)).toBe(false);
    for (const statement of statements(sql)) {
      for (const [pattern, why] of FORBIDDEN) {
        if (pattern.test(statement)) throw new Error(`${statement}: ${why}`);
      }
    }
  });

  it('the check catches what it must', () => {
    const bad = ['ALTER TABLE "deliveries" DROP COLUMN "event"', 'ALTER TABLE "x" ALTER COLUMN "a" SET NOT NULL'];
    for (const sql of bad) expect(FORBIDDEN.some(([pattern]) => statements(sql).some((s) => pattern.test(s)))).toBe(true);
    const renames = (sql: string) => statements(sql).filter((s) => /\bRENAME\b/.test(s)).map((s) => swapProblem(s, statements(sql)));
    expect(renames('ALTER TABLE "x" RENAME COLUMN "a" TO "b"')).toEqual([expect.any(String)]);
    expect(renames('ALTER TABLE "events" RENAME TO "events_old"')).toEqual([expect.any(String)]);
    expect(renames('ALTER TABLE "events" RENAME TO "events_legacy"')).toEqual([expect.any(String)]);
    const swap = 'ALTER TABLE "events" RENAME TO "events_legacy"; ALTER INDEX "events_pkey" RENAME TO "events_legacy_pkey";'
      + ' CREATE TABLE "events" (LIKE "events_legacy" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("created_at");';
    expect(renames(swap)).toEqual([null, expect.any(String)]);
    expect(renames(`${swap} ALTER TABLE "events" ADD CONSTRAINT "events_pkey" PRIMARY KEY ("id", "created_at");`)).toEqual([null, null]);
    expect(statements('-- DROP COLUMN in a comment\nALTER TABLE "events" ADD COLUMN "data_z" BYTEA;')).toEqual(['ALTER TABLE "EVENTS" ADD COLUMN "DATA_Z" BYTEA']);
    expect(statements('CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE x; END $$; DO $$ BEGIN DROP TABLE y; END $$;'))
      .toEqual(['CREATE FUNCTION F() RETURNS VOID LANGUAGE PLPGSQL AS $$ $$', 'DO $$ BEGIN DROP TABLE Y', 'END $$']);
  });
});
