import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// One `npm start` per data folder: two processes on one PGlite folder (or one
// redis-server data dir) corrupt it. The lock is a file holding the owner's pid,
// created exclusively; a lock whose pid is no longer alive (a crash, kill -9) is
// taken over.

export const DATA_LOCK_FILE = 'hookline.lock';

export type DataLock = { file: string; release(): void };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the pid exists but belongs to another user; still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the data folder's lock or throws one line naming the process that holds it. */
export function lockDataDir(dataDir: string): DataLock {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, DATA_LOCK_FILE);
  for (let tries = 0; tries < 3; tries++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
        } catch {
          // already gone
        }
      };
      process.once('exit', release);
      return { file, release };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = NaN;
    try {
      holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
    } catch {
      continue; // removed meanwhile: try again
    }
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw new Error(`another Hookline (pid ${holder}) is using the data folder ${dataDir}; stop it first, or set HOOKLINE_DATA_DIR to another folder`);
    }
    // A stale lock (its process is gone, or the file is unreadable): take it over.
    try {
      unlinkSync(file);
    } catch {
      // another start took it over first: the next try sees its pid
    }
  }
  throw new Error(`could not take the lock ${file}; is another Hookline starting on the same data folder?`);
}
