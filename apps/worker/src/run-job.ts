import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from '@hookline/config';
import { deliverJobData, HELD_PRIORITY, RETRY_PRIORITY, type DeliverJobData, type DeliveryQueue } from '@hookline/queue';
import { RetryLaterError } from './backoff';
import type { DeliverJob, DeliverResult, KnownOutcome, OutcomeJournal } from './deliver';
import type { EndpointGate } from './endpoint-gate';

// One BullMQ job of a shard, run: its payload re-validated, the delivery
// processed (deliver.ts), and what the deliverer decided carried out on the
// job (`settle`); a failure during an outage puts the job back without an
// attempt. Module functions over an explicit context, which worker.ts builds
// once, so the BullMQ side of a delivery is tested on a fake job.

export type RunJobContext = {
  deliver: (job: DeliverJob) => Promise<DeliverResult>;
  /** Where a held job joins its webhook's line. */
  gate: Pick<EndpointGate, 'park'>;
  logger: Logger;
  /** Records when a job becomes due (the lag gauge's start); never rejects. */
  markDue: (queue: DeliveryQueue, jobId: string, at: number) => Promise<unknown>;
  /** The token that holds the job's BullMQ lock now (null: none, the job is gone); see DeliverJob.stillOwned. */
  lockHolder?: (queue: DeliveryQueue, jobId: string) => Promise<string | null>;
  /** Whether PostgreSQL or Redis is unreachable (outage.ts). */
  isOutage: () => Promise<boolean>;
  /** During an outage, how soon a job put back comes again (OUTAGE_PROBE_INTERVAL). */
  outageProbeMs: number;
  /** Where a job's answered but unrecorded attempt is kept (deliver/context.ts, KnownOutcome); none: in the process only. */
  outcomes?: OutcomeStore;
};

/** The outcome journal's storage: one entry per job, beside it in its shard (worker.ts keeps it in Redis). */
export type OutcomeStore = {
  keep(queue: DeliveryQueue, jobId: string, outcome: KnownOutcome): Promise<void>;
  find(queue: DeliveryQueue, jobId: string): Promise<KnownOutcome | null>;
  forget(queue: DeliveryQueue, jobId: string): Promise<void>;
};

/**
 * The job's outcome journal. Only a job that BullMQ's stalled check gave back
 * (its worker died, or lost its lock) looks for an entry: every other run
 * costs no Redis round trip.
 */
function journalOf(store: OutcomeStore | undefined, shard: DeliveryQueue, job: RunnableJob): OutcomeJournal | undefined {
  if (!store || !job.id) return undefined;
  const id = job.id;
  return {
    keep: (outcome) => store.keep(shard, id, outcome),
    forget: () => store.forget(shard, id),
    ...((job.stalledCounter ?? 0) > 0 ? { find: () => store.find(shard, id) } : {}),
  };
}

/** The parts of a BullMQ job that running it uses. */
export type RunnableJob = Pick<Job<DeliverJobData, DeliverResult>, 'id' | 'data' | 'timestamp' | 'priority' | 'changePriority' | 'moveToDelayed'>
  & Partial<Pick<Job<DeliverJobData, DeliverResult>, 'stalledCounter'>>;

/**
 * BullMQ's answers for a job that is not there or not this worker's any more
 * (its ErrorCode: JobNotExist −1, JobLockNotExist −2, JobNotInState −3, JobLockMismatch −6).
 */
const JOB_GONE_CODES = new Set([-1, -2, -3, -6]);
export const isJobGone = (err: unknown) => JOB_GONE_CODES.has((err as { code?: unknown } | null)?.code as number);

/** Carries out what the deliverer decided for the job (see Next in deliver/context.ts). */
export async function settle(ctx: RunJobContext, shard: DeliveryQueue, job: RunnableJob, token: string | undefined, result: DeliverResult, letGo: () => void = () => undefined): Promise<DeliverResult> {
  const { next } = result;
  if (next.kind === 'done') return result;
  if (next.kind === 'stop') throw new UnrecoverableError(next.reason);
  if (next.kind === 'retry') {
    // Retries queue behind every first attempt (see packages/queue/src/names.ts).
    if (job.priority !== RETRY_PRIORITY) await job.changePriority({ priority: RETRY_PRIORITY });
    await ctx.markDue(shard, job.id!, Date.now() + next.delayMs);
    throw new RetryLaterError(next.delayMs, `retry in ${next.delayMs} ms`);
  }
  // Held: back to `delayed` without counting an attempt (BullMQ's skipAttempt),
  // its worker slot free at once. A parked job, once woken, goes ahead of
  // everything that has not waited yet.
  if (next.park && job.priority !== HELD_PRIORITY) await job.changePriority({ priority: HELD_PRIORITY });
  const dueAt = Date.now() + next.delayMs;
  // Moving the job gives its lock up: this process no longer runs it (running-jobs.ts must not take that lock again).
  letGo();
  await Promise.all([ctx.markDue(shard, job.id!, dueAt), job.moveToDelayed(dueAt, token)]);
  if (next.park) {
    await ctx.gate.park({ ...next.park, jobId: job.id! }).catch((err: Error) => {
      // Its own delay still brings it back.
      ctx.logger.warn('could not park a held delivery; it comes back on its own', { job_id: job.id, err: err.message });
    });
  }
  throw new DelayedError();
}

/**
 * Runs one job of the shard: what BullMQ's processor function does.
 * `letGo` is called just before the job is moved away while still running
 * here (held, or put back during an outage), when its lock stops being this process's.
 */
export async function runJob(ctx: RunJobContext, shard: DeliveryQueue, job: RunnableJob, token?: string, letGo: () => void = () => undefined): Promise<DeliverResult> {
  // A payload is re-validated before it runs: a bad one can never succeed.
  const parsed = deliverJobData.safeParse(job.data);
  if (!parsed.success) {
    ctx.logger.error('invalid delivery job dropped', { job_id: job.id, issue: parsed.error.issues[0]?.message });
    throw new UnrecoverableError('invalid job payload');
  }
  try {
    const stillOwned = ctx.lockHolder && token !== undefined ? async () => (await ctx.lockHolder!(shard, job.id!)) === token : undefined;
    return await settle(ctx, shard, job, token, await ctx.deliver({ ...parsed.data, jobId: job.id, enqueuedAt: job.timestamp, stillOwned, journal: journalOf(ctx.outcomes, shard, job) }), letGo);
  } catch (err) {
    if (err instanceof RetryLaterError || err instanceof UnrecoverableError || err instanceof DelayedError) throw err;
    // The job is gone from Redis, or no longer this worker's (Redis lost its
    // data, or another worker took it over after its lock lapsed): nothing is
    // left to move. Its delivery row is the truth: the refill or the relay
    // queues it again if it still waits. DelayedError tells BullMQ to leave the job alone.
    if (isJobGone(err)) {
      ctx.logger.info('the job is no longer this worker\'s (Redis lost it, or another worker took it over); its delivery row decides what follows', { job_id: job.id, delivery_id: parsed.data.deliveryId, err: (err as Error).message });
      throw new DelayedError();
    }
    // PostgreSQL or Redis unreachable: not this job's fault. It goes back to
    // `delayed` without spending an attempt (the outage is logged once, and
    // the workers pause until it ends). No callback was sent: an attempt
    // already sent is held in deliver/record.ts (untilWritten) until it is recorded.
    if (await ctx.isOutage()) {
      // Redis itself down: the job stays active until its lock lapses, then BullMQ's stalled check puts it back.
      letGo();
      await job.moveToDelayed(Date.now() + ctx.outageProbeMs, token).catch(() => {
        throw err;
      });
      throw new DelayedError();
    }
    ctx.logger.error('delivery job failed unexpectedly; BullMQ will retry it', { job_id: job.id, delivery_id: parsed.data.deliveryId, err: (err as Error).message });
    throw err;
  }
}
