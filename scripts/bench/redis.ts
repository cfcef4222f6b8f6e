import IORedis from 'ioredis';
import type { RedisTarget } from '@hookline/queue';
import { startRedisCluster } from '../../tests/support/redis-topology';
import { onInterrupt } from './stack';

// Which Redis a bench run uses: the machine's server (BENCH_REDIS_URL, default
// redis://127.0.0.1:6379), or with `--redis cluster` a 3-master Redis Cluster
// started from the installed redis-server on loopback ports of its own for this
// run, and stopped (data removed) at its end, also on Ctrl-C.

export type BenchRedis = {
  label: string;
  target: RedisTarget;
  /** What the API, the workers and the ceiling are given. */
  env: Record<string, string>;
  /** host:port of every master (commandstats are read from each and summed). */
  masters(): Promise<Array<{ host: string; port: number }>>;
  stop(): Promise<void>;
};

const SERVER_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

let current: BenchRedis = {
  label: `one server (${new URL(SERVER_URL).host})`,
  target: { kind: 'server', url: SERVER_URL },
  env: { REDIS_URL: SERVER_URL },
  masters: () => Promise.resolve([{ host: new URL(SERVER_URL).hostname, port: Number(new URL(SERVER_URL).port || 6379) }]),
  stop: () => Promise.resolve(),
};

export const benchRedis = (): BenchRedis => current;

/** Starts a 3-master cluster for this run and makes it the bench's Redis. */
export async function useCluster(masters = 3): Promise<void> {
  process.stderr.write(`bench: starting a ${masters}-master Redis Cluster on loopback…\n`);
  const cluster = await startRedisCluster({ masters });
  const unregister = onInterrupt(() => cluster.stop());
  const nodes = cluster.target.kind === 'cluster' ? cluster.target.nodes : [];
  current = {
    label: `a ${masters}-master Redis Cluster (${nodes.map((n) => n.port).join(', ')})`,
    target: cluster.target,
    env: { REDIS_CLUSTER_NODES: nodes.map((n) => `${n.host}:${n.port}`).join(',') },
    async masters() {
      const ports = await cluster.masterPorts();
      return ports.map((port) => ({ host: '127.0.0.1', port }));
    },
    async stop() {
      unregister();
      await cluster.stop();
    },
  };
}

/** A plain connection to one master (INFO, SCAN). */
export const masterClient = (node: { host: string; port: number }) => new IORedis({ host: node.host, port: node.port, maxRetriesPerRequest: 1, lazyConnect: false });
