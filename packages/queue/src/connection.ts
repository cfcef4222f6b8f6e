import IORedis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';

// The one Redis connection factory of every process (API, worker, `npm start`,
// relay, rate limiter, dashboard sessions, Bull Board, probes). Three topologies:
// one server (REDIS_URL), a Redis Cluster (REDIS_CLUSTER_NODES), or a server
// found through Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_MASTER).

export type RedisRole = 'producer' | 'worker';

/** A connection to any of the three topologies; both speak the same commands. */
export type RedisClient = IORedis | Cluster;

export type RedisNode = { host: string; port: number };
/** Credentials and TLS shared by every node of a cluster, or by the master and sentinels. */
export type RedisAuth = { username?: string; password?: string; tls?: boolean };

export type RedisTarget =
  | { kind: 'server'; url: string }
  | ({ kind: 'cluster'; nodes: RedisNode[] } & RedisAuth)
  | ({ kind: 'sentinel'; sentinels: RedisNode[]; name: string } & RedisAuth);

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export type RedisEnv = { REDIS_URL?: string; REDIS_CLUSTER_NODES?: string; REDIS_SENTINELS?: string; REDIS_SENTINEL_MASTER?: string };

/**
 * `host:port,host:port` — or `redis://[user[:password]@]host:port` (`rediss://`
 * for TLS) entries, whose credentials and TLS then apply to every node, as
 * managed Redis services hand them out. Validated by the env schema first.
 */
export function parseNodeList(text: string): { nodes: RedisNode[] } & RedisAuth {
  const auth: RedisAuth = {};
  const nodes = text.split(',').map((raw) => {
    const entry = raw.trim();
    if (/^rediss?:\/\//.test(entry)) {
      const url = new URL(entry);
      if (url.protocol === 'rediss:') auth.tls = true;
      if (url.username) auth.username = decodeURIComponent(url.username);
      if (url.password) auth.password = decodeURIComponent(url.password);
      return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379) };
    }
    const at = entry.lastIndexOf(':');
    return { host: entry.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(entry.slice(at + 1)) };
  });
  return { nodes, ...auth };
}

/** The topology the (validated) environment names; REDIS_URL's default when none is set. */
export function redisTargetFromEnv(env: RedisEnv): RedisTarget {
  if (env.REDIS_CLUSTER_NODES) return { kind: 'cluster', ...parseNodeList(env.REDIS_CLUSTER_NODES) };
  if (env.REDIS_SENTINELS && env.REDIS_SENTINEL_MASTER) {
    const { nodes, ...auth } = parseNodeList(env.REDIS_SENTINELS);
    return { kind: 'sentinel', sentinels: nodes, name: env.REDIS_SENTINEL_MASTER, ...auth };
  }
  return { kind: 'server', url: env.REDIS_URL ?? DEFAULT_REDIS_URL };
}

/** Where a connection goes, for log lines (never credentials). */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.kind === 'cluster') return `Redis Cluster ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (target.kind === 'sentinel') return `Redis master "${target.name}" via Sentinel ${target.sentinels.map((n) => `${n.host}:${n.port}`).join(',')}`;
  const url = new URL(target.url);
  return `Redis ${url.host}`;
}

const retryStrategy = (n: number) => Math.min(n * 200, 2_000);

/**
 * Producers fail fast (no offline queue) so an outage is seen at once and the
 * outbox relay takes over; workers wait for Redis forever, as BullMQ requires.
 * After a failover the old master answers READONLY: reconnect, and Sentinel
 * (or the cluster's slot table) leads to the new one.
 */
export function redisOptions(role: RedisRole): RedisOptions {
  const common: RedisOptions = { retryStrategy, reconnectOnError: (err) => err.message.startsWith('READONLY') };
  return role === 'worker'
    ? { ...common, maxRetriesPerRequest: null, enableReadyCheck: true }
    : { ...common, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000 };
}

/** Options that belong to the Cluster object itself rather than to each node's connection. */
const CLUSTER_LEVEL = ['enableOfflineQueue', 'enableReadyCheck', 'enableAutoPipelining'] as const;

function clusterOptions(role: RedisRole, auth: RedisAuth): ClusterOptions {
  const perNode = redisOptions(role);
  const { enableOfflineQueue, enableReadyCheck } = perNode;
  return {
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    enableReadyCheck: enableReadyCheck ?? true,
    clusterRetryStrategy: retryStrategy,
    // A failover is over within the cluster's node timeout; commands wait for it rather than fail.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 200,
    slotsRefreshTimeout: 2_000,
    // TLS certificates name the host the service gave out, not the address it resolves to.
    ...(auth.tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
    redisOptions: {
      ...perNode,
      ...(auth.username ? { username: auth.username } : {}),
      ...(auth.password ? { password: auth.password } : {}),
      ...(auth.tls ? { tls: {} } : {}),
    },
  };
}

function sentinelOptions(role: RedisRole, target: Extract<RedisTarget, { kind: 'sentinel' }>): RedisOptions {
  return {
    ...redisOptions(role),
    sentinels: target.sentinels,
    name: target.name,
    // No failoverDetector: in ioredis 5 a +switch-master arriving while the
    // client is reconnecting ends the connection for good. A dead master's
    // connection fails and reconnects through the sentinels; a demoted one
    // answers READONLY (reconnectOnError above).
    sentinelRetryStrategy: retryStrategy,
    // Managed Sentinel setups use one password for the master and its sentinels.
    ...(target.username ? { username: target.username, sentinelUsername: target.username } : {}),
    ...(target.password ? { password: target.password, sentinelPassword: target.password } : {}),
    ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
  };
}

/**
 * Connection errors also surface on the commands that need Redis; `onError`
 * (a throttled log line, see throttledWarn) says why meanwhile. Without a
 * listener an 'error' event would crash the process. A plain string is a
 * one-server URL.
 */
export function createRedis(url: string, role: RedisRole, onError?: (err: Error) => void): IORedis;
export function createRedis(target: RedisTarget | string, role: RedisRole, onError?: (err: Error) => void): RedisClient;
export function createRedis(target: RedisTarget | string, role: RedisRole, onError: (err: Error) => void = () => undefined): RedisClient {
  const t: RedisTarget = typeof target === 'string' ? { kind: 'server', url: target } : target;
  const redis: RedisClient = t.kind === 'cluster'
    ? new Cluster(t.nodes, clusterOptions(role, t))
    : t.kind === 'sentinel'
      ? new IORedis(sentinelOptions(role, t))
      : new IORedis(t.url, redisOptions(role));
  redis.on('error', onError);
  return redis;
}

export const isCluster = (redis: RedisClient): redis is Cluster => (redis as Cluster).isCluster === true;

/**
 * A new connection to the same place as `redis`, with another role's options
 * and optional per-connection overrides (for the worker's relay and gate).
 * The caller adds its own 'error' listener.
 */
export function deriveRedis(redis: RedisClient, role: RedisRole, overrides: { maxRetriesPerRequest?: number | null; enableAutoPipelining?: boolean } = {}): RedisClient {
  if (!isCluster(redis)) return redis.duplicate({ ...redisOptions(role), ...overrides });
  const base = redis.options;
  const perNode = redisOptions(role);
  const clusterLevel = Object.fromEntries(CLUSTER_LEVEL.flatMap((k) => (perNode[k] !== undefined ? [[k, perNode[k]]] : [])));
  const { enableAutoPipelining, ...nodeOverrides } = overrides;
  return redis.duplicate([], {
    ...base,
    ...clusterLevel,
    ...(enableAutoPipelining !== undefined ? { enableAutoPipelining } : {}),
    redisOptions: { ...base.redisOptions, ...perNode, ...nodeOverrides },
  });
}

export async function pingRedis(redis: RedisClient, timeoutMs = 1_000): Promise<boolean> {
  const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
  const ping = async () => {
    if ((await redis.ping()) !== 'PONG') return false;
    // A cluster is only whole when every master answers: each holds some of the shards.
    if (!isCluster(redis)) return true;
    const masters = redis.nodes('master');
    if (masters.length === 0) return false;
    const answers = await Promise.all(masters.map((node) => node.ping().catch(() => 'down')));
    return answers.every((a) => a === 'PONG');
  };
  return Promise.race([ping().catch(() => false), timeout]);
}
