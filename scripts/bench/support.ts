import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

// Pieces shared by the benchmark's processes.

export type Receiver = {
  url: string;
  /** event id → performance.now() at arrival (first arrival only) */
  arrivals: Map<string, number>;
  duplicates: number;
  total: number;
  onArrival?: () => void;
  close(): Promise<void>;
};

const EVENT_ID = /"id":"(evt_[0-9A-Za-z]+)"/;

/** A fast loopback receiver that records when each event's callback first arrived. */
export async function startBenchReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', arrivals: new Map(), duplicates: 0, total: 0, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    let head = '';
    req.on('data', (chunk: Buffer) => {
      if (head.length < 200) head += chunk.toString('utf8', 0, 200);
    });
    req.on('end', () => {
      const now = performance.now();
      receiver.total++;
      const id = EVENT_ID.exec(head)?.[1];
      if (id) {
        if (receiver.arrivals.has(id)) receiver.duplicates++;
        else receiver.arrivals.set(id, now);
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end('{}');
      receiver.onArrival?.();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

/** An endpoint that answers 200 only after `delayMs`; counts requests received and answered. */
export async function startSlowReceiver(delayMs: number): Promise<{ url: string; received: number; answered: number; close(): Promise<void> }> {
  const timers = new Set<NodeJS.Timeout>();
  const state = { url: '', received: 0, answered: 0, close: async (): Promise<void> => undefined };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.received++;
      const timer = setTimeout(() => {
        timers.delete(timer);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
        res.end('{}', () => state.answered++);
      }, delayMs);
      timers.add(timer);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** An endpoint that accepts connections and reads requests but never answers; counts connections. */
export async function startSilentReceiver(): Promise<{ url: string; connections: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { url: '', connections: 0, close: async (): Promise<void> => undefined };
  const server = createTcpServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return state;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/**
 * Runs a TypeScript entry point in ONE node process (tsx as a loader, not tsx's CLI,
 * which would run the program in a grandchild): a kill reaches the program itself, so
 * nothing keeps writing to the bench's database or Redis prefix after it is stopped.
 */
export function spawnTsx(entry: string, env: Record<string, string>, label: string): ChildProcess {
  // BENCH_CPU_PROF=DIR: each child writes a V8 CPU profile there (node --cpu-prof), for profiling the worker under load.
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', entry], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', (code, signal) => {
    // A child this process stopped on purpose (kill) is not worth a report.
    if (code && code !== 0 && !child.killed) process.stderr.write(`\n[${label}] exited with ${code ?? signal}; last output:\n${tail}\n`);
  });
  return child;
}

export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function progress(line: string): void {
  if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${line}`);
  else if (line) process.stdout.write(`${line}\n`);
}
