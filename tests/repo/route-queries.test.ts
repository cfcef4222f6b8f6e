import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

// ARCHITECTURE.md: routes only parse and answer, and the dashboard calls the
// same services as /v1. So no route of /v1 or of the dashboard queries the
// database itself: a Prisma call there fails here (the ops routes' probes go
// through packages/db, not Prisma, and are not routes of either).

const ROOT = resolve(__dirname, '../..');
const DIRS = ['apps/api/src/routes', 'apps/api/src/dashboard'];

const files = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );

/** Lines that reach Prisma: `.prisma.` or a `prisma` taken out of a db. */
const prismaCalls = (text: string) => text.split('\n').filter((line) => /\.prisma\b|\bprisma\s*[.}]/.test(line) && !/^\s*(\/\/|\*)/.test(line));

it('finds a Prisma query, and not the word in a comment', () => {
  expect(prismaCalls('const row = await deps.db.prisma.apiKey.findFirst({')).toHaveLength(1);
  expect(prismaCalls('const { prisma } = deps.db;')).toHaveLength(1);
  expect(prismaCalls('// no prisma.delivery here')).toEqual([]);
});

it.each(DIRS)('%s: no Prisma query (they go through apps/api/src/services)', (dir) => {
  const found = files(dir).flatMap((file) => prismaCalls(readFileSync(join(ROOT, file), 'utf8')).map((line) => `${file}: ${line.trim()}`));
  expect(found).toEqual([]);
});
