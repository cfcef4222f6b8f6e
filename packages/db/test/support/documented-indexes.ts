import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** docs/operations.md, whose "## Indexes" section lists every index and the query it serves. */
export const DOC = join(__dirname, '../../../../docs/operations.md');

/** The index names of the table under "## Indexes", in its order. */
export function documentedIndexes(markdown = readFileSync(DOC, 'utf8')): string[] {
  const start = markdown.indexOf('\n## Indexes\n');
  if (start < 0) throw new Error('docs/operations.md has no "## Indexes" section');
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]);
}
