import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import type IORedis from 'ioredis';
import { throttledWarn, type Logger, type WorkerEnv } from '@hookline/config';
import type { Db } from '@hookline/db';
import type { SecretBox } from '@hookline/domain';
import type { Metrics } from '@hookline/metrics';
import {
  createDeliveryQueue, DELIVER_JOB, DELIVERY_QUEUE, deliverJobData, enqueueDeliveries, HELD_PRIORITY, redisOptions, RETRY_PRIORITY, type DeliverJobData, type DeliveryQueue,
} from '@hookline/queue';
import { deliveryBackoffStrategy, RetryLaterError } from './backoff';
import { createDeliverer, type DeliverResult } from './deliver';
import { createEndpointGate, type EndpointGate } from './endpoint-gate';
import { createLocalLine } from './local-line';
import { startRelay, type Relay } from './relay';
import { createSender } from './sender';
import { USER_AGENT } from './version';

export type WorkerConfig = Pick<
  WorkerEnv,
  | 'WEBHOOK_BRAND' | 'RETRY_SCHEDULE' | 'RETRY_JITTER' | 'DELIVERY_TIMEOUT' | 'ALLOW_PRIVATE_TARGETS' | 'AUTO_DISABLE_AFTER' | 'WORKER_CONCURRENCY'
  | 'RELAY_GRACE' | 'ENDPOINT_CONCURRENCY' | 'CIRCUIT_BREAKER_THRESHOLD' | 'CIRCUIT_BREAKER_COOLDOWN'
>;

export type WorkerDeps = {
  db: Db;
  /** A worker-role connection (createRedis(url, 'worker')): BullMQ needs maxRetriesPerRequest null. The caller closes it. */
  connection: IORedis;
  prefix: string;
  logger: Logger;
  metrics: Metrics;
  secretBox: SecretBox;
  config: WorkerConfig;
  /** How long a job stays locked without renewal before another worker may take it over (BullMQ default 30 s). */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose worker died (BullMQ default 30 s). */
  stalledIntervalMs?: number;
  relayIntervalMs?: number;
};

export type DeliveryWorker = {
  worker: Worker<DeliverJobData, DeliverResult>;
  relay: Relay;
  /** The delivery queue on the relay's fail-fast connection (queue depths for /metrics). */
  queue: DeliveryQueue;
  /** Per-webhook slots, rate windows, failure counts and held lines, shared by every worker. */
  gate: EndpointGate;
  /** Stops taking jobs, lets in-flight deliveries finish, then stops the relay and closes what it opened. */
  close(): Promise<void>;
};

/** An attempt's lease outlives its timeout by this much: time to record it, and slack for a worker's clock. */
const LEASE_MARGIN_MS = 30_000;

export function createWorker(deps: WorkerDeps): DeliveryWorker {
  const { db, connection, prefix, logger, metrics, secretBox, config } = deps;
  const sender = createSender({ timeoutMs: config.DELIVERY_TIMEOUT, allowPrivateTargets: config.ALLOW_PRIVATE_TARGETS, userAgent: USER_AGENT });

  // The relay enqueues through a fail-fast producer connection of its own, so a
  // Redis outage makes a tick fail at once instead of queueing commands forever.
  const relayConnection = connection.duplicate(redisOptions('producer'));
  relayConnection.on('error', throttledWarn(logger, 'relay: Redis connection error; retrying'));
  const relayQueue = createDeliveryQueue(relayConnection, prefix);

  // The gate's scripts run twice per attempt: their own connection, pipelining
  // the commands of concurrent deliveries; a command waits through a short
  // reconnect but fails (and the job is retried) during a long outage.
  const gateConnection = connection.duplicate({ maxRetriesPerRequest: 2, enableAutoPipelining: true });
  gateConnection.on('error', throttledWarn(logger, 'endpoint gate: Redis connection error; retrying'));
  const gate = createEndpointGate({
    redis: gateConnection,
    prefix,
    leaseTtlMs: config.DELIVERY_TIMEOUT + LEASE_MARGIN_MS,
    async promote(jobId) {
      try {
        await new Job(relayQueue, DELIVER_JOB, {}, {}, jobId).promote();
        return true;
      } catch {
        // Not delayed any more: it finished, or its own timer already brought it back.
        return false;
      }
    },
    onError: (err, what) => logger.warn(`could not ${what}`, { err: err.message }),
  });
  // Deliveries waiting here for a fast webhook's slot leave at least a tenth of
  // the worker's slots (and never fewer than 10) to fetch other webhooks' work.
  const line = createLocalLine({ maxWaiting: Math.max(0, config.WORKER_CONCURRENCY - Math.max(10, Math.ceil(config.WORKER_CONCURRENCY / 10))) });
  const { deliver } = createDeliverer({
    db, sender, gate, line, secretBox, logger, metrics, config,
    // Operational events the deliverer writes are queued at once; a job callback held for
    // its documents' callbacks is woken when the last of them ends (see deliver.ts).
    enqueue: (deliveries) => enqueueDeliveries(relayQueue, deliveries.map((d) => d.id)),
    async promote(jobId) {
      try {
        await new Job(relayQueue, DELIVER_JOB, {}, {}, jobId).promote();
        return true;
      } catch {
        return false;
      }
    },
  });

  /** Carries out what the deliverer decided for the job (see Next in deliver.ts). */
  async function settle(job: Job<DeliverJobData, DeliverResult>, token: string | undefined, result: DeliverResult): Promise<DeliverResult> {
    const { next } = result;
    if (next.kind === 'done') return result;
    if (next.kind === 'stop') throw new UnrecoverableError(next.reason);
    if (next.kind === 'retry') {
      // Retries queue behind every first attempt (see packages/queue/src/names.ts).
      if (job.priority !== RETRY_PRIORITY) await job.changePriority({ priority: RETRY_PRIORITY });
      throw new RetryLaterError(next.delayMs, `retry in ${next.delayMs} ms`);
    }
    // Held: back to `delayed` without counting an attempt (BullMQ's skipAttempt),
    // its worker slot free at once. A parked job, once woken, goes ahead of
    // everything that has not waited yet.
    if (next.park && job.priority !== HELD_PRIORITY) await job.changePriority({ priority: HELD_PRIORITY });
    await job.moveToDelayed(Date.now() + next.delayMs, token);
    if (next.park) {
      await gate.park({ ...next.park, jobId: job.id! }).catch((err: Error) => {
        // Its own delay still brings it back.
        logger.warn('could not park a held delivery; it comes back on its own', { job_id: job.id, err: err.message });
      });
    }
    throw new DelayedError();
  }

  const worker = new Worker<DeliverJobData, DeliverResult>(
    DELIVERY_QUEUE,
    async (job: Job<DeliverJobData, DeliverResult>, token?: string) => {
      // A payload is re-validated before it runs: a bad one can never succeed.
      const parsed = deliverJobData.safeParse(job.data);
      if (!parsed.success) {
        logger.error('invalid delivery job dropped', { job_id: job.id, issue: parsed.error.issues[0]?.message });
        throw new UnrecoverableError('invalid job payload');
      }
      try {
        return await settle(job, token, await deliver({ ...parsed.data, jobId: job.id, enqueuedAt: job.timestamp }));
      } catch (err) {
        if (!(err instanceof RetryLaterError) && !(err instanceof UnrecoverableError) && !(err instanceof DelayedError)) {
          logger.error('delivery job failed unexpectedly; BullMQ will retry it', { job_id: job.id, delivery_id: parsed.data.deliveryId, err: (err as Error).message });
        }
        throw err;
      }
    },
    {
      connection,
      prefix,
      concurrency: config.WORKER_CONCURRENCY,
      settings: { backoffStrategy: deliveryBackoffStrategy },
      ...(deps.lockDurationMs ? { lockDuration: deps.lockDurationMs } : {}),
      ...(deps.stalledIntervalMs ? { stalledInterval: deps.stalledIntervalMs } : {}),
    },
  );
  // Without a listener an 'error' (e.g. Redis going away) would crash the process; BullMQ reconnects by itself.
  let lastErrorLog = 0;
  worker.on('error', (err) => {
    if (Date.now() - lastErrorLog < 5_000) return;
    lastErrorLog = Date.now();
    logger.warn('worker connection error; BullMQ keeps retrying', { err: err.message });
  });

  const relay = startRelay({ db, queue: relayQueue, logger, metrics, graceMs: config.RELAY_GRACE, intervalMs: deps.relayIntervalMs });

  let closing: Promise<void> | undefined;
  return {
    worker,
    relay,
    queue: relayQueue,
    gate,
    close() {
      closing ??= (async () => {
        await relay.stop();
        await worker.close();
        sender.close();
        await relayQueue.close().catch((err: Error) => logger.warn('could not close the relay queue cleanly', { err: err.message }));
        relayConnection.disconnect();
        gateConnection.disconnect();
      })();
      return closing;
    },
  };
}
