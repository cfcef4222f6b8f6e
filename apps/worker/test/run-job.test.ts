import { DelayedError, UnrecoverableError } from 'bullmq';
import { createLogger } from '@hookline/config';
import { FIRST_ATTEMPT_PRIORITY, HELD_PRIORITY, RETRY_PRIORITY, type DeliveryQueue } from '@hookline/queue';
import { RetryLaterError } from '../src/backoff';
import type { DeliverJob, DeliverResult } from '../src/deliver';
import { runJob, type RunJobContext, type RunnableJob } from '../src/run-job';

// The BullMQ side of one delivery (run-job.ts) on a fake job: what the
// deliverer decided becomes a priority, a delay, a place in the webhook's line
// or an error BullMQ understands; an outage puts the job back without an attempt.

const shard = { name: 'deliveries' } as DeliveryQueue;
const logger = createLogger({ level: 'error', service: 'run-job-test', silent: true });

type Seen = { priority: number[]; delayedTo: number[]; due: number[]; parked: unknown[]; delivered: DeliverJob[] };

function fakeJob(data: unknown = { deliveryId: 'dlv_1' }): RunnableJob & { seen: Seen } {
  const seen: Seen = { priority: [], delayedTo: [], due: [], parked: [], delivered: [] };
  const job = {
    seen,
    id: 'dlv_1',
    data,
    timestamp: 1_000,
    priority: FIRST_ATTEMPT_PRIORITY,
    changePriority: async ({ priority }: { priority?: number }) => void seen.priority.push(priority!),
    moveToDelayed: async (at: number) => void seen.delayedTo.push(at),
  };
  return job as unknown as RunnableJob & { seen: Seen };
}

function context(job: { seen: Seen }, outcome: DeliverResult | Error, isOutage = false): RunJobContext {
  return {
    deliver: async (input) => {
      job.seen.delivered.push(input);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },
    gate: { park: async (input) => void job.seen.parked.push(input) },
    logger,
    markDue: async (_queue, _jobId, at) => void job.seen.due.push(at),
    isOutage: async () => isOutage,
    outageProbeMs: 1_000,
  };
}

it('runs the delivery with the job\'s id and age, and returns a done result as it is', async () => {
  const job = fakeJob();
  const done: DeliverResult = { outcome: 'succeeded', next: { kind: 'done' } };
  await expect(runJob(context(job, done), shard, job)).resolves.toBe(done);
  expect(job.seen.delivered).toEqual([{ deliveryId: 'dlv_1', jobId: 'dlv_1', enqueuedAt: 1_000 }]);
  expect(job.seen).toMatchObject({ priority: [], delayedTo: [], due: [], parked: [] });
});

it('drops a job whose payload is invalid, without running it', async () => {
  const job = fakeJob({ nope: true });
  await expect(runJob(context(job, { outcome: 'succeeded', next: { kind: 'done' } }), shard, job)).rejects.toBeInstanceOf(UnrecoverableError);
  expect(job.seen.delivered).toEqual([]);
});

it('a retry moves behind first attempts and throws its delay to the backoff strategy', async () => {
  const job = fakeJob();
  const before = Date.now();
  const error = await runJob(context(job, { outcome: 'retrying', next: { kind: 'retry', delayMs: 300 } }), shard, job).catch((err: unknown) => err);
  expect(error).toBeInstanceOf(RetryLaterError);
  expect((error as RetryLaterError).delayMs).toBe(300);
  expect(job.seen.priority).toEqual([RETRY_PRIORITY]);
  expect(job.seen.due[0]).toBeGreaterThanOrEqual(before + 300);
});

it('a final failure ends the job with UnrecoverableError', async () => {
  const job = fakeJob();
  await expect(runJob(context(job, { outcome: 'failed', next: { kind: 'stop', reason: 'attempt 4 failed' } }), shard, job)).rejects.toThrow(new UnrecoverableError('attempt 4 failed'));
  expect(job.seen.delayedTo).toEqual([]);
});

it('a parked hold goes back to delayed at the held priority and joins its webhook\'s line; a failed park still delays it', async () => {
  const park = { webhookId: 'wh_1', reason: 'in_flight' as const, cap: 1, since: 1_000 };
  const held: DeliverResult = { outcome: 'held', next: { kind: 'later', delayMs: 5_000, park } };
  const job = fakeJob();
  const before = Date.now();
  await expect(runJob(context(job, held), shard, job, 'token')).rejects.toBeInstanceOf(DelayedError);
  expect(job.seen.priority).toEqual([HELD_PRIORITY]);
  expect(job.seen.delayedTo[0]).toBeGreaterThanOrEqual(before + 5_000);
  expect(job.seen.parked).toEqual([{ ...park, jobId: 'dlv_1' }]);

  const unparked = fakeJob();
  const ctx = { ...context(unparked, held), gate: { park: () => Promise.reject(new Error('Redis gone')) } };
  await expect(runJob(ctx, shard, unparked)).rejects.toBeInstanceOf(DelayedError);
  expect(unparked.seen.delayedTo).toHaveLength(1);
});

it('a failure during an outage puts the job back without an attempt; any other failure is BullMQ\'s to retry', async () => {
  const job = fakeJob();
  const before = Date.now();
  await expect(runJob(context(job, new Error('connect ECONNREFUSED'), true), shard, job)).rejects.toBeInstanceOf(DelayedError);
  expect(job.seen.delayedTo[0]).toBeGreaterThanOrEqual(before + 1_000);

  const other = fakeJob();
  await expect(runJob(context(other, new Error('boom'), false), shard, other)).rejects.toThrow('boom');
  expect(other.seen.delayedTo).toEqual([]);
});

it('a job gone from Redis or taken over (BullMQ\'s missing key, missing lock, wrong state, lock mismatch) is left alone: no retry, no error line', async () => {
  for (const code of [-1, -2, -3, -6]) {
    const job = fakeJob();
    const gone = Object.assign(new Error(`Missing key for job dlv_1. moveToDelayed (${code})`), { code });
    const lines: string[] = [];
    const ctx = { ...context(job, gone), logger: { ...logger, error: (m: string) => void lines.push(m), info: () => undefined } as unknown as typeof logger };
    await expect(runJob(ctx, shard, job)).rejects.toBeInstanceOf(DelayedError);
    expect(lines).toEqual([]);
  }
  // Any other BullMQ error code is still BullMQ's to retry.
  const job = fakeJob();
  await expect(runJob(context(job, Object.assign(new Error('has pending dependencies'), { code: -4 })), shard, job)).rejects.toThrow('has pending dependencies');
});

it('the job\'s outcome journal is looked up only on a run BullMQ\'s stalled check gave back', async () => {
  const journal = { keep: async () => undefined, find: async () => null, forget: async () => undefined };
  const first = fakeJob();
  await runJob({ ...context(first, { outcome: 'succeeded', next: { kind: 'done' } }), outcomes: journal }, shard, first);
  expect(Object.keys(first.seen.delivered[0].journal ?? {}).sort()).toEqual(['forget', 'keep']);
  const again = Object.assign(fakeJob(), { stalledCounter: 1 });
  await runJob({ ...context(again, { outcome: 'succeeded', next: { kind: 'done' } }), outcomes: journal }, shard, again);
  expect(Object.keys(again.seen.delivered[0].journal ?? {}).sort()).toEqual(['find', 'forget', 'keep']);
});

it('lets the job go (no longer tracked as running here) before it moves it away, so its lock is not taken again', async () => {
  const job = fakeJob();
  const order: string[] = [];
  const move = job.moveToDelayed;
  Object.assign(job, { moveToDelayed: async (at: number, token?: string) => (order.push('moved'), move.call(job, at, token)) });
  const held: DeliverResult = { outcome: 'held', next: { kind: 'later', delayMs: 100 } };
  await expect(runJob(context(job, held), shard, job, 'token', () => void order.push('let go'))).rejects.toBeInstanceOf(DelayedError);
  expect(order).toEqual(['let go', 'moved']);
});
