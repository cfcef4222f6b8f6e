import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { uniquePrefix } from './api-harness';
import { freePort } from './local-services';
import { waitUntil } from './wait-until';

// The real `npm start`, as a developer or an operator runs it: npm, its
// script, and whatever that starts. Spawned in a process group of its own, so
// a test can press Ctrl-C (SIGINT to the whole group) as a terminal would.

const ROOT = resolve(__dirname, '../..');

export type NpmStart = {
  child: ChildProcess;
  port: number;
  redisPort: number;
  base: string;
  output(): string;
  exited: Promise<number | null>;
  /** Every live process npm started, directly or not (npm itself included). */
  processTree(): number[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
};

/** pid → parent pid of every live (not zombie) process. */
function parents(): Map<number, number> {
  const map = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid …"; comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z') map.set(Number(entry), Number(ppid));
    } catch {
      // gone meanwhile
    }
  }
  return map;
}

export function descendants(root: number): number[] {
  const map = parents();
  const found = map.has(root) ? [root] : [];
  for (let i = 0; i < found.length; i++) {
    for (const [pid, ppid] of map) if (ppid === found[i]) found.push(pid);
  }
  return found;
}

/** Which of `pids` are still running (exited and reaped, or zombies, are not). */
export function stillRunning(pids: number[]): number[] {
  const map = parents();
  return pids.filter((pid) => map.has(pid));
}

export const commandOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '(gone)';
  }
};

/**
 * Runs `npm start` with only `env` (plus PATH and HOME) and resolves once its
 * output shows `waitFor` (default: the end of the banner) or it exited.
 */
export async function startNpmStart(extraEnv: Record<string, string | undefined>, opts: { waitFor?: string; timeoutMs?: number } = {}): Promise<NpmStart> {
  const [port, redisPort] = [await freePort(), await freePort()];
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    PORT: String(port),
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    QUEUE_PREFIX: uniquePrefix('standalone'),
    LOG_LEVEL: 'warn',
  };
  for (const [name, value] of Object.entries(extraEnv)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  let output = '';
  const child = spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waitFor = opts.waitFor ?? 'Press Ctrl-C to stop.';
  await waitUntil(() => output.includes(waitFor) || child.exitCode !== null, `npm start to print "${waitFor}"`, { timeoutMs: opts.timeoutMs ?? 120_000, intervalMs: 100 }).catch((err: Error) => {
    throw new Error(`${err.message}\n${output}`);
  });
  if (!opts.waitFor && !output.includes(waitFor)) throw new Error(`npm start exited early:\n${output}`);
  return {
    child,
    port,
    redisPort: env.REDIS_URL === `redis://127.0.0.1:${redisPort}` ? redisPort : 0,
    base: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    processTree: () => descendants(child.pid!),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Kills whatever is left of a start (after a failed test), the whole tree. */
export function killTree(app: NpmStart | undefined): void {
  if (!app) return;
  for (const pid of app.processTree()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
