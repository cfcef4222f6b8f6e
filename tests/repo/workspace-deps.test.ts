import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';

// Each workspace declares what its shipped code imports (other workspaces
// included), so the layering is written down in its package.json, not only
// followed: a new import of an undeclared package fails here. Tests and their
// helpers use the root's devDependencies.

const ROOT = resolve(__dirname, '../..');
const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
const workspaces = root.workspaces.flatMap((pattern) => {
  const parent = pattern.replace(/\/\*$/, '');
  return readdirSync(join(ROOT, parent)).map((name) => `${parent}/${name}`).filter((dir) => statSync(join(ROOT, dir, 'package.json'), { throwIfNoEntry: false }));
});

const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });

// Static imports and re-exports, `import()`, `require()` and bare `import 'x'`.
const IMPORT = /(?:^|[^\w.$])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[^\w.$])import\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|[^\w.$])require\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

/** The packages a file imports, by package name (`@scope/name` or `name`). */
export function importedPackages(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2] ?? match[3] ?? match[4];
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) continue;
    names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
  return [...names];
}

describe('workspace dependencies', () => {
  it('finds every kind of import, and only packages', () => {
    const text = [
      "import { a } from '@scope/pkg/sub';",
      "import type { B } from 'plain';",
      "export { c } from 'reexported';",
      "const d = await import('dynamic');",
      "const e = require('required/deep/path');",
      "import 'side-effect';",
      "import { f } from './relative';",
      "import { g } from 'node:fs';",
      "import { h } from 'crypto';",
    ].join('\n');
    expect(importedPackages(text).sort()).toEqual(['@scope/pkg', 'dynamic', 'plain', 'reexported', 'required', 'side-effect']);
  });

  it.each(workspaces)('%s declares every package its src imports', (workspace) => {
    const pkg = JSON.parse(readFileSync(join(ROOT, workspace, 'package.json'), 'utf8')) as { name: string; dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
    const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {}), pkg.name]);
    const undeclared = sources(join(ROOT, workspace, 'src')).flatMap((file) =>
      importedPackages(readFileSync(file, 'utf8')).filter((name) => !declared.has(name)).map((name) => `${file.slice(ROOT.length + 1)} imports ${name}`),
    );
    expect(undeclared).toEqual([]);
  });

  it('declares other workspaces as "*", so npm links the local copy', () => {
    const names = new Set(workspaces.map((dir) => (JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as { name: string }).name));
    for (const dir of workspaces) {
      const deps = (JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
      for (const [name, range] of Object.entries(deps)) if (names.has(name)) expect({ dir, name, range }).toEqual({ dir, name, range: '*' });
    }
  });
});
