import type { Metrics } from './index';
import { OPEN_CIRCUIT_STATES, checkReadiness, refreshCircuits, refreshDeliveryLag, refreshQueueDepth, type CountableQueue, type ReadinessProbes, type ShardLagReader } from './probes';

// The answers of /healthz, /readyz and /metrics, framework-free, so the API's
// Express routes and the worker's node:http health port give the same status,
// headers and body from one place. The caller passes in its I/O.

export type ProbeAnswer = { status: number; headers: Record<string, string>; body: string };

export type ProbeSources = ReadinessProbes & {
  metrics: Metrics;
  /** Queues whose depth the scrape reports. */
  queues: readonly CountableQueue[];
  /** Webhooks by open circuit state, from PostgreSQL. */
  countCircuits: () => Promise<Partial<Record<(typeof OPEN_CIRCUIT_STATES)[number], number>>>;
  /** One lag reader per shard served (hookline_delivery_lag_seconds). */
  lag?: readonly ShardLagReader[] | (() => readonly ShardLagReader[]);
  /** A process that runs deliveries: its slots, busy and in all (hookline_worker_slots_busy_ratio). */
  slots?: () => { busy: number; total: number };
  /** More for the /readyz body, read from memory (the worker: the outage it is waiting out, if any). */
  readyDetail?: () => Record<string, unknown>;
};

export type ProbeAnswers = {
  /** Liveness only: a database outage must not make an orchestrator restart a healthy process. */
  healthz(): ProbeAnswer;
  /** 200 when PostgreSQL and Redis answer; 503 with the error envelope and each check otherwise. */
  readyz(): Promise<ProbeAnswer>;
  /** The Prometheus text, with the queue depth and circuit gauges refreshed at scrape time. */
  metrics(): Promise<ProbeAnswer>;
};

const NO_STORE = { 'cache-control': 'no-store' };
const json = (status: number, body: unknown): ProbeAnswer => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', ...NO_STORE },
  body: JSON.stringify(body),
});

export function createProbeAnswers(sources: ProbeSources): ProbeAnswers {
  const { metrics } = sources;
  if (sources.slots && !metrics.registry.getSingleMetric('hookline_worker_slots_busy_ratio')) metrics.registry.registerMetric(metrics.workerSlotsBusy);
  const refreshSlots = () => {
    if (!sources.slots) return;
    const { busy, total } = sources.slots();
    metrics.workerSlotsBusy.set(total > 0 ? busy / total : 0);
  };
  const lagReaders = () => (typeof sources.lag === 'function' ? sources.lag() : (sources.lag ?? []));
  return {
    healthz: () => json(200, { status: 'ok' }),
    async readyz() {
      const readiness = await checkReadiness({ postgres: sources.postgres, redis: sources.redis });
      const detail = sources.readyDetail?.() ?? {};
      if (readiness.ready) return json(200, { status: 'ready', checks: readiness.checks, ...detail });
      return json(503, { error: { code: 'SERVICE_UNAVAILABLE', message: readiness.message }, checks: readiness.checks, ...detail });
    },
    async metrics() {
      refreshSlots();
      await Promise.all([
        refreshQueueDepth(metrics, sources.queues),
        refreshCircuits(metrics, sources.countCircuits),
        refreshDeliveryLag(metrics, lagReaders()),
      ]);
      const body = await sources.metrics.registry.metrics();
      return { status: 200, headers: { 'content-type': sources.metrics.registry.contentType, ...NO_STORE }, body };
    },
  };
}
