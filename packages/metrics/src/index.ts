import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Prometheus metrics shared by the API and the worker. Labels stay bounded:
// outcomes, status classes and event names, never ids or URLs.

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(opts: { app: string; defaultMetrics?: boolean } = { app: 'hookline' }) {
  const registry = new Registry();
  registry.setDefaultLabels({ app: opts.app });
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  return {
    registry,
    eventsAccepted: new Counter({
      name: 'hookline_events_accepted_total',
      help: 'Events accepted by the API (answered 202).',
      labelNames: ['event'] as const,
      registers: [registry],
    }),
    deliveriesCreated: new Counter({
      name: 'hookline_deliveries_created_total',
      help: 'Delivery rows written by the outbox.',
      registers: [registry],
    }),
    enqueueFailures: new Counter({
      name: 'hookline_enqueue_failures_total',
      help: 'Deliveries left to the relay because Redis did not take the job.',
      registers: [registry],
    }),
    relayed: new Counter({
      name: 'hookline_relay_enqueued_total',
      help: 'Deliveries the relay (re-)enqueued.',
      registers: [registry],
    }),
    outcomeJournal: new Counter({
      name: 'hookline_outcome_journal_total',
      help: 'Answered attempts kept in their job\'s outcome journal (why: the record failed or was slow), and kept attempts recorded by a later run instead of being sent again (recorded).',
      labelNames: ['event'] as const,
      registers: [registry],
    }),
    attempts: new Counter({
      name: 'hookline_attempts_total',
      help: 'Callback attempts by outcome (succeeded, failed) and response status class (2xx…5xx, none).',
      labelNames: ['outcome', 'status_class', 'error'] as const,
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'hookline_deliveries_total',
      help: 'Deliveries that reached a final state: succeeded, failed, cancelled.',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    attemptDuration: new Histogram({
      name: 'hookline_attempt_duration_seconds',
      help: 'Duration of one callback attempt (request sent to response read).',
      labelNames: ['outcome'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    deliveryLatency: new Histogram({
      name: 'hookline_event_to_delivery_seconds',
      help: 'From event accepted to the successful attempt that delivered it.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300, 3600, 86400],
      registers: [registry],
    }),
    held: new Counter({
      name: 'hookline_deliveries_held_total',
      help: 'Times a delivery was held back without an attempt: over its webhook\'s in-flight cap (in_flight), its rate limit (rate), behind an open circuit (circuit), a job callback waiting for its documents\' callbacks (documents), or after a failure of the egress proxy (proxy).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    proxyFailures: new Counter({
      name: 'hookline_proxy_failures_total',
      help: 'Attempts that failed at the egress proxy (DELIVERY_PROXY_URL), not at the endpoint, by what failed: connect_<status> (the proxy refused the CONNECT, e.g. connect_407, connect_502), econnrefused, timeout … Not counted in hookline_attempts_total.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    circuitTransitions: new Counter({
      name: 'hookline_circuit_transitions_total',
      help: 'Webhook circuit breaker transitions, by the state entered: open, half_open, closed.',
      labelNames: ['to'] as const,
      registers: [registry],
    }),
    circuits: new Gauge({
      name: 'hookline_webhook_circuits',
      help: 'Webhooks (not deleted) whose circuit is open or half_open, read at scrape time.',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    retentionDeleted: new Counter({
      name: 'hookline_retention_deleted_total',
      help: 'Rows the retention sweeper deleted, by table (events, deliveries, attempts, extractions, extraction_documents, idempotency_records).',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    deliveryLag: new Gauge({
      name: 'hookline_delivery_lag_seconds',
      help: 'Per delivery queue shard: how long the oldest due delivery has waited to start, read at scrape time (0 when none waits). Deliveries held back by endpoint isolation (in-flight cap, rate limit, open circuit) are not due until woken or their time comes, so they do not count.',
      labelNames: ['shard'] as const,
      registers: [registry],
    }),
    // Registered only by the processes that run deliveries (createProbeAnswers with `slots`):
    // a gauge without labels would otherwise read 0 on the API and skew an average.
    workerSlotsBusy: new Gauge({
      name: 'hookline_worker_slots_busy_ratio',
      help: 'Share of this worker process\'s delivery slots (WORKER_CONCURRENCY) running a job, read at scrape time.',
      registers: [],
    }),
    queueDepth: new Gauge({
      name: 'hookline_queue_jobs',
      help: 'Jobs in each queue by state (waiting, delayed, active, failed), read at scrape time.',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
    }),
  };
}

export const statusClass = (status: number | null) => (status === null ? 'none' : `${Math.floor(status / 100)}xx`);
export * from './probes';
export * from './probe-answers';
