import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

// @hookline/verify as a receiver gets it: compiled with the package's own
// build config, packed into a tarball (its `files`, `main` and `types` as
// shipped) and installed with npm into a fresh project in a temp directory.
// Nothing is written into the repository (the build goes to the temp dir).

const ROOT = resolve(__dirname, '../..');
const PACKAGE = resolve(ROOT, 'packages/verify');
const run = promisify(execFile);

export type InstalledVerifyPackage = {
  /** A receiver project with @hookline/verify in node_modules: scripts copied here can import it. */
  dir: string;
  /** Copies a file of the repository into the receiver project; returns its new path. */
  copy(repoPath: string): Promise<string>;
  cleanup(): Promise<void>;
};

export async function installVerifyPackage(): Promise<InstalledVerifyPackage> {
  const tmp = await mkdtemp(join(tmpdir(), 'hookline-verify-'));
  try {
    const staged = join(tmp, 'package');
    await run(resolve(ROOT, 'node_modules/.bin/tsc'), ['-p', join(PACKAGE, 'tsconfig.build.json'), '--outDir', join(staged, 'dist')], { cwd: PACKAGE });
    await copyFile(join(PACKAGE, 'package.json'), join(staged, 'package.json'));
    await copyFile(join(PACKAGE, 'README.md'), join(staged, 'README.md'));
    // Scripts off: prepack would build again, into the repository. No npm_* variables of an
    // enclosing `npm test` (its local prefix is the repository): this npm acts on the temp dir only.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    const npmEnv = { ...inherited, npm_config_cache: join(tmp, 'npm-cache'), npm_config_update_notifier: 'false' };
    await run('npm', ['pack', staged, '--pack-destination', tmp, '--ignore-scripts', '--silent'], { cwd: tmp, env: npmEnv });
    const tarball = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error('npm pack made no tarball');

    const dir = join(tmp, 'receiver');
    await mkdir(dir);
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'receiver', private: true }));
    await run('npm', ['install', '--prefix', dir, '--offline', '--no-audit', '--no-fund', '--ignore-scripts', join(tmp, tarball)], { cwd: dir, env: npmEnv });
    return {
      dir,
      async copy(repoPath) {
        const target = join(dir, repoPath.split('/').pop()!);
        await copyFile(resolve(ROOT, repoPath), target);
        return target;
      },
      cleanup: () => rm(tmp, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
