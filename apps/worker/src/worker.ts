import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type IORedis from 'ioredis';
import type { Logger, WorkerEnv } from '@hookline/config';
import type { Db } from '@hookline/db';
import type { SecretBox } from '@hookline/domain';
import type { Metrics } from '@hookline/metrics';
import { createDeliveryQueue, DELIVERY_QUEUE, deliverJobData, redisOptions, type DeliverJobData, type DeliveryQueue } from '@hookline/queue';
import { deliveryBackoffStrategy, RetryLaterError } from './backoff';
import { createDeliverer, type DeliverResult } from './deliver';
import { startRelay, type Relay } from './relay';
import { createSender } from './sender';
import { USER_AGENT } from './version';

export type WorkerConfig = Pick<
  WorkerEnv,
  'WEBHOOK_BRAND' | 'RETRY_SCHEDULE' | 'DELIVERY_TIMEOUT' | 'ALLOW_PRIVATE_TARGETS' | 'AUTO_DISABLE_AFTER' | 'WORKER_CONCURRENCY' | 'RELAY_GRACE'
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
  /** Stops taking jobs, lets in-flight deliveries finish, then stops the relay and closes what it opened. */
  close(): Promise<void>;
};

export function createWorker(deps: WorkerDeps): DeliveryWorker {
  const { db, connection, prefix, logger, metrics, secretBox, config } = deps;
  const sender = createSender({ timeoutMs: config.DELIVERY_TIMEOUT, allowPrivateTargets: config.ALLOW_PRIVATE_TARGETS, userAgent: USER_AGENT });
  const { deliver } = createDeliverer({ db, sender, secretBox, logger, metrics, config });

  const worker = new Worker<DeliverJobData, DeliverResult>(
    DELIVERY_QUEUE,
    async (job: Job<DeliverJobData, DeliverResult>) => {
      // STYLE rule 2: a payload is re-validated before it runs; a bad one can never succeed.
      const parsed = deliverJobData.safeParse(job.data);
      if (!parsed.success) {
        logger.error('invalid delivery job dropped', { job_id: job.id, issue: parsed.error.issues[0]?.message });
        throw new UnrecoverableError('invalid job payload');
      }
      try {
        return await deliver(parsed.data);
      } catch (err) {
        if (!(err instanceof RetryLaterError) && !(err instanceof UnrecoverableError)) {
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

  // The relay enqueues through a fail-fast producer connection of its own, so a
  // Redis outage makes a tick fail at once instead of queueing commands forever.
  const relayConnection = connection.duplicate(redisOptions('producer'));
  relayConnection.on('error', () => undefined);
  const relayQueue = createDeliveryQueue(relayConnection, prefix);
  relayQueue.on('error', () => undefined);
  const relay = startRelay({ db, queue: relayQueue, logger, metrics, graceMs: config.RELAY_GRACE, intervalMs: deps.relayIntervalMs });

  let closing: Promise<void> | undefined;
  return {
    worker,
    relay,
    queue: relayQueue,
    close() {
      closing ??= (async () => {
        await relay.stop();
        await worker.close();
        sender.close();
        await relayQueue.close().catch(() => undefined);
        relayConnection.disconnect();
      })();
      return closing;
    },
  };
}
