import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RedisTarget } from '@hookline/queue';
import { canListen as portFree } from './local-services';
import { waitUntil } from './wait-until';

// Real Redis topologies for tests, started from the installed redis-server and
// redis-cli binaries on loopback ports of their own (never the shared Redis),
// with short failure timeouts, and stopped (processes killed, folders removed)
// by stop(). Each server runs as a child process of the test, so a test can
// SIGKILL a master and watch a replica take over.

const run = promisify(execFile);

/** redis-cli against one port; resolves to its output (trimmed). */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout.trim();
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  await waitUntil(check, `redis topology: ${what}`, { timeoutMs, intervalMs: 100 });
}

/**
 * `count` consecutive free ports whose cluster bus ports (+10000) are free too,
 * picked at random in 20000–29999 so parallel test files do not collide.
 */
async function freePorts(count: number): Promise<number[]> {
  for (let tries = 0; tries < 200; tries += 1) {
    const base = 20_000 + Math.floor(Math.random() * (10_000 - count));
    const ports = Array.from({ length: count }, (_, i) => base + i);
    const free = await Promise.all(ports.flatMap((p) => [portFree(p), portFree(p + 10_000)]));
    if (free.every(Boolean)) return ports;
  }
  throw new Error('redis topology: no free ports');
}

export type RedisProcess = {
  port: number;
  child: ChildProcess;
  /** Kills the server (SIGKILL: no goodbye, as a crash) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
};

function startServer(dir: string, port: number, extra: string[], sentinel = false): Promise<RedisProcess> {
  const args = sentinel
    ? [join(dir, `sentinel-${port}.conf`), '--sentinel']
    : ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--dbfilename', `dump-${port}.rdb`, ...extra];
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: RedisProcess = {
    port,
    child,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  return until(`redis-server on ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited (${child.exitCode})`);
    return (await redisCli(port, 'ping')) === 'PONG';
  }, 10_000).then(() => proc, async (err: Error) => {
    await proc.kill();
    throw err;
  });
}

/**
 * One plain redis-server, without persistence unless `appendonly` (AOF, fsync every
 * second): kill it and start it again on the same port, with its data or empty.
 */
export type SingleRedis = {
  port: number;
  url: string;
  target: RedisTarget;
  process: RedisProcess;
  /** SIGKILL, then a fresh empty server on the same port (its data files deleted). */
  restartEmpty(): Promise<void>;
  /** SIGKILL, then the server again on the same port, from what it had written (its AOF, if on). */
  restart(): Promise<void>;
  stop(): Promise<void>;
};

export async function startSingleRedis(opts: { appendonly?: boolean } = {}): Promise<SingleRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'hookline-redis-'));
  const [port] = await freePorts(1);
  // Later arguments win: --appendonly yes overrides startServer's default.
  const extra = opts.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'everysec', '--appenddirname', `aof-${port}`] : [];
  const single: SingleRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    target: { kind: 'server', url: `redis://127.0.0.1:${port}` },
    process: await startServer(dir, port, extra),
    async restartEmpty() {
      await single.process.kill('SIGKILL');
      for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
      single.process = await startServer(dir, port, extra);
    },
    async restart() {
      await single.process.kill('SIGKILL');
      single.process = await startServer(dir, port, extra);
    },
    async stop() {
      await single.process.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return single;
}

export type RedisCluster = {
  target: RedisTarget;
  nodes: RedisProcess[];
  /** The ports of the nodes that are masters right now (as a live node sees it). */
  masterPorts(): Promise<number[]>;
  /** Waits until every live node reports cluster_state:ok and `masters` live masters. */
  waitHealthy(masters: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
};

/** Parses CLUSTER NODES: the ports of live masters that hold slots. */
function liveMasters(clusterNodes: string): number[] {
  return clusterNodes
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter((f) => f.length >= 9 && f[2].includes('master') && !f[2].includes('fail') && f[7] === 'connected')
    .map((f) => Number(f[1].split('@')[0].split(':').pop()));
}

/**
 * A Redis Cluster of `masters` masters with `replicas` replicas each, on
 * loopback; cluster-node-timeout 1000 ms, so a replica takes over a dead
 * master within a few seconds.
 */
export async function startRedisCluster(opts: { masters?: number; replicas?: number } = {}): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'hookline-cluster-'));
  const ports = await freePorts(masters * (1 + replicas));
  const nodes: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      nodes.push(await startServer(dir, port, [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '1000',
        // A replica whose master was lost may take over however stale it is: the relay covers what it missed.
        '--cluster-replica-validity-factor', '0',
      ]));
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30_000 });
  } catch (err) {
    await stop();
    throw err;
  }
  const alive = () => nodes.filter((node) => node.child.exitCode === null && node.child.signalCode === null);
  const cluster: RedisCluster = {
    target: { kind: 'cluster', nodes: ports.map((port) => ({ host: '127.0.0.1', port })) },
    nodes,
    async masterPorts() {
      return liveMasters(await redisCli(alive()[0].port, 'cluster', 'nodes'));
    },
    async waitHealthy(expected, timeoutMs = 20_000) {
      await until(`cluster with ${expected} masters`, async () => {
        for (const node of alive()) {
          if (!(await redisCli(node.port, 'cluster', 'info')).includes('cluster_state:ok')) return false;
          if (liveMasters(await redisCli(node.port, 'cluster', 'nodes')).length !== expected) return false;
        }
        // Replicas in sync, so a master's loss is a replica's promotion, not a gap.
        for (const node of alive()) {
          const info = await redisCli(node.port, 'info', 'replication');
          if (info.includes('role:slave') && !info.includes('master_link_status:up')) return false;
        }
        return true;
      }, timeoutMs);
    },
    stop,
  };
  try {
    await cluster.waitHealthy(masters);
  } catch (err) {
    await stop();
    throw err;
  }
  return cluster;
}

export type SentinelSetup = {
  target: RedisTarget;
  masterName: string;
  /** The data servers (the first started as master, the second as its replica). */
  servers: RedisProcess[];
  sentinels: RedisProcess[];
  /** The port Sentinel names as the master right now. */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
};

/**
 * One master, one replica and three sentinels (quorum 2) on loopback;
 * down-after-milliseconds 1000, so a dead master is failed over within seconds.
 */
export async function startSentinelSetup(): Promise<SentinelSetup> {
  const dir = mkdtempSync(join(tmpdir(), 'hookline-sentinel-'));
  const [masterPort, replicaPort, ...sentinelPorts] = await freePorts(5);
  const masterName = 'hookline-test';
  const servers: RedisProcess[] = [];
  const sentinels: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all([...sentinels, ...servers].map((p) => p.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    servers.push(await startServer(dir, masterPort, []));
    servers.push(await startServer(dir, replicaPort, ['--replicaof', '127.0.0.1', String(masterPort)]));
    await until('replica in sync', async () => (await redisCli(replicaPort, 'info', 'replication')).includes('master_link_status:up'));
    for (const port of sentinelPorts) {
      // Sentinel rewrites its own config file: one per sentinel, in the test's folder.
      writeFileSync(join(dir, `sentinel-${port}.conf`), [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'));
      sentinels.push(await startServer(dir, port, [], true));
    }
    // Every sentinel knows the replica and the two other sentinels before anything fails.
    await until('sentinels ready', async () => {
      for (const port of sentinelPorts) {
        const master = await redisCli(port, 'sentinel', 'master', masterName);
        const fields = master.split('\n');
        const field = (name: string) => fields[fields.indexOf(name) + 1];
        if (field('num-slaves') !== '1' || field('num-other-sentinels') !== '2') return false;
      }
      return true;
    }, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    target: { kind: 'sentinel', sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })), name: masterName },
    masterName,
    servers,
    sentinels,
    async masterPort() {
      const [, port] = (await redisCli(sentinelPorts[0], 'sentinel', 'get-master-addr-by-name', masterName)).split('\n');
      return Number(port);
    },
    stop,
  };
}
