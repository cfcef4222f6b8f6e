import type { Metrics } from './index';
import { OPEN_CIRCUIT_STATES, checkReadiness, refreshCircuits, refreshQueueDepth, type CountableQueue, type ReadinessProbes } from './probes';

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
  return {
    healthz: () => json(200, { status: 'ok' }),
    async readyz() {
      const readiness = await checkReadiness({ postgres: sources.postgres, redis: sources.redis });
      const detail = sources.readyDetail?.() ?? {};
      if (readiness.ready) return json(200, { status: 'ready', checks: readiness.checks, ...detail });
      return json(503, { error: { code: 'SERVICE_UNAVAILABLE', message: readiness.message }, checks: readiness.checks, ...detail });
    },
    async metrics() {
      await Promise.all([refreshQueueDepth(sources.metrics, sources.queues), refreshCircuits(sources.metrics, sources.countCircuits)]);
      const body = await sources.metrics.registry.metrics();
      return { status: 200, headers: { 'content-type': sources.metrics.registry.contentType, ...NO_STORE }, body };
    },
  };
}
