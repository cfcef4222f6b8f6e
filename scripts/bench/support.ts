import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

// Pieces shared by the benchmark's processes.

export type Receiver = {
  /** Base URL; webhook `i` of a fan-out points at `${url}/${i}` so its callbacks can be told apart. */
  url: string;
  /**
   * deliveryKey(event id, hook) → performance.now() at arrival (first arrival only).
   * Empty when the receiver only counts (`{ track: false }`).
   */
  arrivals: Map<string, number>;
  /** Callbacks that arrived again for an (event, hook) already received (tracked receivers only). */
  duplicates: number;
  /** The deliveryKeys received successfully more than once (tracked receivers only). */
  duplicated: Set<string>;
  /** Every successful copy of each delivery (tracked receivers only): when its request arrived and when it was answered (performance.now()), and the sender's port. */
  copies: Map<string, Array<{ receivedAt: number; answeredAt: number; port: number }>>;
  total: number;
  /** Callbacks answered 500 on purpose (`failShare`); they count in `total`, not in `arrivals`. */
  failed: number;
  /** Callbacks received per hook path segment ('' for the base URL). */
  perHook: Map<string, number>;
  onArrival?: () => void;
  close(): Promise<void>;
};

const EVENT_ID = /"id":"(evt_[0-9A-Za-z]+)"/;

/** The key of one delivery in `Receiver.arrivals`: the event id alone for the base URL, else `${eventId}/${hook}`. */
export function deliveryKey(eventId: string, hook: string | number): string {
  return hook === '' ? eventId : `${eventId}/${hook}`;
}

/** The deliveries sent at or after `from` (a paced phase's measured part, after its settling seconds). */
export function sentSince(sent: Map<string, number>, from: number): Map<string, number> {
  return new Map([...sent].filter(([, sentAt]) => sentAt >= from));
}

/** The hook a callback was sent to: the path segment after the receiver's base path ('' for the base itself). */
function hookOf(path: string | undefined): string {
  const match = /^\/hooks(?:\/([^/?]+))?/.exec(path ?? '');
  return match?.[1] ?? '';
}

export type ReceiverOptions = {
  /** false: only count callbacks (no per-delivery keys). */
  track?: boolean;
  /** Answer each callback after this many ms (0: at once). */
  delayMs?: number;
  /** This share of callbacks, at random, is answered 500 (not received: the sender must retry it). */
  failShare?: number;
};

/**
 * A fast loopback receiver. It records when each delivery's callback first arrived,
 * per (event id, hook), or with `{ track: false }` only counts callbacks (a soak of
 * a million deliveries need not keep a million keys).
 */
export async function startBenchReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const track = opts.track ?? true;
  const failShare = opts.failShare ?? 0;
  const receiver: Receiver = { url: '', arrivals: new Map(), duplicates: 0, duplicated: new Set(), copies: new Map(), total: 0, failed: 0, perHook: new Map(), close: async () => undefined };
  const timers = new Set<NodeJS.Timeout>();
  const answer = (res: ServerResponse, status: number) => {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': '2' });
    res.end('{}');
  };
  const server: Server = createServer((req, res) => {
    let head = '';
    const receivedAt = performance.now();
    req.on('data', (chunk: Buffer) => {
      if (track && head.length < 200) head += chunk.toString('utf8', 0, 200);
    });
    req.on('end', () => {
      receiver.total++;
      const hook = hookOf(req.url);
      receiver.perHook.set(hook, (receiver.perHook.get(hook) ?? 0) + 1);
      const fail = failShare > 0 && Math.random() < failShare;
      const settle = () => {
        if (fail) {
          receiver.failed++;
          answer(res, 500);
          return;
        }
        // Received when answered: a callback answered 200 is one the sender counts as delivered.
        const now = performance.now();
        const id = track ? EVENT_ID.exec(head)?.[1] : undefined;
        if (id) {
          const key = deliveryKey(id, hook);
          const copy = { receivedAt, answeredAt: now, port: req.socket.remotePort ?? 0 };
          const seen = receiver.copies.get(key);
          if (seen) seen.push(copy);
          else receiver.copies.set(key, [copy]);
          if (receiver.arrivals.has(key)) {
            receiver.duplicates++;
            receiver.duplicated.add(key);
          } else receiver.arrivals.set(key, now);
        }
        answer(res, 200);
        receiver.onArrival?.();
      };
      if (!opts.delayMs) return settle();
      const timer = setTimeout(() => {
        timers.delete(timer);
        settle();
      }, opts.delayMs);
      timers.add(timer);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
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

export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

let lastLogged = 0;

/** A progress line: rewritten in place on a terminal; in a log, at most one line every 2 s. */
export function progress(line: string): void {
  if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${line}`);
  else if (line && performance.now() - lastLogged >= 2_000) {
    lastLogged = performance.now();
    process.stdout.write(`${line}\n`);
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The process that runs a child's program: the child itself when it is node (spawnTsx
 * runs node with tsx as a loader, one process), else the first node process below it
 * (were it started through a wrapper such as tsx's CLI or npm). Linux /proc only.
 */
export function programPid(pid: number): number {
  const queue = [pid];
  while (queue.length) {
    const current = queue.shift()!;
    let comm = '';
    let cmdline: string[] = [];
    try {
      comm = readFileSync(`/proc/${current}/comm`, 'utf8').trim();
      cmdline = readFileSync(`/proc/${current}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    // A wrapper (npm, sh, tsx's CLI) is looked through; the node process that imports the loader runs the program.
    if (comm === 'node' && !cmdline.some((arg) => /[/\\]tsx[/\\]dist[/\\]cli/.test(arg) || arg.endsWith('npm-cli.js'))) return current;
    queue.push(...childPids(current));
  }
  return pid;
}

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status), or NaN if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The command line of a process, for the record (arguments joined by spaces). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '?';
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
