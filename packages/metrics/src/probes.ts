import type { Metrics } from './index';

// Readiness and scrape-time gauges shared by the API (/readyz, /metrics) and the
// worker's health port. Typed structurally so this package imports no I/O library.

export type ProbeState = 'up' | 'down';
export type ReadinessChecks = { postgres: ProbeState; redis: ProbeState };
export type Readiness = { ready: boolean; checks: ReadinessChecks; message: string };

export type ReadinessProbes = { postgres: () => Promise<boolean>; redis: () => Promise<boolean> };

const PROBE_NAMES: Record<keyof ReadinessChecks, string> = { postgres: 'PostgreSQL', redis: 'Redis' };

/** false when the probe throws or does not answer in time: a blackholed host must not hang the probe. */
function within(probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
  });
  const answer = Promise.resolve()
    .then(probe)
    .then((ok) => ok === true, () => false);
  return Promise.race([answer, timeout]).finally(() => clearTimeout(timer));
}

export async function checkReadiness(probes: ReadinessProbes, timeoutMs = 2_000): Promise<Readiness> {
  const [postgres, redis] = await Promise.all([within(probes.postgres, timeoutMs), within(probes.redis, timeoutMs)]);
  const checks: ReadinessChecks = { postgres: postgres ? 'up' : 'down', redis: redis ? 'up' : 'down' };
  const down = (Object.keys(checks) as Array<keyof ReadinessChecks>).filter((name) => checks[name] === 'down').map((name) => PROBE_NAMES[name]);
  const message = down.length === 0
    ? 'ready'
    : `${down.join(' and ')} ${down.length === 1 ? 'is' : 'are'} unreachable; the service is not ready to take traffic.`;
  return { ready: down.length === 0, checks, message };
}

/** The states the queue depth gauge reports; fixed so label values stay bounded. */
// 'prioritized' holds first attempts and retries waiting their turn (BullMQ
// keeps prioritized jobs apart from 'waiting').
export const QUEUE_DEPTH_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'failed'] as const;

export type CountableQueue = { name: string; getJobCounts(...types: string[]): Promise<Record<string, number>> };

/**
 * Fills hookline_queue_jobs from Redis at scrape time. A queue Redis cannot
 * answer for is dropped from the gauge (a stale number would look healthy)
 * and the scrape still succeeds: the process metrics matter most during an outage.
 */
export async function refreshQueueDepth(metrics: Pick<Metrics, 'queueDepth'>, queues: readonly CountableQueue[], timeoutMs = 1_000): Promise<void> {
  await Promise.all(
    queues.map(async (queue) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('queue count timed out')), timeoutMs);
          timer.unref();
        });
        const counts = await Promise.race([queue.getJobCounts(...QUEUE_DEPTH_STATES), timeout]);
        for (const state of QUEUE_DEPTH_STATES) metrics.queueDepth.set({ queue: queue.name, state }, counts[state] ?? 0);
      } catch {
        for (const state of QUEUE_DEPTH_STATES) metrics.queueDepth.remove({ queue: queue.name, state });
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

export const OPEN_CIRCUIT_STATES = ['open', 'half_open'] as const;

/**
 * Fills hookline_webhook_circuits at scrape time from `count` (PostgreSQL);
 * when it cannot answer, the gauge is dropped rather than left stale.
 */
export async function refreshCircuits(
  metrics: Pick<Metrics, 'circuits'>,
  count: () => Promise<Partial<Record<(typeof OPEN_CIRCUIT_STATES)[number], number>>>,
): Promise<void> {
  try {
    const counts = await count();
    for (const state of OPEN_CIRCUIT_STATES) metrics.circuits.set({ state }, counts[state] ?? 0);
  } catch {
    for (const state of OPEN_CIRCUIT_STATES) metrics.circuits.remove({ state });
  }
}

/** One delivery queue shard's lag reader (packages/queue shardLagSeconds, bound to a connection). */
export type ShardLagReader = { shard: number; read: () => Promise<number> };

/**
 * Fills hookline_delivery_lag_seconds at scrape time; a shard Redis cannot
 * answer for is dropped from the gauge rather than left stale (a stale 0 would
 * hold an autoscaler still).
 */
export async function refreshDeliveryLag(metrics: Pick<Metrics, 'deliveryLag'>, readers: readonly ShardLagReader[], timeoutMs = 1_000): Promise<void> {
  await Promise.all(
    readers.map(async ({ shard, read }) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('lag read timed out')), timeoutMs);
          timer.unref();
        });
        metrics.deliveryLag.set({ shard: String(shard) }, await Promise.race([read(), timeout]));
      } catch {
        metrics.deliveryLag.remove({ shard: String(shard) });
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}
