import {
  MAX_CIRCUIT_COOLDOWN_MS, MAX_RETRY_DELAY_MS, circuitAfterAttempt, circuitHoldMs, decideAfterAttempt, inFlightHoldMs, isCircuitFailure,
  isFinal, isWaiting, nextCircuitCooldown, rateHoldMs, retryDelayMs, type DecisionInput,
} from '../src/delivery-policy';
import { parseSchedule } from '../src/durations';

// The delivery state machine, pure: retry delays with jitter and Retry-After,
// the decision after an attempt, and the circuit breaker's transitions.

const MIN = 60_000;
const schedule = parseSchedule('5m,10m,20m,40m,80m')!;

describe('retryDelayMs', () => {
  it('follows the default schedule, then doubles, capped at 24 h', () => {
    const delays = Array.from({ length: 12 }, (_, i) => retryDelayMs({ schedule, retryNumber: i + 1 }));
    expect(delays.map((ms) => ms / MIN)).toEqual([5, 10, 20, 40, 80, 160, 320, 640, 1280, 1440, 1440, 1440]);
    expect(retryDelayMs({ schedule, retryNumber: 500 })).toBe(MAX_RETRY_DELAY_MS);
  });

  it('doubles the last entry of a custom schedule', () => {
    const short = [300, 600, 1200];
    expect([1, 2, 3, 4, 5].map((retryNumber) => retryDelayMs({ schedule: short, retryNumber }))).toEqual([300, 600, 1200, 2400, 4800]);
  });

  it('honours Retry-After but never sooner than the schedule', () => {
    expect(retryDelayMs({ schedule, retryNumber: 1, retryAfterMs: 30_000 })).toBe(5 * MIN);
    expect(retryDelayMs({ schedule, retryNumber: 1, retryAfterMs: 0 })).toBe(5 * MIN);
    expect(retryDelayMs({ schedule, retryNumber: 1, retryAfterMs: 7 * MIN })).toBe(7 * MIN);
    expect(retryDelayMs({ schedule, retryNumber: 2, retryAfterMs: null })).toBe(10 * MIN);
  });

  it('caps Retry-After at 24 h', () => {
    expect(retryDelayMs({ schedule, retryNumber: 1, retryAfterMs: 3 * 86_400_000 })).toBe(MAX_RETRY_DELAY_MS);
  });

  it('moves each delay within ±jitter, the schedule staying the mean', () => {
    expect(retryDelayMs({ schedule, retryNumber: 1, jitter: 0.1, random: () => 0 })).toBe(4.5 * MIN);
    expect(retryDelayMs({ schedule, retryNumber: 1, jitter: 0.1, random: () => 0.5 })).toBe(5 * MIN);
    expect(retryDelayMs({ schedule, retryNumber: 1, jitter: 0.1, random: () => 0.999999 })).toBeCloseTo(5.5 * MIN, -2);

    // Thousands of deliveries that failed together: spread over the whole ±10% band, mean on the schedule.
    const delays = Array.from({ length: 5_000 }, () => retryDelayMs({ schedule, retryNumber: 1, jitter: 0.1 }));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(4.5 * MIN);
    expect(Math.max(...delays)).toBeLessThanOrEqual(5.5 * MIN);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    expect(Math.abs(mean - 5 * MIN) / (5 * MIN)).toBeLessThan(0.01);
    // No second carries more than a few of them (a 60 s band holds 5,000 over 60 seconds).
    const perSecond = new Map<number, number>();
    for (const ms of delays) perSecond.set(Math.floor(ms / 1000), (perSecond.get(Math.floor(ms / 1000)) ?? 0) + 1);
    expect(perSecond.size).toBeGreaterThan(55);
    expect(Math.max(...perSecond.values())).toBeLessThan(200);
  });

  it('jitter never takes a delay past 24 h, and Retry-After still wins over a jittered delay', () => {
    expect(retryDelayMs({ schedule, retryNumber: 40, jitter: 0.1, random: () => 0.999 })).toBe(MAX_RETRY_DELAY_MS);
    expect(retryDelayMs({ schedule, retryNumber: 1, jitter: 0.1, random: () => 0, retryAfterMs: 5 * MIN })).toBe(5 * MIN);
  });
});

describe('decideAfterAttempt', () => {
  const base: DecisionInput = {
    status: 'pending', attemptNumber: 1, test: false, once: false, retryEnabled: true, maxRetries: 2, failing: false, schedule: [1_000, 2_000], jitter: 0, now: 0,
  };
  const failed = { ok: false, status: 500, error: null, retryAfterMs: null };

  it('a 2xx succeeds, clearing failing_since when the webhook was failing', () => {
    expect(decideAfterAttempt(base, { ok: true, status: 200, error: null, retryAfterMs: null })).toMatchObject({ deliveryStatus: 'succeeded', outcome: 'succeeded', webhookChange: null });
    expect(decideAfterAttempt({ ...base, failing: true }, { ok: true, status: 204, error: null, retryAfterMs: null }).webhookChange).toBe('clear_failing');
  });

  it('a failure schedules a retry while retries remain, then fails the delivery and marks the webhook failing', () => {
    expect(decideAfterAttempt(base, failed)).toEqual({ deliveryStatus: 'pending_retry', nextAttemptAt: new Date(1_000), delayMs: 1_000, outcome: 'retrying', webhookChange: null });
    expect(decideAfterAttempt({ ...base, attemptNumber: 2 }, failed)).toMatchObject({ delayMs: 2_000 });
    expect(decideAfterAttempt({ ...base, attemptNumber: 3 }, failed)).toMatchObject({ deliveryStatus: 'failed', outcome: 'failed', webhookChange: 'failing' });
    expect(decideAfterAttempt({ ...base, retryEnabled: false }, failed)).toMatchObject({ deliveryStatus: 'failed', webhookChange: 'failing' });
  });

  it('410 disables the webhook; tests and one-off attempts never schedule a retry', () => {
    expect(decideAfterAttempt(base, { ...failed, status: 410 })).toMatchObject({ deliveryStatus: 'failed', webhookChange: 'gone' });
    expect(decideAfterAttempt({ ...base, test: true }, failed)).toMatchObject({ deliveryStatus: 'failed', webhookChange: null });
    expect(decideAfterAttempt({ ...base, once: true, status: 'pending_retry' }, failed)).toMatchObject({ deliveryStatus: 'pending_retry', outcome: 'attempt_failed' });
    expect(decideAfterAttempt({ ...base, once: true, status: 'failed' }, failed)).toMatchObject({ deliveryStatus: 'failed', outcome: 'failed' });
  });
});

describe('circuit breaker policy', () => {
  it('counts no answer, 5xx and 429 as circuit failures; any other answer as a live server', () => {
    for (const status of [null, 500, 503, 599, 429]) expect(isCircuitFailure({ status })).toBe(true);
    for (const status of [200, 204, 301, 400, 404, 410, 422]) expect(isCircuitFailure({ status })).toBe(false);
  });

  it('opens at the threshold, reopens on a failed probe, closes on a live answer', () => {
    const at = (circuit: 'closed' | 'open' | 'half_open', probe: boolean, consecutiveFailures: number, status: number | null) =>
      circuitAfterAttempt({ circuit, probe, consecutiveFailures, threshold: 5, result: { status } });
    expect(at('closed', false, 4, 500)).toBeNull();
    expect(at('closed', false, 5, null)).toBe('open');
    expect(at('closed', false, 9, 503)).toBe('open');
    expect(at('open', false, 9, 503)).toBeNull();
    expect(at('half_open', true, 6, null)).toBe('reopen');
    expect(at('half_open', true, 6, 200)).toBe('close');
    expect(at('open', false, 0, 200)).toBe('close');
    expect(at('closed', false, 0, 404)).toBeNull();
  });

  it('doubles the cooldown after each failed probe, up to 30 minutes', () => {
    expect(nextCircuitCooldown(null, 30_000)).toBe(30_000);
    expect(nextCircuitCooldown(30_000, 30_000)).toBe(60_000);
    expect(nextCircuitCooldown(20 * MIN, 30_000)).toBe(MAX_CIRCUIT_COOLDOWN_MS);
  });
});

describe('hold delays', () => {
  it('in-flight holds grow with the place in line, within [1 s, 5 min]', () => {
    expect(inFlightHoldMs(0, 10, 10_000)).toBe(10_000);
    expect(inFlightHoldMs(25, 10, 10_000)).toBe(30_000);
    expect(inFlightHoldMs(0, 10, 100)).toBe(1_000);
    expect(inFlightHoldMs(100_000, 10, 10_000)).toBe(300_000);
  });

  it('rate holds spread a line over the moments in which it can start', () => {
    expect(rateHoldMs(0, 5, 120)).toBe(120);
    expect(rateHoldMs(1, 5, 120)).toBe(320);
    expect(rateHoldMs(10, 5, 0.5)).toBe(2_001);
  });

  it('circuit holds end at the probe time, spread over at most a second', () => {
    expect(circuitHoldMs(10_000, 4_000, 0)).toBe(6_000);
    expect(circuitHoldMs(10_000, 4_000, 300)).toBe(6_300);
    expect(circuitHoldMs(10_000, 20_000, 5_000)).toBe(1_000);
  });
});

describe('statuses', () => {
  it('tells waiting from final', () => {
    expect(['pending', 'pending_retry'].every(isWaiting)).toBe(true);
    expect(['succeeded', 'failed', 'cancelled'].every(isFinal)).toBe(true);
    expect(isWaiting('succeeded') || isFinal('pending')).toBe(false);
  });
});
