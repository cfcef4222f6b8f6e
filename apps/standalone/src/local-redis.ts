import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRedis, pingRedis } from '@hookline/queue';

// `npm start` needs Redis. When nothing answers at REDIS_URL (a local address)
// and a redis-server binary is installed, start one for this process, with its
// data (AOF) under ./.data/redis, and stop it on exit.
// It runs in a process group of its own (detached): a Ctrl-C in the terminal
// signals the whole foreground group, and a redis-server that died with it
// would leave the worker and API retrying a refused connection while they shut
// down. This process stops it itself, last, after everything that uses it.

export type LocalRedis = { url: string; child: ChildProcess | null; stop(): Promise<void> };

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

async function answers(url: string): Promise<boolean> {
  const redis = createRedis(url, 'producer');
  try {
    for (let i = 0; i < 3; i++) {
      if (await pingRedis(redis, 500)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  } finally {
    redis.disconnect();
  }
}

export async function ensureRedis(url: string, dataDir: string): Promise<LocalRedis> {
  if (await answers(url)) return { url, child: null, stop: async () => undefined };
  const parsed = new URL(url);
  const installed = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!LOCAL_HOSTS.has(parsed.hostname) || !installed) {
    throw new Error(
      installed
        ? `Redis is not answering at ${parsed.host}; start it or point REDIS_URL at a running Redis`
        : `Redis is not answering at ${parsed.host} and no redis-server is installed; install Redis (Debian/Ubuntu: apt-get install redis-server, macOS: brew install redis) or set REDIS_URL`,
    );
  }
  mkdirSync(dataDir, { recursive: true });
  const port = parsed.port || '6379';
  const child = spawn('redis-server', ['--port', port, '--bind', '127.0.0.1', '--dir', dataDir, '--appendonly', 'yes', '--save', '', '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Whatever ends this process (an uncaught error, process.exit), the server it started goes too.
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  // Its log (stdout) says why it stopped, e.g. "Failed listening on port … (tcp), aborting": kept for the error below.
  let said = '';
  const keep = (chunk: Buffer) => (said = (said + chunk.toString()).slice(-500));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) break;
    if (await answers(url)) {
      return {
        url,
        child,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          // SIGTERM makes it fsync the AOF and exit, well within this; never let it hold the shutdown.
          const slow = setTimeout(() => child.kill('SIGKILL'), 2_000);
          await exited;
          clearTimeout(slow);
          process.removeListener('exit', killOnExit);
        },
      };
    }
  }
  child.kill('SIGKILL');
  const why = said.trim().split('\n').pop()?.trim();
  throw new Error(`redis-server could not start on port ${port}${why ? ` (${why})` : ''}; is the port taken? Set REDIS_URL to a running Redis`);
}
