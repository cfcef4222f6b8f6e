import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

// The repository's documents explain themselves: each relative link leads to a
// file (and heading) that exists, nothing points outside the repository, and
// history (dated run logs) lives in git, not in the docs.

const ROOT = resolve(__dirname, '../..');
const DOCS = ['README.md', 'ARCHITECTURE.md', ...readdirSync(join(ROOT, 'docs')).filter((n) => n.endsWith('.md')).map((n) => `docs/${n}`)];

/** GitHub's anchor of a heading. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');
const anchorsOf = (file: string) => new Set([...readFileSync(file, 'utf8').matchAll(/^#+ (.*)$/gm)].map((m) => anchor(m[1])));

describe('docs', () => {
  it.each(DOCS)('%s: every relative link resolves, headings included', (doc) => {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    const broken: string[] = [];
    for (const [, link] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(link)) continue;
      const [path, hash] = link.split('#');
      const target = path ? resolve(dirname(join(ROOT, doc)), path) : join(ROOT, doc);
      if (!target.startsWith(ROOT + '/')) broken.push(`${link}: outside the repository`);
      else if (!existsSync(target)) broken.push(`${link}: no such file`);
      else if (hash && target.endsWith('.md') && !anchorsOf(target).has(hash)) broken.push(`${link}: no such heading`);
    }
    expect(broken).toEqual([]);
  });

  it.each(DOCS)('%s: no run logs and no pointer outside the repository', (doc) => {
    const text = readFileSync(join(ROOT, doc), 'utf8').toLowerCase();
    // The folder beside a clone that the project's brief came from: a clone alone does not have it.
    const outside = ['..', 'shared'].join('/');
    for (const phrase of ['measured a fifth time', 'tried, not kept', 'this session', outside]) expect({ doc, phrase, found: text.includes(phrase) }).toEqual({ doc, phrase, found: false });
  });

  it('keeps the README a front door', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length).toBeLessThanOrEqual(200);
  });
});
