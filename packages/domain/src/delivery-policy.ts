// The delivery state machine and its policies, in one place and without I/O:
// what a delivery's status can be, what happens after an attempt, when the
// next retry is due, and what opens or closes a webhook's circuit.
// docs/api.md ("Delivery rules", "Isolation") states the rules these encode.

import type { SendErrorCode } from './send-errors';

/** A delivery's status, as stored and as the API shows it. */
export type DeliveryStatus = 'pending' | 'pending_retry' | 'succeeded' | 'failed' | 'cancelled';
export const DELIVERY_STATUSES = ['pending', 'pending_retry', 'succeeded', 'failed', 'cancelled'] as const satisfies readonly DeliveryStatus[];
/** Waiting for an attempt: the relay watches these. */
export const WAITING_STATUSES = ['pending', 'pending_retry'] as const satisfies readonly DeliveryStatus[];
export const FINAL_STATUSES = ['succeeded', 'failed', 'cancelled'] as const satisfies readonly DeliveryStatus[];

export const isWaiting = (status: string): boolean => (WAITING_STATUSES as readonly string[]).includes(status);
export const isFinal = (status: string): boolean => (FINAL_STATUSES as readonly string[]).includes(status);

/** A webhook's circuit breaker: `open` holds its deliveries until circuit_retry_at, `half_open` lets one probe through (docs/api.md, "Isolation"). */
export const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

/** The longest a retry waits, and the longest a circuit stays open. */
export const MAX_RETRY_DELAY_MS = 24 * 3_600_000;
export const MAX_CIRCUIT_COOLDOWN_MS = 30 * 60_000;

/**
 * Delay before retry number `retry` (1-based): the schedule's entry, then each
 * further delay doubles the last one, capped at 24 h.
 */
export function scheduledRetryDelay(schedule: number[], retry: number): number {
  if (retry <= schedule.length) return Math.min(schedule[retry - 1], MAX_RETRY_DELAY_MS);
  const last = schedule[schedule.length - 1];
  const doublings = retry - schedule.length;
  return Math.min(last * 2 ** Math.min(doublings, 40), MAX_RETRY_DELAY_MS);
}

export type RetryDelayInput = {
  schedule: number[];
  /** 1-based: the first retry follows attempt 1. */
  retryNumber: number;
  /** The receiver's `Retry-After` (429 and 503 only), in ms. */
  retryAfterMs?: number | null;
  /** RETRY_JITTER as a share (0.1 = ±10%). */
  jitter?: number;
  /** [0, 1); injectable so tests can pin it. */
  random?: () => number;
};

/**
 * Delay before a retry: the schedule's delay moved by a uniform random share
 * within ±jitter (so the schedule stays the mean and deliveries that failed
 * together do not all return in the same second), then for a `Retry-After` the
 * later of the two — never sooner than the schedule asks — and never past 24 h.
 */
export function retryDelayMs(input: RetryDelayInput): number {
  const scheduled = scheduledRetryDelay(input.schedule, Math.max(1, input.retryNumber));
  const jitter = input.jitter ?? 0;
  const jittered = jitter > 0 ? Math.round(scheduled * (1 + jitter * (2 * (input.random ?? Math.random)() - 1))) : scheduled;
  const wanted = input.retryAfterMs == null ? jittered : Math.max(jittered, input.retryAfterMs);
  return Math.min(Math.max(wanted, 0), MAX_RETRY_DELAY_MS);
}

/** What one attempt produced, as far as the policy cares. */
export type AttemptResult = {
  /** A 2xx arrived within the timeout. */
  ok: boolean;
  /** HTTP status, null when no response arrived. */
  status: number | null;
  /** Why no usable response arrived (SEND_ERROR_CODES), or 'redirect'. */
  error: string | null;
  retryAfterMs: number | null;
};

/**
 * The attempt's `error` when the egress proxy failed (unreachable, or it
 * refused the CONNECT): nothing reached the endpoint, so nothing about the
 * endpoint can be concluded. Such an attempt is not recorded against the
 * delivery (the worker holds it and tries again after DELIVERY_PROXY_RETRY),
 * and it neither counts toward nor resets the circuit.
 */
export const PROXY_ERROR = 'proxy_error' satisfies SendErrorCode;
export const isProxyFailure = (result: Pick<AttemptResult, 'error'>): boolean => result.error === PROXY_ERROR;

/**
 * Failures that say the endpoint is down or overloaded, and so count toward
 * opening its circuit: no answer at all (timeout, refused, reset, DNS, TLS…),
 * a 5xx or a 429. Any other answer (2xx, 3xx, 4xx) shows a server that
 * responds: it resets the count and closes a half-open circuit. A failure of
 * the egress proxy is neither (see circuitCount).
 */
export function isCircuitFailure(result: Pick<AttemptResult, 'status'> & Partial<Pick<AttemptResult, 'error'>>): boolean {
  if (result.error === PROXY_ERROR) return false;
  if (result.status === null) return true;
  return result.status >= 500 || result.status === 429;
}

/** The cooldown after a failed probe: twice the last, at most 30 minutes. */
export function nextCircuitCooldown(currentMs: number | null, baseMs: number): number {
  return Math.min(currentMs ? currentMs * 2 : baseMs, MAX_CIRCUIT_COOLDOWN_MS);
}

/** What the webhook row must learn from an attempt, besides its circuit. */
export type WebhookChange = 'clear_failing' | 'gone' | 'failing' | null;

export type Decision = {
  deliveryStatus: DeliveryStatus;
  /** next_attempt_at of a scheduled retry; null keeps a waiting delivery's current one. */
  nextAttemptAt: Date | null;
  /** Delay of the scheduled retry; null when no retry is scheduled by this attempt. */
  delayMs: number | null;
  outcome: 'succeeded' | 'failed' | 'retrying' | 'attempt_failed';
  webhookChange: WebhookChange;
};

export type DecisionInput = {
  /** The delivery's status when the attempt was recorded. */
  status: DeliveryStatus;
  attemptNumber: number;
  /** A test send: one attempt, never retried. */
  test: boolean;
  /** A one-off attempt (manual retry, test send): it never schedules another. */
  once: boolean;
  retryEnabled: boolean;
  maxRetries: number;
  /** The webhook was marked failing before this attempt. */
  failing: boolean;
  schedule: number[];
  jitter: number;
  now: number;
  random?: () => number;
};

/** What an attempt's result makes of its delivery (and of its webhook). */
export function decideAfterAttempt(input: DecisionInput, result: AttemptResult): Decision {
  const end = (deliveryStatus: DeliveryStatus, outcome: Decision['outcome'], webhookChange: WebhookChange): Decision =>
    ({ deliveryStatus, nextAttemptAt: null, delayMs: null, outcome, webhookChange });
  if (result.ok) return end('succeeded', 'succeeded', input.failing ? 'clear_failing' : null);
  // 410 Gone: the receiver asks for no more callbacks; the webhook is disabled.
  if (result.status === 410) return end('failed', 'failed', 'gone');
  if (input.test) return end('failed', 'failed', null);
  if (input.once) {
    // A manual retry is one extra try: a delivery still waiting keeps its own
    // scheduled job (and its place in the schedule); anything else ends failed.
    if (isWaiting(input.status)) return end(input.status, 'attempt_failed', null);
    return end('failed', 'failed', null);
  }
  if (input.retryEnabled && input.attemptNumber - 1 < input.maxRetries) {
    const delayMs = retryDelayMs({ schedule: input.schedule, retryNumber: input.attemptNumber, retryAfterMs: result.retryAfterMs, jitter: input.jitter, random: input.random });
    return { deliveryStatus: 'pending_retry', nextAttemptAt: new Date(input.now + delayMs), delayMs, outcome: 'retrying', webhookChange: null };
  }
  return end('failed', 'failed', 'failing');
}

/** Where a webhook's circuit goes after an attempt, or null when it stays. */
export function circuitAfterAttempt(input: {
  /** The circuit as loaded before the attempt. */
  circuit: CircuitState;
  /** This attempt was the half-open probe. */
  probe: boolean;
  /** Consecutive circuit failures counted so far, this attempt included. */
  consecutiveFailures: number;
  threshold: number;
  result: Pick<AttemptResult, 'status'> & Partial<Pick<AttemptResult, 'error'>>;
}): 'open' | 'reopen' | 'close' | null {
  // The proxy failed: the endpoint was not reached, so its circuit learns nothing (a probe's claim lapses by itself).
  if (input.result.error === PROXY_ERROR) return null;
  const failed = isCircuitFailure(input.result);
  if (!failed) return input.circuit !== 'closed' || input.probe ? 'close' : null;
  if (input.probe) return 'reopen';
  if (input.circuit === 'closed' && input.consecutiveFailures >= input.threshold) return 'open';
  return null;
}

/** What an attempt does to its webhook's count of consecutive circuit failures. */
export function circuitCount(result: Pick<AttemptResult, 'status' | 'error'>): 'failure' | 'reset' | 'none' {
  if (isProxyFailure(result)) return 'none';
  return isCircuitFailure(result) ? 'failure' : 'reset';
}

/** Why a delivery is held back without an attempt. */
export type HoldReason = 'in_flight' | 'rate' | 'circuit' | 'proxy';

/**
 * How long a delivery held by its webhook's in-flight cap sleeps before it
 * looks again on its own. Normally it is woken sooner, when a slot frees; this
 * is the fallback for a wake-up that never comes (a worker died holding a
 * slot). It grows with the delivery's place in the line (`rank` deliveries
 * ahead, `cap` at a time, each taking at most `attemptMs`), so a long line
 * does not churn through the queue, and stays within [1 s, 5 min].
 */
export function inFlightHoldMs(rank: number, cap: number, attemptMs: number): number {
  return Math.min(Math.max((Math.floor(rank / cap) + 1) * attemptMs, 1_000), 5 * 60_000);
}

/**
 * How long a delivery held by its webhook's rate limit waits: until the next
 * start is allowed (`waitMs`), plus its place in the line at one start every
 * 1000/rate ms, so held deliveries come back spread over the moments in which
 * they can start instead of all at once.
 */
export function rateHoldMs(rank: number, rate: number, waitMs: number): number {
  return Math.max(Math.ceil(waitMs), 1) + Math.floor((rank * 1_000) / rate);
}

/**
 * How long a delivery held by an open (or probing) circuit waits: until
 * `untilMs`, plus a spread of up to a second (`spreadMs`, random) so a backlog
 * does not come back all in one instant; the earliest carries the probe.
 */
export function circuitHoldMs(untilMs: number, now: number, spreadMs: number): number {
  return Math.max(untilMs - now, 0) + Math.min(Math.max(spreadMs, 0), 1_000);
}
