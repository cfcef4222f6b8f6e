import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

// Tests that run the compiled processes (node apps/*/dist/main.js, as the image
// and `npm run start:api|worker` do) build first. `tsc -b` is incremental: with
// nothing changed it takes about a second. Two jest workers may ask at once, so
// one builds while the other waits on a lock directory.

const ROOT = resolve(__dirname, '../..');
const LOCK = join(ROOT, 'node_modules/.cache/hookline-build.lock');
const STALE_MS = 5 * 60_000;

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export function ensureBuilt(): void {
  mkdirSync(join(ROOT, 'node_modules/.cache'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // A lock left by a killed run is taken over once it is old.
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_MS) rmdirSync(LOCK);
      } catch {
        // gone meanwhile
      }
      // Another test file is building: ensureBuilt is synchronous, so it blocks on the lock.
      sleep(200);
    }
  }
  try {
    execFileSync(process.execPath, [join(ROOT, 'scripts/prisma-generate.mjs')], { cwd: ROOT, stdio: 'pipe' });
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`npm run build failed:\n${String(stdout ?? '')}${String(stderr ?? '')}`);
  } finally {
    rmdirSync(LOCK);
  }
}

/** SIGKILLs every child still running and resolves once all have exited (before their database or prefix is cleaned). */
export async function killChildren(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((child) => {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    return exited;
  }));
}
