import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

// Helpers for fault tests: a free loopback port, and a redis-server of the
// test's own (no persistence) that it can stop and start without touching the
// machine's shared Redis.

/** Whether a server could listen on this loopback port now. */
export const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/**
 * A free loopback port for a server the test starts itself, picked at random
 * in 10000–19999: below the kernel's ephemeral range (32768+ here), which
 * listen(0) and every outgoing connection draw from, so nothing else is handed
 * it in the seconds before that server binds it (a port from listen(0) once was:
 * "redis-server could not start on port 44687"), and apart from the topology
 * helper's 20000–39999 (tests/support/redis-topology.ts).
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries += 1) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    if (await canListen(port)) return port;
  }
  throw new Error('no free port in 10000-19999');
}

export type OwnRedis = {
  port: number;
  url: string;
  /** Starts it (again) on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Kills it (SIGKILL) and waits for the exit; a no-op when it is not running. */
  stop(): Promise<void>;
};

export async function ownRedisServer(): Promise<OwnRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start() {
      const started = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
      child = started;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('redis-server did not start within 10 s')), 10_000);
        started.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('Ready to accept connections')) {
            clearTimeout(timer);
            resolve();
          }
        });
        started.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`redis-server exited with ${code}`));
        });
      });
    },
    async stop() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
  };
}
