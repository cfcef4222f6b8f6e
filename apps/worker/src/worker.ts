import { Job, Worker } from 'bullmq';
import { throttledWarn, type Logger, type WorkerEnv } from '@hookline/config';
import { readInstallationId, type Db } from '@hookline/db';
import { withinOrNull, type SecretBox } from '@hookline/domain';
import type { Metrics } from '@hookline/metrics';
import {
  claimQueuePrefix, createDeliveryQueues, deriveRedis, DELIVER_JOB, drainingShards, enqueueToShards, markReadyAt, probeRedis, QueueOwnedElsewhereError, shardCount,
  type DeliverJobData, type DeliveryQueue, type DeliveryQueues, type RedisClient,
} from '@hookline/queue';
import { deliveryBackoffStrategy } from './backoff';
import { createDeliverer, type DeliverResult } from './deliver';
import { LEASE_MARGIN_MS } from './deliver/slots';
import { createDeliveryStore } from './delivery-store';
import { createEndpointGate, type EndpointGate } from './endpoint-gate';
import { createLiveness } from './liveness';
import { createLocalLine } from './local-line';
import { createOutageWatch, type OutageState } from './outage';
import { createSlotBudget } from './slot-budget';
import { runJob, type RunJobContext } from './run-job';
import { createRunningJobs } from './running-jobs';
import { redisOutcomes } from './outcome-journal';
import { startRelay, type Relay } from './relay';
import { describeProxy } from './egress-proxy';
import { createSender } from './sender';
import { withListenSessions } from './listen-sender';
import { USER_AGENT } from './version';

export type WorkerConfig = Pick<
  WorkerEnv,
  | 'WEBHOOK_BRAND' | 'RETRY_SCHEDULE' | 'RETRY_JITTER' | 'DELIVERY_TIMEOUT' | 'ALLOW_PRIVATE_TARGETS' | 'AUTO_DISABLE_AFTER' | 'WORKER_CONCURRENCY'
  | 'RELAY_GRACE' | 'ENDPOINT_CONCURRENCY' | 'CIRCUIT_BREAKER_THRESHOLD' | 'CIRCUIT_BREAKER_COOLDOWN'
> & Partial<Pick<WorkerEnv, 'DELIVERY_PROXY_URL' | 'DELIVERY_NO_PROXY' | 'DELIVERY_PROXY_RETRY' | 'WORKER_SLOT_LIVENESS'>>;

export type WorkerDeps = {
  db: Db;
  /** A worker-role connection (createRedis(target, 'worker')): BullMQ needs maxRetriesPerRequest null. The caller closes it. */
  connection: RedisClient;
  prefix: string;
  /** DELIVERY_QUEUE_SHARDS; unset: the topology's default (16 on a cluster, else 1). */
  shards?: number;
  logger: Logger;
  metrics: Metrics;
  secretBox: SecretBox;
  config: WorkerConfig;
  /** How long a job stays locked without renewal before another worker may take it over (WORKER_LOCK_DURATION; BullMQ's default 30 s). */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose worker died (WORKER_STALLED_INTERVAL; BullMQ's default 30 s). */
  stalledIntervalMs?: number;
  relayIntervalMs?: number;
  /** During a PostgreSQL or Redis outage, how often this worker probes them to resume (OUTAGE_PROBE_INTERVAL; default 1 s). */
  outageProbeIntervalMs?: number;
  /** Between tries of recording an answered attempt (deliver/record.ts, RECORD_RETRY_MS by default). */
  recordRetryMs?: { first: number; max: number };
};

/** One BullMQ worker per shard, driven together. */
export type ShardWorkers = {
  readonly all: ReadonlyArray<Worker<DeliverJobData, DeliverResult>>;
  /**
   * Resolves once this installation owns the queue prefix (or rejects with
   * QueueOwnedElsewhereError) and every shard's worker is connected and taking jobs.
   */
  waitUntilReady(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
};

export type DeliveryWorker = {
  worker: ShardWorkers;
  relay: Relay;
  /** Every shard served, on the relay's fail-fast connection (queue depths for /metrics). Filled once ready. */
  queues: DeliveryQueues;
  /** Per-webhook slots, rate windows, failure counts and held lines, shared by every worker. */
  gate: EndpointGate;
  /** This process's delivery slots: how many run a job now (a delivery waiting in the local line included), of how many. */
  slots(): { busy: number; total: number };
  /** Whether this worker is waiting out a PostgreSQL or Redis outage (its workers paused), and since when. */
  outage: () => OutageState;
  /** Stops taking jobs, lets in-flight deliveries finish, then stops the relay and closes what it opened. */
  close(): Promise<void>;
};

/**
 * BullMQ's job lock follows the liveness rule (liveness.ts): renewed from a
 * timer five times per WORKER_LOCK_DURATION, so a worker stalled for up to four
 * fifths of it (4 s at the default 5 s) keeps its jobs, and a dead worker's
 * jobs run again within WORKER_LOCK_DURATION + WORKER_STALLED_INTERVAL (7 s).
 */
/** BullMQ's own lock duration, when WorkerDeps.lockDurationMs leaves it. */
const BULLMQ_LOCK_MS = 30_000;
const lockRenewMs = (lockDurationMs: number) => Math.max(Math.floor(lockDurationMs / 5), 100);
/**
 * A job whose worker died this many times running it fails (BullMQ's
 * maxStalledCount; a job that crashes every worker must stop somewhere); the
 * relay enqueues its delivery again after RELAY_GRACE. Workers killed in a row
 * (a rolling kill, an OOM loop) are survived without that wait.
 */
const MAX_STALLED_COUNT = 3;

/** On close, how long past DELIVERY_TIMEOUT to wait for a shard's worker (its last attempts being recorded). */
const CLOSE_MARGIN_MS = 5_000;

/** How often each shard's worker is checked for taking jobs, and how long jobs may wait untaken with a slot free. */
const WATCHDOG_MS = 5_000;
const STUCK_MS = 10_000;

/** Waits for `work`, but no longer than `ms`. */
async function settledWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work,
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}

/** How often a running worker re-marks its queue prefix (a Redis restarted empty lost the mark). */
const OWNER_CHECK_MS = 5_000;

/** OUTAGE_PROBE_INTERVAL's default: during an outage, how often PostgreSQL and Redis are probed. */
const OUTAGE_PROBE_MS = 1_000;

export function createWorker(deps: WorkerDeps): DeliveryWorker {
  const { db, connection, prefix, logger, metrics, secretBox, config } = deps;
  const proxy = config.DELIVERY_PROXY_URL ? { url: config.DELIVERY_PROXY_URL, noProxy: config.DELIVERY_NO_PROXY ?? [] } : undefined;
  // A `hookline listen` session's callbacks go through Redis to the API holding its socket (listen-sender.ts).
  const sender = withListenSessions(
    createSender({ timeoutMs: config.DELIVERY_TIMEOUT, allowPrivateTargets: config.ALLOW_PRIVATE_TARGETS, userAgent: USER_AGENT, proxy }),
    { connection, prefix, timeoutMs: config.DELIVERY_TIMEOUT, userAgent: USER_AGENT, logger },
  );
  // The proxy's address only: its URL may carry credentials.
  if (proxy) logger.info('callbacks go through the egress proxy', { proxy: describeProxy(proxy.url), no_proxy: proxy.noProxy });
  const count = shardCount(deps.shards, connection);

  // The relay enqueues through a fail-fast producer connection of its own, so a
  // Redis outage makes a tick fail at once instead of queueing commands forever.
  const relayConnection = deriveRedis(connection, 'producer');
  relayConnection.on('error', throttledWarn(logger, 'relay: Redis connection error; retrying'));
  // The current shards now; older ones still holding jobs join once found (start()).
  let queues: DeliveryQueues = createDeliveryQueues(relayConnection, prefix, count);

  // The gate's scripts run twice per attempt: their own connection, pipelining
  // the commands of concurrent deliveries; a command waits through a short
  // reconnect but fails (and the job is retried) during a long outage.
  const gateConnection = deriveRedis(connection, 'worker', { maxRetriesPerRequest: 2, enableAutoPipelining: true });
  gateConnection.on('error', throttledWarn(logger, 'endpoint gate: Redis connection error; retrying'));
  /**
   * Records when a job held or scheduled for a retry becomes due, so the lag
   * gauge counts its wait from then and never its time held (delivery-lag.ts).
   * A failure only makes that job's lag read long until it starts.
   */
  const markDue = (queue: DeliveryQueue, jobId: string, at: number) =>
    markReadyAt(gateConnection, queue, jobId, at).catch((err: Error) => logger.warn('could not record when a job is due; the lag gauge may read high until it starts', { job_id: jobId, err: err.message }));

  /** Moves a delayed (parked or held) job to waiting, in its webhook's shard; false when it is not delayed. */
  async function promoteInShard(jobId: string, webhookId: string): Promise<boolean> {
    try {
      const shard = queues.forWebhook(webhookId);
      await new Job(shard, DELIVER_JOB, {}, {}, jobId).promote();
      // Woken: it waits for a slot from now on.
      await markDue(shard, jobId, Date.now());
      return true;
    } catch {
      // Not delayed any more: it finished, or its own timer already brought it back
      // (or it sits in an older shard, from before the shard count changed).
      return false;
    }
  }

  const store = createDeliveryStore(db);
  // Who this worker is, in Redis: what it holds at a webhook is taken back by
  // the others within seconds of its last beat (the rule is in liveness.ts).
  // WORKER_SLOT_LIVENESS=false turns it off: a dead worker's slots then come
  // back when its leases expire (DELIVERY_TIMEOUT + 30 s).
  const liveness = config.WORKER_SLOT_LIVENESS !== true ? undefined : createLiveness({
    redis: gateConnection,
    prefix,
    onLost: () => {
      gate.distrustLeases();
      logger.warn('this worker missed its liveness deadline (stalled?); it registers again, and its endpoint slots may have been taken back');
    },
    onError: throttledWarn(logger, 'worker liveness: Redis did not answer; retrying'),
  });
  const gate = createEndpointGate({
    redis: gateConnection,
    prefix,
    // A lease outlives the attempt that holds it (the rule is in deliver/slots.ts).
    leaseTtlMs: config.DELIVERY_TIMEOUT + LEASE_MARGIN_MS,
    promote: promoteInShard,
    liveness,
    // A dead worker's probe: the claim ends now (if it is still that claim), and held deliveries come for it.
    async onProbeLost(webhookId, deadline) {
      const now = Date.now();
      if (!(await store.releaseProbe(webhookId, new Date(deadline), new Date(now)))) return;
      logger.info('circuit probe of a dead worker taken back; another probe may go', { webhook_id: webhookId });
      await gate.wakeAll({ webhookId, cap: 1 });
    },
    onError: (err, what) => logger.warn(`could not ${what}`, { err: err.message }),
  });
  // Deliveries waiting here for a fast webhook's slot leave at least a tenth of
  // the worker's slots (and never fewer than 10) to fetch other webhooks' work.
  const line = createLocalLine({ maxWaiting: Math.max(0, config.WORKER_CONCURRENCY - Math.max(10, Math.ceil(config.WORKER_CONCURRENCY / 10))) });

  // PostgreSQL or Redis unreachable: the shard workers stop taking jobs (paused
  // here only) until both answer again, then resume by themselves, unless
  // paused for another reason meanwhile (outage.ts).
  const pausedFor = { caller: false, ownedElsewhere: false };
  const outageProbeMs = deps.outageProbeIntervalMs ?? OUTAGE_PROBE_MS;
  // Attempts waiting to be recorded try again the moment an outage ends (deliver/record.ts).
  let outageOver = () => undefined as void;
  let outageEnds = new Promise<void>((resolve) => (outageOver = resolve));
  const outageEnded = () => outageEnds;
  const nextOutage = () => {
    const resolveNow = outageOver;
    outageEnds = new Promise<void>((resolve) => (outageOver = resolve));
    resolveNow();
  };
  const outage = createOutageWatch({
    probes: { postgres: () => db.ping(), redis: () => probeRedis(relayConnection) },
    logger,
    intervalMs: outageProbeMs,
    onStart: async () => {
      await Promise.all(workers.map((worker) => worker.pause(true)));
    },
    onEnd: async () => {
      nextOutage();
      if (pausedFor.caller || pausedFor.ownedElsewhere || stopped) return;
      await Promise.all(workers.map((worker) => worker.resume()));
    },
  });

  const { deliver } = createDeliverer({
    db, sender, gate, line, secretBox, logger, metrics, config,
    isOutage: () => outage.check(),
    // Operational events the deliverer writes are queued at once; a job callback held for
    // its documents' callbacks is woken when the last of them ends (see deliver/record.ts).
    enqueue: (deliveries) => enqueueToShards(queues, deliveries),
    promote: promoteInShard,
    recordRetryMs: deps.recordRetryMs,
    outageEnded,
  });

  // What a shard's worker runs for each job (run-job.ts): the payload checked, the delivery processed, its outcome carried out.
  const jobs: RunJobContext = {
    deliver, gate, logger, markDue, isOutage: () => outage.check(), outageProbeMs,
    lockHolder: (shard, jobId) => gateConnection.get(shard.toKey(`${jobId}:lock`)),
    outcomes: redisOutcomes(gateConnection),
  };

  // Without a listener an 'error' (e.g. Redis going away) would crash the process; BullMQ reconnects by itself.
  let lastErrorLog = 0;
  const onWorkerError = (err: Error) => {
    if (Date.now() - lastErrorLog < 5_000) return;
    lastErrorLog = Date.now();
    logger.warn('worker connection error; BullMQ keeps retrying', { err: err.message });
  };

  // One BullMQ worker per shard, every shard served by every process. The
  // process's WORKER_CONCURRENCY is one budget they share (slot-budget.ts):
  // each shard's concurrency is set again as jobs start and end, so shards
  // with work share the slots idle shards do not use (an idle shard keeps one,
  // its fetch loop), and the process never holds more than WORKER_CONCURRENCY
  // jobs (or one per shard, if there are more shards than that).
  const budget = createSlotBudget({ slots: config.WORKER_CONCURRENCY });
  const workers: Array<Worker<DeliverJobData, DeliverResult>> = [];
  /** The jobs running here and their lock tokens, to take the locks again after Redis lost its data (running-jobs.ts). */
  const running = createRunningJobs();
  const lockMs = deps.lockDurationMs ?? BULLMQ_LOCK_MS;
  const reassertLocks = () =>
    running.reassert(relayConnection, lockMs).then((taken) => {
      if (taken > 0) logger.warn('Redis had lost the locks of deliveries running here: taken again, so they are not queued twice', { deliveries: taken });
    });
  /** Per shard (same index as workers): jobs running, when one last started, since when jobs wait untaken. */
  const shardStates: Array<{ inFlight: number; lastStart: number; waitingSince: number | null }> = [];
  const makeWorker = (shard: DeliveryQueue, state: (typeof shardStates)[number]) => {
    // The shared connection (BullMQ duplicates it for its blocking reads); the shard's name and prefix.
    const worker = new Worker<DeliverJobData, DeliverResult>(
      shard.name,
      async (job, token) => {
        state.inFlight += 1;
        state.lastStart = Date.now();
        const untrack = token ? running.track(shard.toKey(`${job.id!}:lock`), token) : () => undefined;
        budget.schedule();
        try {
          return await runJob(jobs, shard, job, token, untrack);
        } finally {
          untrack();
          state.inFlight -= 1;
          budget.schedule();
        }
      },
      {
        connection,
        prefix: shard.opts.prefix,
        // The budget sets it (budget.add, then as jobs start and end).
        concurrency: 1,
        autorun: false,
        settings: { backoffStrategy: deliveryBackoffStrategy },
        ...(deps.lockDurationMs ? { lockDuration: deps.lockDurationMs, lockRenewTime: lockRenewMs(deps.lockDurationMs) } : {}),
        ...(deps.stalledIntervalMs ? { stalledInterval: deps.stalledIntervalMs } : {}),
        maxStalledCount: MAX_STALLED_COUNT,
      },
    );
    worker.on('error', onWorkerError);
    // A job ended (its slot may be free now), or the shard found its line empty.
    for (const event of ['completed', 'failed', 'drained', 'paused'] as const) worker.on(event, () => budget.schedule());
    // Before its main loop starts again: a resumed shard starts from what is free.
    worker.on('resumed', () => budget.rebalance());
    return worker;
  };
  const addWorkers = (shards: DeliveryQueues['shards']) => {
    for (const shard of shards) {
      const state = { inFlight: 0, lastStart: Date.now(), waitingSince: null };
      shardStates.push(state);
      const index = workers.push(makeWorker(shard, state)) - 1;
      budget.add({ worker: () => workers[index] });
    }
  };
  addWorkers(queues.shards);

  // A shard's BullMQ worker can stop taking jobs for good while its shard
  // holds some: seen on a Redis Cluster after a master failed over, when the
  // worker's blocking read never returns. Every WATCHDOG_MS each shard is
  // looked at; one with jobs waiting, a free slot, not paused, and no job
  // started for STUCK_MS since they were first seen waiting gets a new worker
  // (the old one is closed in the background).
  const closeWithin = config.DELIVERY_TIMEOUT + CLOSE_MARGIN_MS;
  async function watchShards(): Promise<void> {
    for (let i = 0; i < workers.length && !stopped; i += 1) {
      const worker = workers[i];
      const state = shardStates[i];
      if (worker.isPaused() || state.inFlight >= worker.concurrency) {
        state.waitingSince = null;
        continue;
      }
      const counts = await withinOrNull(queues.shards[i].getJobCounts('waiting', 'prioritized'), 2_000);
      if (!counts) continue;
      const waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0);
      if (waiting === 0 || (state.waitingSince !== null && state.lastStart >= state.waitingSince)) {
        state.waitingSince = waiting === 0 ? null : Date.now();
        continue;
      }
      if (state.waitingSince === null) {
        state.waitingSince = Date.now();
        continue;
      }
      if (Date.now() - state.waitingSince < STUCK_MS || stopped) continue;
      logger.warn('a queue shard worker takes no jobs though jobs wait; replacing it', { shard: queues.shards[i].name, waiting, waited_ms: Date.now() - state.waitingSince });
      state.waitingSince = null;
      const fresh = makeWorker(queues.shards[i], state);
      // What the old worker still holds counts against the budget until it is closed.
      budget.retire(worker);
      workers[i] = fresh;
      budget.rebalance();
      fresh.run().catch(onWorkerError);
      let closed = false;
      void settledWithin(worker.close().then(() => (closed = true), () => (closed = true)), closeWithin).then(() => {
        if (!closed) worker.disconnect().catch(() => undefined);
        budget.forget(worker);
      });
    }
  }
  let watchdog: NodeJS.Timeout | undefined;
  let watching: Promise<void> = Promise.resolve();

  let relay: Relay | undefined;
  let ownerTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  /** Marks the prefix as this installation's, adds older shards still holding jobs, then starts every worker and the relay. */
  async function start(): Promise<void> {
    const installationId = await readInstallationId(db.sql);
    await claimQueuePrefix(connection, prefix, installationId);
    const draining = await drainingShards(connection, prefix, count);
    if (draining.length) {
      const current = queues;
      queues = createDeliveryQueues(relayConnection, prefix, count, draining);
      addWorkers(queues.shards.slice(count));
      await current.close();
      logger.info('serving older delivery queue shards until they are empty', { shards: count, draining });
    }
    if (stopped) return;
    await liveness?.start(async (owner, webhookId) => {
      // Its own holdings, given back on close, are not news.
      if (owner !== liveness.id()) logger.warn('taking back the endpoint slots of a worker that stopped beating', { worker: owner, webhook_id: webhookId });
      await gate.reclaim(owner, webhookId);
    });
    for (const worker of workers) {
      // run() resolves when the worker closes; its failures reach the 'error' listener.
      worker.run().catch(onWorkerError);
    }
    await Promise.all(workers.map((worker) => worker.waitUntilReady()));
    budget.start();
    const started = startRelay({
      db, queues, logger, metrics, graceMs: config.RELAY_GRACE, intervalMs: deps.relayIntervalMs, isOutage: () => outage.check(),
      lockHeld: async (queue, jobId) => (await relayConnection.exists(queue.toKey(`${jobId}:lock`))) === 1,
    });
    relay = started;
    // Re-marks the prefix; another installation's mark stops this worker
    // taking jobs. A mark this worker had to write again means Redis lost its
    // data (restarted empty) and every queued job with it: the one worker
    // that re-marks refills the queue at once (relay.refill), instead of each
    // delivery waiting RELAY_GRACE past its turn. Checked every
    // OWNER_CHECK_MS and as soon as the connection comes back.
    let checking: Promise<void> | null = null;
    let refilling: Promise<void> = Promise.resolve();
    const checkOwner = () => {
      checking ??= claimQueuePrefix(relayConnection, prefix, installationId)
        .then(async (lost) => {
          if (!lost || stopped) return;
          logger.warn('Redis lost its data (the queue prefix mark was gone): queueing every waiting delivery again');
          // The mark is back, so no other worker refills: this one keeps trying until it is done
          // (PostgreSQL may be down too), without holding up the owner checks meanwhile; a second
          // loss queues a second refill behind the first. Should this worker die first, the relay's
          // scan finds the rest, RELAY_GRACE late.
          refilling = refilling.then(() => started.refillUntilDone()).then(() => undefined);
        })
        .catch(async (err: Error) => {
          if (!(err instanceof QueueOwnedElsewhereError)) return;
          logger.error(`${err.message}; this worker stops taking jobs`);
          pausedFor.ownedElsewhere = true;
          await Promise.all(workers.map((worker) => worker.pause(true))).catch(() => undefined);
        })
        .finally(() => {
          checking = null;
        });
    };
    ownerTimer = setInterval(() => void reassertLocks().catch(() => undefined).finally(checkOwner), OWNER_CHECK_MS);
    ownerTimer.unref();
    // After a reconnect: this worker's running jobs' locks first, then the owner check (which may refill).
    relayConnection.on('ready', () => void reassertLocks().catch(() => undefined).finally(checkOwner));
    watchdog = setInterval(() => {
      watching = watching.then(watchShards).catch((err: Error) => {
        logger.warn('shard watchdog failed; next round', { err: err.message });
      });
    }, WATCHDOG_MS);
    watchdog.unref();
  }
  const ready = start();
  // Awaited through waitUntilReady(); an unobserved rejection must not crash the process first.
  ready.catch(() => undefined);

  let closing: Promise<void> | undefined;
  return {
    worker: {
      all: workers,
      waitUntilReady: () => ready,
      async pause() {
        pausedFor.caller = true;
        await Promise.all(workers.map((worker) => worker.pause()));
      },
      async resume() {
        pausedFor.caller = false;
        await Promise.all(workers.map((worker) => worker.resume()));
      },
    },
    get relay(): Relay {
      if (!relay) throw new Error('the relay starts once the worker is ready (waitUntilReady)');
      return relay;
    },
    get queues() {
      return queues;
    },
    gate,
    slots() {
      return { busy: shardStates.reduce((sum, state) => sum + state.inFlight, 0), total: budget.total() };
    },
    outage: () => outage.state(),
    close() {
      closing ??= (async () => {
        stopped = true;
        outage.stop();
        clearInterval(ownerTimer);
        clearInterval(watchdog);
        budget.stop();
        await settledWithin(watching, 3_000);
        await ready.catch(() => undefined);
        await relay?.stop();
        // In-flight deliveries get their timeout and time to be recorded. A
        // shard's worker still not closed by then is waiting on a Redis that
        // went away (seen on a cluster right after a failover): its connections
        // are dropped below and the process may exit; its jobs, if any, are
        // taken over by other workers after WORKER_LOCK_DURATION.
        const open = new Set(workers.map((_, i) => i));
        await settledWithin(Promise.all(workers.map((worker, i) => worker.close().then(() => open.delete(i), () => open.delete(i)))), closeWithin);
        if (open.size) {
          logger.warn('some queue shard workers did not close in time; dropping their connections', { shards: [...open], waited_ms: closeWithin });
          // Not awaited: disconnecting such a worker can hang as well.
          for (const i of open) workers[i].disconnect().catch(() => undefined);
        }
        // What this worker still holds (nothing, after a clean drain) is given
        // back now rather than at its expiry, and it leaves the registry.
        if (liveness) await settledWithin(liveness.stop().catch((err: Error) => logger.warn('could not give back endpoint slots on close; they are reclaimed by other workers', { err: err.message })), CLOSE_MARGIN_MS);
        sender.close();
        await settledWithin(queues.close().catch((err: Error) => logger.warn('could not close the relay queues cleanly', { err: err.message })), CLOSE_MARGIN_MS);
        relayConnection.disconnect();
        gateConnection.disconnect();
      })();
      return closing;
    },
  };
}
