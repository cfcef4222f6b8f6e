import type IORedis from 'ioredis';
import type { HoldReason } from '@hookline/domain';

// Endpoint isolation, across every worker process: how many deliveries to one
// webhook are in flight (a lease each, expiring, so a worker that dies cannot
// leak its share), how many attempts started in the last second, how many
// attempts in a row failed (the circuit breaker's count), and which deliveries
// are held back waiting for a slot.
//
// A delivery over its webhook's cap or rate gives its worker slot back at once:
// the BullMQ adapter parks its job in `delayed` (no attempt, nothing written to
// PostgreSQL) and records it in the webhook's `held` line here. When an attempt
// ends, its slot is handed to the first held delivery (a reservation counted
// like a lease) and that job is promoted, so a line moves at the endpoint's pace
// without polling. The parked job's own delay is only a fallback for a wake-up
// that never comes.
//
// Keys are per webhook and share one hash tag ({wh_…}), so each script touches
// one Redis Cluster slot. Times come from Redis (TIME), one clock for every worker.

const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
/** Idle keys of a webhook go away by themselves. */
const IDLE_TTL_MS = 86_400_000;

// The failure count is checked here too: the instant the threshold is crossed
// no further attempt starts, even before the circuit's state reaches
// PostgreSQL (the probe and explicit user actions pass: threshold 0).
// KEYS: leases, held, starts, failures. ARGV: leaseId, jobId, cap, ratePerSecond (0 = none), leaseTtlMs, threshold (0 = ignore).
// → {1} acquired | {0, reason, rank, waitMs}
const ACQUIRE = `${NOW}
local leases, held, starts = KEYS[1], KEYS[2], KEYS[3]
local leaseId, jobId = ARGV[1], ARGV[2]
local cap, rate, ttl, threshold = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if threshold > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= threshold then
  return {0, 'circuit', redis.call('ZCARD', held), 0}
end
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
-- A slot handed to this job when it was woken is its own.
redis.call('ZREM', leases, 'job:' .. jobId)
if redis.call('ZCARD', leases) >= cap then
  return {0, 'in_flight', redis.call('ZCARD', held), 0}
end
if rate > 0 then
  -- Starts are paced 1000/rate ms apart (no bursts): whichever second one
  -- looks at, at most rate attempts start in it.
  local nextStart = tonumber(redis.call('GET', starts) or '0')
  if nextStart > now then
    return {0, 'rate', redis.call('ZCARD', held), nextStart - now}
  end
  redis.call('SET', starts, tostring(now + 1000 / rate), 'PX', 2000)
end
redis.call('ZADD', leases, now + ttl, leaseId)
redis.call('PEXPIRE', leases, ttl + ${IDLE_TTL_MS})
redis.call('ZREM', held, jobId)
return {1}`;

// Hands free slots to the first held deliveries: a reservation each, as long as
// a lease. KEYS: leases, held. ARGV: max to wake, cap, reservationTtlMs. → woken job ids
const WAKE_FN = `
local function wake(leases, held, max, cap, ttl, now)
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  local free = cap - redis.call('ZCARD', leases)
  local n = math.min(max, free)
  local woken = {}
  if n <= 0 then return woken end
  local popped = redis.call('ZPOPMIN', held, n)
  for i = 1, #popped, 2 do
    redis.call('ZADD', leases, now + ttl, 'job:' .. popped[i])
    woken[#woken + 1] = popped[i]
  end
  return woken
end`;

// Ends an attempt: frees its slot, counts consecutive circuit failures (any
// other answer resets the count) and hands the slot to the next held delivery
// when asked — unless this failure is the one that opens the circuit, which
// holds the line anyway.
// KEYS: leases, held, failures. ARGV: leaseId, failed (1/0), wake (0/1), cap, reservationTtlMs, threshold.
// → {consecutive failures, woken…}
const RELEASE = `${NOW}${WAKE_FN}
redis.call('ZREM', KEYS[1], ARGV[1])
local failures = 0
if ARGV[2] == '1' then
  failures = redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ${IDLE_TTL_MS})
else
  redis.call('DEL', KEYS[3])
end
local out = {failures}
if ARGV[3] == '1' and failures < tonumber(ARGV[6]) then
  for _, id in ipairs(wake(KEYS[1], KEYS[2], 1, tonumber(ARGV[4]), tonumber(ARGV[5]), now)) do out[#out + 1] = id end
end
return out`;

// Puts a parked job in its webhook's line (by age), and — for an in-flight hold
// — closes the race with a slot that freed after the job was refused: if one is
// free now, it goes to the head of the line at once.
// KEYS: leases, held. ARGV: jobId, score, wakeIfFree (1/0), cap, reservationTtlMs. → woken job ids
const PARK = `${NOW}${WAKE_FN}
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ${IDLE_TTL_MS})
if ARGV[3] ~= '1' then return {} end
return wake(KEYS[1], KEYS[2], 1000000, tonumber(ARGV[4]), tonumber(ARGV[5]), now)`;

// Wakes as many held deliveries as there are free slots (a circuit closed).
// KEYS: leases, held. ARGV: max, cap, reservationTtlMs. → woken job ids
const WAKE = `${NOW}${WAKE_FN}
return wake(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), now)`;

// A reservation whose job could not be promoted (it finished or runs already):
// give the slot to the next in line. KEYS: leases, held. ARGV: jobId, cap, reservationTtlMs.
const UNRESERVE = `${NOW}${WAKE_FN}
redis.call('ZREM', KEYS[1], 'job:' .. ARGV[1])
return wake(KEYS[1], KEYS[2], 1, tonumber(ARGV[2]), tonumber(ARGV[3]), now)`;

// Forgets a webhook's failure count (its circuit closed by other means).
const RESET = `redis.call('DEL', KEYS[1]) return 1`;

type GateCommands = {
  hooklineAcquire(leases: string, held: string, starts: string, failures: string, leaseId: string, jobId: string, cap: number, rate: number, ttl: number, threshold: number): Promise<[number, string?, number?, number?]>;
  hooklineRelease(leases: string, held: string, failures: string, leaseId: string, failed: number, wake: number, cap: number, ttl: number, threshold: number): Promise<[number, ...string[]]>;
  hooklinePark(leases: string, held: string, jobId: string, score: number, wakeIfFree: number, cap: number, ttl: number): Promise<string[]>;
  hooklineWake(leases: string, held: string, max: number, cap: number, ttl: number): Promise<string[]>;
  hooklineUnreserve(leases: string, held: string, jobId: string, cap: number, ttl: number): Promise<string[]>;
  hooklineReset(failures: string): Promise<number>;
};

export type Lease = { id: string };
export type Acquired = { ok: true; lease: Lease } | { ok: false; reason: HoldReason; rank: number; waitMs: number };

export type EndpointGate = {
  /**
   * Takes a slot for one attempt, or says why not: the cap, the rate, or a
   * failure count at `circuitThreshold` (0: not checked — the probe, explicit user actions).
   */
  acquire(input: { webhookId: string; jobId: string; cap: number; ratePerSecond: number | null; circuitThreshold: number }): Promise<Acquired>;
  /**
   * Ends an attempt: frees its slot, counts the failure toward the circuit (or
   * resets the count), and hands the slot to the next held delivery when
   * `wake`. Resolves to the consecutive failure count.
   */
  release(input: { webhookId: string; lease: Lease; circuitFailure: boolean; wake: boolean; cap: number; threshold: number }): Promise<number>;
  /** Records a parked job in its webhook's line; wakes the head at once when a slot is free (in-flight holds). */
  park(input: { webhookId: string; jobId: string; since: number; reason: HoldReason; cap: number }): Promise<void>;
  /** Wakes held deliveries into every free slot (a circuit closed). */
  wakeAll(input: { webhookId: string; cap: number }): Promise<void>;
  /** Forgets the webhook's consecutive failure count. */
  resetFailures(webhookId: string): Promise<void>;
  /** The length of a webhook's line and its slots in use (for tests and operators). */
  inspect(webhookId: string): Promise<{ held: number; inFlight: number; failures: number }>;
};

export type EndpointGateOptions = {
  /** A connection of its own is best: scripts are defined on it. */
  redis: IORedis;
  /** The queue prefix: an installation's keys stay under it. */
  prefix: string;
  /** How long an unreleased slot counts (the attempt's timeout plus a margin for a worker that died). */
  leaseTtlMs: number;
  /** Moves a parked job to the waiting line; false when it is not parked (finished, or running already). */
  promote(jobId: string): Promise<boolean>;
  onError?(err: Error, what: string): void;
};

/** How long a slot handed to a woken job waits for it to arrive. */
const RESERVATION_TTL_MS = 10_000;
/** At most this many stale entries are skipped when handing one slot on. */
const MAX_HANDOFFS = 5;

let leaseCounter = 0;

export function createEndpointGate(opts: EndpointGateOptions): EndpointGate {
  const redis = opts.redis as IORedis & GateCommands;
  const commands: Array<[keyof GateCommands, number, string]> = [
    ['hooklineAcquire', 4, ACQUIRE],
    ['hooklineRelease', 3, RELEASE],
    ['hooklinePark', 2, PARK],
    ['hooklineWake', 2, WAKE],
    ['hooklineUnreserve', 2, UNRESERVE],
    ['hooklineReset', 1, RESET],
  ];
  for (const [name, numberOfKeys, lua] of commands) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
  }
  const keys = (webhookId: string) => {
    const base = `${opts.prefix}:endpoint:{${webhookId}}`;
    return { leases: `${base}:leases`, held: `${base}:held`, starts: `${base}:starts`, failures: `${base}:failures` };
  };
  const leaseTtl = Math.max(opts.leaseTtlMs, 1_000);

  /** Promotes woken jobs; a slot whose job cannot be promoted goes to the next in line. */
  async function handOff(webhookId: string, woken: string[], cap: number): Promise<void> {
    const k = keys(webhookId);
    await Promise.all(
      woken.map(async (first) => {
        let jobId: string | undefined = first;
        for (let hops = 0; jobId && hops < MAX_HANDOFFS; hops += 1) {
          if (await opts.promote(jobId)) return;
          [jobId] = await redis.hooklineUnreserve(k.leases, k.held, jobId, cap, RESERVATION_TTL_MS);
        }
      }),
    );
  }

  const guard = (what: string) => (err: Error) => opts.onError?.(err, what);

  return {
    async acquire({ webhookId, jobId, cap, ratePerSecond, circuitThreshold }) {
      const k = keys(webhookId);
      leaseCounter = (leaseCounter + 1) % 1e9;
      const leaseId = `${process.pid}:${Date.now().toString(36)}:${leaseCounter}`;
      const [ok, reason, rank, waitMs] = await redis.hooklineAcquire(
        k.leases, k.held, k.starts, k.failures, leaseId, jobId, cap, ratePerSecond ?? 0, leaseTtl, circuitThreshold,
      );
      if (ok === 1) return { ok: true, lease: { id: leaseId } };
      const why: HoldReason = reason === 'rate' || reason === 'circuit' ? reason : 'in_flight';
      return { ok: false, reason: why, rank: Number(rank ?? 0), waitMs: Number(waitMs ?? 0) };
    },

    async release({ webhookId, lease, circuitFailure, wake, cap, threshold }) {
      const k = keys(webhookId);
      const [failures, ...woken] = await redis.hooklineRelease(k.leases, k.held, k.failures, lease.id, circuitFailure ? 1 : 0, wake ? 1 : 0, cap, RESERVATION_TTL_MS, threshold);
      // The woken job runs on its own; this attempt need not wait for it.
      if (woken.length) handOff(webhookId, woken, cap).catch(guard('wake a held delivery'));
      return Number(failures);
    },

    async park({ webhookId, jobId, since, reason, cap }) {
      const k = keys(webhookId);
      const woken = await redis.hooklinePark(k.leases, k.held, jobId, since, reason === 'in_flight' ? 1 : 0, cap, RESERVATION_TTL_MS);
      if (woken.length) await handOff(webhookId, woken, cap);
    },

    async wakeAll({ webhookId, cap }) {
      const k = keys(webhookId);
      const woken = await redis.hooklineWake(k.leases, k.held, cap, cap, RESERVATION_TTL_MS);
      if (woken.length) await handOff(webhookId, woken, cap);
    },

    async resetFailures(webhookId) {
      await redis.hooklineReset(keys(webhookId).failures);
    },

    async inspect(webhookId) {
      const k = keys(webhookId);
      const [held, inFlight, failures] = await Promise.all([
        redis.zcard(k.held),
        redis.zcount(k.leases, Date.now(), '+inf'),
        redis.get(k.failures),
      ]);
      return { held, inFlight, failures: Number(failures ?? 0) };
    },
  };
}
