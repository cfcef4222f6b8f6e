import type { Logger, WorkerEnv } from '@hookline/config';
import { OPERATIONAL_EVENT_NAMES, type HoldReason } from '@hookline/domain';
import type { Metrics } from '@hookline/metrics';
import type { DeliverJobData } from '@hookline/queue';
import type { DeliveryRef, DeliveryStore, LoadedDelivery } from '../delivery-store';
import type { EndpointGate } from '../endpoint-gate';
import type { LocalLine } from '../local-line';
import type { Sender, SendResult } from '../sender';
import type { SecretCache } from './send';

// What every phase of a delivery works over: its dependencies, explicit. The
// store and the endpoint gate are interfaces, so a phase runs in a test on
// fakes of them (no PostgreSQL, no Redis); createDeliverer (deliver.ts) builds
// the real context once per worker.

export type DeliverConfig = Pick<
  WorkerEnv,
  | 'WEBHOOK_BRAND' | 'RETRY_SCHEDULE' | 'RETRY_JITTER' | 'AUTO_DISABLE_AFTER' | 'DELIVERY_TIMEOUT'
  | 'ENDPOINT_CONCURRENCY' | 'CIRCUIT_BREAKER_THRESHOLD' | 'CIRCUIT_BREAKER_COOLDOWN'
> & Partial<Pick<WorkerEnv, 'DELIVERY_PROXY_RETRY'>>;

/** The statements a delivery runs (createDeliveryStore implements them on PostgreSQL). */
export type DeliveryStorePort = Pick<
  DeliveryStore,
  | 'load' | 'cancel' | 'claimProbe' | 'waitingDocuments' | 'record' | 'recordExhausted' | 'current'
  | 'clearFailing' | 'disableGone' | 'markFailing' | 'disableFailingTooLong' | 'openCircuit' | 'reopenCircuit' | 'closeCircuit'
>;

export type DeliverContext = {
  store: DeliveryStorePort;
  gate: EndpointGate;
  /** Where a delivery to a fast webhook waits for a slot instead of being parked (none: always parked). */
  line?: LocalLine;
  sender: Sender;
  /** The webhooks' secrets and custom headers, decrypted once per ciphertext. */
  secrets: SecretCache;
  logger: Logger;
  metrics: Metrics;
  config: DeliverConfig;
  /** Queues the deliveries of an operational event just written (none: the relay finds them after RELAY_GRACE). */
  enqueue?: (deliveries: DeliveryRef[]) => Promise<void>;
  /** Brings a delayed job of the webhook back at once; false when it is not delayed (none: held job callbacks wait out their delay). */
  promote?: (jobId: string, webhookId: string) => Promise<boolean>;
  /**
   * Recording an attempt failed (it is tried again): whether PostgreSQL or
   * Redis is down (an outage, logged once elsewhere) rather than something
   * this delivery should log itself. None: always logged here.
   */
  isOutage?: (err: unknown) => Promise<boolean>;
  /** First and largest wait between two tries of recording one attempt. */
  recordRetryMs: { first: number; max: number };
  /**
   * Resolves when the outage under way ends (PostgreSQL and Redis answer
   * again): an attempt waiting to be recorded tries again then, not at the end
   * of its back-off. None: only the back-off.
   */
  outageEnded?: () => Promise<void>;
};

/**
 * An attempt sent and answered whose recording failed or is slow (record.ts,
 * JOURNAL_AFTER_MS), kept in Redis beside its job (run-job.ts) so that if this worker dies before PostgreSQL takes it,
 * the job's next run records it instead of sending the callback again.
 */
export type KnownOutcome = {
  /** The attempt's id, the same for every try of recording it. */
  attemptId: string;
  /** The delivery's attempt count the attempt was sent at (it is the next one). */
  attemptCount: number;
  result: Omit<SendResult, 'headers'>;
};

/** The job's outcome journal (KnownOutcome). `find` only on a run of a job BullMQ's stalled check gave back (its worker died, or lost its lock). */
export type OutcomeJournal = {
  keep(outcome: KnownOutcome): Promise<void>;
  forget(): Promise<void>;
  find?: () => Promise<KnownOutcome | null>;
};

/** A job to run: its payload, plus the BullMQ job's id and age (for the webhook's line of held deliveries). */
export type DeliverJob = DeliverJobData & {
  jobId?: string;
  enqueuedAt?: number;
  /**
   * Whether this process still holds the job's BullMQ lock: false once Redis
   * lost the job (restarted empty: the refill queues it again) or another
   * worker took it over. Asked only after a wait in the local line, the one
   * place a job waits in memory long enough for that to happen before it sends.
   */
  stillOwned?: () => Promise<boolean>;
  /** Where an answered attempt not yet recorded is kept for the job's next run (none: in this process only). */
  journal?: OutcomeJournal;
};

export type DeliverOutcome =
  /** no such delivery row */
  | 'missing'
  /** already final: nothing to do (a job that ran twice), or the job is no longer this worker's */
  | 'skipped'
  | 'cancelled'
  /** held back without an attempt: over the webhook's in-flight cap or rate, behind its open circuit, or not due yet */
  | 'held'
  | 'succeeded'
  | 'failed'
  /** failed, another attempt is scheduled */
  | 'retrying'
  /** a once-job failed; the delivery keeps waiting for its own scheduled attempt */
  | 'attempt_failed';

/** What becomes of the job. */
export type Next =
  | { kind: 'done' }
  /** a scheduled retry, `delayMs` from now (a BullMQ retry through the backoff strategy) */
  | { kind: 'retry'; delayMs: number }
  /** final: this job tries no more */
  | { kind: 'stop'; reason: string }
  /**
   * back to the queue without an attempt, `delayMs` from now at the latest;
   * `park` puts it in its webhook's line, to be woken when a slot frees
   */
  | { kind: 'later'; delayMs: number; park?: { webhookId: string; reason: HoldReason; cap: number; since: number } };

export type DeliverResult = { outcome: DeliverOutcome; attemptId?: string; attemptNumber?: number; delayMs?: number; next: Next };

export const DONE: Next = { kind: 'done' };

export const JOB_COMPLETED = 'extraction.job_completed';
export const DOCUMENT_COMPLETED = 'extraction.document_completed';
export const isOperational = (event: string) => (OPERATIONAL_EVENT_NAMES as readonly string[]).includes(event);
/** The extraction an extraction event is about, from its data. */
export const extractionOf = (data: unknown): string | null => {
  const id = (data as { extraction_id?: unknown } | null)?.extraction_id;
  return typeof id === 'string' ? id : null;
};

/** The webhook's in-flight cap: its own, or ENDPOINT_CONCURRENCY. */
export const capOf = (ctx: DeliverContext, row: LoadedDelivery) => row.max_in_flight ?? ctx.config.ENDPOINT_CONCURRENCY;

/** The host of a URL, for logs: never the path or query string, which may carry tokens. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}
