import type { HoldReason } from '@hookline/domain';
import type { RedisClient } from '@hookline/queue';
import type { Liveness } from './liveness';

// Endpoint isolation, across every worker process: how many deliveries to one
// webhook are in flight (a lease each, expiring, so a worker that dies cannot
// leak its share), when the next attempt may start (its rate limit), how many
// attempts in a row failed (the circuit breaker's count), which deliveries are
// held back waiting for a slot, and which of those were woken and are on their way.
//
// A delivery over its webhook's cap or rate gives its worker slot back at once:
// the BullMQ adapter parks its job in `delayed` (no attempt, nothing written to
// PostgreSQL) and records it in the webhook's `held` line here. While the line
// is not empty, every attempt that starts or ends wakes the next held
// deliveries (their jobs are promoted), so the line moves at the endpoint's
// pace without polling. The parked job's own delay is only a fallback for a
// wake-up that never comes.
//
// A lease belongs to a live worker: its id starts with its owner's liveness id
// (`<owner>|…`), and when the owner stops beating, the others take its leases
// and its probe claim back and wake the lines they blocked (RECLAIM; the rule
// and its timings are in liveness.ts). The lease's own expiry stays as the
// last resort, for a lease no registry names.
//
// Keys are per webhook and share one hash tag ({wh_…}), so each script touches
// one Redis Cluster slot. Times come from Redis (TIME), one clock for every worker.

const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
/** Idle keys of a webhook go away by themselves. */
const IDLE_TTL_MS = 86_400_000;

// The line moves ahead of its slots: up to AHEAD × cap held deliveries are
// woken (promoted, "on their way") at a time, so that when a slot frees a woken
// job is already arriving to take it. A slot is only ever taken by a job that
// is here and about to send: the cap counts real attempts, nothing reserved.
// A job that arrives on its way and finds every slot busy goes back to the
// front of the line (its place is its age); a fresh job goes to the back while
// the line is moving, so the line is served first.
const WAKE_FN = `
local function wake(held, woken, budget, ttl, now)
  redis.call('ZREMRANGEBYSCORE', woken, '-inf', now)
  local n = budget - redis.call('ZCARD', woken)
  local out = {}
  if n <= 0 then return out end
  local popped = redis.call('ZPOPMIN', held, n)
  for i = 1, #popped, 2 do
    redis.call('ZADD', woken, now + ttl, popped[i])
    out[#out + 1] = popped[i]
  end
  if #out > 0 then redis.call('PEXPIRE', woken, ttl + ${IDLE_TTL_MS}) end
  return out
end`;

// The failure count is checked here too: the instant the threshold is crossed
// no further attempt starts, even before the circuit's state reaches
// PostgreSQL (the probe and explicit user actions pass: threshold 0).
// KEYS: leases, held, starts, failures, woken.
// ARGV: leaseId, jobId, cap, ratePerSecond (0 = none), leaseTtlMs, threshold (0 = ignore), wake budget, wake ttl.
// → {1, woken…} acquired | {0, reason, rank, waitMs}
const ACQUIRE = `${NOW}${WAKE_FN}
local leases, held, starts, woken = KEYS[1], KEYS[2], KEYS[3], KEYS[5]
local leaseId, jobId = ARGV[1], ARGV[2]
local cap, rate, ttl, threshold = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', woken, '-inf', now)
-- Woken, or exempt from the circuit (the probe, a person's explicit action): served before the line.
local onItsWay = redis.call('ZREM', woken, jobId) == 1 or threshold == 0
if threshold > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= threshold then
  return {0, 'circuit', redis.call('ZCARD', held), 0}
end
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
if redis.call('ZCARD', leases) >= cap then
  return {0, 'in_flight', redis.call('ZCARD', held), 0}
end
if not onItsWay and redis.call('ZCARD', held) > 0 and redis.call('ZCARD', woken) > 0 then
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
local out = {1}
if redis.call('ZCARD', held) > 0 then
  for _, id in ipairs(wake(held, woken, tonumber(ARGV[7]), tonumber(ARGV[8]), now)) do out[#out + 1] = id end
end
return out`;

// Ends an attempt: frees its slot, counts consecutive circuit failures (any
// other answer resets the count) and keeps the line moving when asked —
// unless this failure is the one that opens the circuit, which holds the line anyway.
// KEYS: leases, held, failures, woken. ARGV: leaseId, failed (1 counts, 0 resets, 2 leaves the count: the egress proxy failed), wake (0/1), threshold, wake budget, wake ttl.
// → {consecutive failures, woken…}
const RELEASE = `${NOW}${WAKE_FN}
redis.call('ZREM', KEYS[1], ARGV[1])
local failures = 0
if ARGV[2] == '1' then
  failures = redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ${IDLE_TTL_MS})
elseif ARGV[2] == '2' then
  failures = tonumber(redis.call('GET', KEYS[3]) or '0')
else
  redis.call('DEL', KEYS[3])
end
local out = {failures}
if ARGV[3] == '1' and failures < tonumber(ARGV[4]) then
  for _, id in ipairs(wake(KEYS[2], KEYS[4], tonumber(ARGV[5]), tonumber(ARGV[6]), now)) do out[#out + 1] = id end
end
return out`;

// Puts a parked job in its webhook's line (by age, so a job that was on its way
// keeps its place at the front), and — for an in-flight hold — closes the race
// with a slot that freed after the job was refused: if one is free now, the
// line moves at once.
// KEYS: leases, held, woken. ARGV: jobId, score, wakeIfFree (1/0), cap, wake budget, wake ttl. → woken job ids
const PARK = `${NOW}${WAKE_FN}
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ${IDLE_TTL_MS})
-- Parked again (held by its circuit, say): no longer on its way.
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[3] ~= '1' then return {} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return {} end
return wake(KEYS[2], KEYS[3], tonumber(ARGV[5]), tonumber(ARGV[6]), now)`;

// Sets the line moving (a circuit closed). KEYS: held, woken. ARGV: wake budget, wake ttl. → woken job ids
const WAKE = `${NOW}${WAKE_FN}
return wake(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), now)`;

// A woken job that could not be promoted (it finished, or its own timer brought
// it back already) is no longer on its way: wake the next instead.
// KEYS: held, woken. ARGV: jobId, wake budget, wake ttl.
const FORGET = `${NOW}${WAKE_FN}
redis.call('ZREM', KEYS[2], ARGV[1])
return wake(KEYS[1], KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3]), now)`;

// Hands a slot on in place: the attempt that held it ended without a circuit
// failure, and a delivery of the same webhook waits for a slot in this very
// process. The lease is kept (its expiry moved on) and the failure count reset,
// one script instead of a release and an acquire. Refused — and the slot freed
// the normal way — while the webhook's line of parked deliveries is not empty,
// so those keep their turn, or when the lease expired meanwhile.
// KEYS: leases, held, failures. ARGV: leaseId, leaseTtlMs. → 1 kept | 0 refused
const RENEW = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[2]) > 0 or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('DEL', KEYS[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1`;

// Forgets a webhook's failure count (its circuit closed by other means).
const RESET = `redis.call('DEL', KEYS[1]) return 1`;

// Takes back what a worker that stopped beating held at the webhook: its
// leases and its probe claim. Each slot freed wakes up to AHEAD held deliveries
// (the cap is not known here; a woken job that finds no slot goes back to the
// front of the line).
// KEYS: leases, held, woken, probe. ARGV: owner prefix ('<owner>|'), wake ttl, AHEAD.
// → {deadline of its probe claim, or 0; woken…}
const RECLAIM = `${NOW}${WAKE_FN}
local mine = ARGV[1]
local removed = 0
for _, lease in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(lease, 1, #mine) == mine then
    redis.call('ZREM', KEYS[1], lease)
    removed = removed + 1
  end
end
local probe = 0
local claim = redis.call('GET', KEYS[4])
if claim and string.sub(claim, 1, #mine) == mine then
  probe = tonumber(string.sub(claim, #mine + 1)) or 0
  redis.call('DEL', KEYS[4])
end
local out = {probe}
if removed > 0 and redis.call('ZCARD', KEYS[2]) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local budget = redis.call('ZCARD', KEYS[3]) + removed * tonumber(ARGV[3])
  for _, id in ipairs(wake(KEYS[2], KEYS[3], budget, tonumber(ARGV[2]), now)) do out[#out + 1] = id end
end
return out`;

// A probe claim, owned (KEYS: probe. ARGV: '<owner>|<deadline>', ttl), and given back by its owner (ARGV: '<owner>|').
const CLAIM_PROBE = `redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2])) return 1`;
const END_PROBE = `local claim = redis.call('GET', KEYS[1])
if claim and string.sub(claim, 1, #ARGV[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0`;

type GateCommands = {
  hooklineAcquire(
    leases: string, held: string, starts: string, failures: string, woken: string,
    leaseId: string, jobId: string, cap: number, rate: number, ttl: number, threshold: number, budget: number, wakeTtl: number,
  ): Promise<[number, ...Array<string | number>]>;
  hooklineRelease(leases: string, held: string, failures: string, woken: string, leaseId: string, failed: number, wake: number, threshold: number, budget: number, wakeTtl: number): Promise<[number, ...string[]]>;
  hooklinePark(leases: string, held: string, woken: string, jobId: string, score: number, wakeIfFree: number, cap: number, budget: number, wakeTtl: number): Promise<string[]>;
  hooklineWake(held: string, woken: string, budget: number, wakeTtl: number): Promise<string[]>;
  hooklineForget(held: string, woken: string, jobId: string, budget: number, wakeTtl: number): Promise<string[]>;
  hooklineReset(failures: string): Promise<number>;
  hooklineRenew(leases: string, held: string, failures: string, leaseId: string, ttl: number): Promise<number>;
  hooklineReclaim(leases: string, held: string, woken: string, probe: string, ownerPrefix: string, wakeTtl: number, ahead: number): Promise<[number, ...string[]]>;
  hooklineClaimProbe(probe: string, claim: string, ttl: number): Promise<number>;
  hooklineEndProbe(probe: string, ownerPrefix: string): Promise<number>;
};

/**
 * A slot taken: its id in the webhook's leases, and when it expires there at
 * the earliest (this process's clock; moved on by a renewal; 0 once this
 * worker lost its liveness, as the lease may have been reclaimed). `renewal`
 * is a renewal sent and not answered yet (see deliver/slots.ts, freeSlot).
 */
export type Lease = { id: string; expiresAt: number; renewal?: Promise<boolean> };
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
  /** `circuitFailure` 'none': this attempt tells nothing about the endpoint (the proxy failed); the count stays as it is. */
  release(input: { webhookId: string; lease: Lease; circuitFailure: boolean | 'none'; wake: boolean; cap: number; threshold: number }): Promise<number>;
  /** Records a parked job in its webhook's line; wakes the head at once when a slot is free (in-flight holds). */
  park(input: { webhookId: string; jobId: string; since: number; reason: HoldReason; cap: number }): Promise<void>;
  /** Sets the webhook's line moving again (a circuit closed). */
  wakeAll(input: { webhookId: string; cap: number }): Promise<void>;
  /**
   * Keeps a slot for the next attempt to the same webhook (the attempt that
   * held it ended without a circuit failure): true when kept (its expiresAt
   * moved on), false when it must be released the normal way (a line is
   * waiting, or the lease expired).
   */
  renew(input: { webhookId: string; lease: Lease }): Promise<boolean>;
  /** Forgets the webhook's consecutive failure count. */
  resetFailures(webhookId: string): Promise<void>;
  /**
   * This worker won the webhook's probe (claimed in PostgreSQL until
   * `deadline`): the claim is recorded as this worker's, so it is given back
   * if this worker dies (see onProbeLost).
   */
  probeClaimed(input: { webhookId: string; deadline: number }): Promise<void>;
  /** The probe this worker claimed ended (reported, or held back). */
  probeEnded(webhookId: string): Promise<void>;
  /**
   * Takes back what the worker `ownerId` held at the webhook (it stopped
   * beating): its leases, waking held deliveries for the slots freed, and its
   * probe claim (through onProbeLost).
   */
  reclaim(ownerId: string, webhookId: string): Promise<void>;
  /** The length of a webhook's line and its slots in use (for tests and operators). */
  inspect(webhookId: string): Promise<{ held: number; inFlight: number; failures: number }>;
};

export type EndpointGateOptions = {
  /** A connection of its own is best: scripts are defined on it. */
  redis: RedisClient;
  /** The queue prefix: an installation's keys stay under it. */
  prefix: string;
  /** How long an unreleased slot counts (the attempt's timeout plus a margin for a worker that died). */
  leaseTtlMs: number;
  /** Moves a parked job of this webhook (in its queue shard) to the waiting line; false when it is not parked (finished, or running already). */
  promote(jobId: string, webhookId: string): Promise<boolean>;
  /** Who this worker is (leases and probe claims belong to a live worker); none: leases only expire. */
  liveness?: Liveness;
  /** A dead worker's probe claim (made in PostgreSQL until `deadline`) was taken back: let another probe go. */
  onProbeLost?(webhookId: string, deadline: number): Promise<void>;
  onError?(err: Error, what: string): void;
};

/** How many held deliveries may be on their way at once, per slot. */
const AHEAD = 2;
/**
 * How long a woken job counts as on its way. A woken job is promoted ahead of
 * every other, so it arrives within moments; one that never arrives at the gate
 * (it was cancelled, or found its work done) stops counting after this.
 */
const WAKE_TTL_MS = 3_000;
/** At most this many stale entries are skipped when handing one slot on. */
const MAX_HANDOFFS = 5;

let leaseCounter = 0;

export type EndpointGateHandle = EndpointGate & {
  /** This worker lost its liveness: its leases may have been reclaimed, so none is handed on without a renewal. */
  distrustLeases(): void;
};

export function createEndpointGate(opts: EndpointGateOptions): EndpointGateHandle {
  const redis = opts.redis as RedisClient & GateCommands;
  const commands: Array<[keyof GateCommands, number, string]> = [
    ['hooklineAcquire', 5, ACQUIRE],
    ['hooklineRelease', 4, RELEASE],
    ['hooklinePark', 3, PARK],
    ['hooklineWake', 2, WAKE],
    ['hooklineForget', 2, FORGET],
    ['hooklineReset', 1, RESET],
    ['hooklineRenew', 3, RENEW],
    ['hooklineReclaim', 4, RECLAIM],
    ['hooklineClaimProbe', 1, CLAIM_PROBE],
    ['hooklineEndProbe', 1, END_PROBE],
  ];
  for (const [name, numberOfKeys, lua] of commands) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
  }
  const keys = (webhookId: string) => {
    const base = `${opts.prefix}:endpoint:{${webhookId}}`;
    return {
      leases: `${base}:leases`, held: `${base}:held`, starts: `${base}:starts`, failures: `${base}:failures`, woken: `${base}:woken`, probe: `${base}:probe`,
    };
  };
  const leaseTtl = Math.max(opts.leaseTtlMs, 1_000);
  const { liveness } = opts;
  /** Leases this process holds now: the ones to distrust if its liveness is lost. */
  const mine = new Set<Lease>();
  /** Probes claimed here: webhook → owner id it was claimed under. */
  const probes = new Map<string, string>();
  const LOCAL = 'local';

  /** Promotes woken jobs; one that cannot be promoted is forgotten and the next in line woken instead. */
  async function handOff(webhookId: string, woken: string[], cap: number): Promise<void> {
    const k = keys(webhookId);
    let next = woken;
    for (let hops = 0; next.length && hops < MAX_HANDOFFS; hops += 1) {
      const promoted = await Promise.all(next.map((jobId) => opts.promote(jobId, webhookId)));
      const stale = next.filter((_, i) => !promoted[i]);
      next = [];
      for (const jobId of stale) next.push(...(await redis.hooklineForget(k.held, k.woken, jobId, AHEAD * cap, WAKE_TTL_MS)));
    }
  }

  const guard = (what: string) => (err: Error) => opts.onError?.(err, what);

  return {
    async acquire({ webhookId, jobId, cap, ratePerSecond, circuitThreshold }) {
      const k = keys(webhookId);
      // This acquire's own number, taken before any await: read after one, it could be another
      // acquire's, and two attempts would share one lease (one slot counted for both).
      const serial = (leaseCounter = (leaseCounter + 1) % 1e9);
      // Noted in this worker's registry before the lease exists, so no lease of a dead worker goes unfound.
      const owner = liveness ? await liveness.hold(webhookId) : LOCAL;
      const sentAt = Date.now();
      const leaseId = `${owner}|${sentAt.toString(36)}:${serial}`;
      let answer: Awaited<ReturnType<GateCommands['hooklineAcquire']>>;
      try {
        answer = await redis.hooklineAcquire(
          k.leases, k.held, k.starts, k.failures, k.woken, leaseId, jobId, cap, ratePerSecond ?? 0, leaseTtl, circuitThreshold, AHEAD * cap, WAKE_TTL_MS,
        );
      } catch (err) {
        liveness?.letGo(webhookId);
        throw err;
      }
      const [ok, ...rest] = answer;
      if (ok === 1) {
        const woken = rest.map(String);
        if (woken.length) handOff(webhookId, woken, cap).catch(guard('wake held deliveries'));
        // Its owner lost its liveness meanwhile: the lease may be reclaimed at any moment.
        const lease = { id: leaseId, expiresAt: liveness && liveness.id() !== owner ? 0 : sentAt + leaseTtl };
        mine.add(lease);
        return { ok: true, lease };
      }
      liveness?.letGo(webhookId);
      const [reason, rank, waitMs] = rest;
      const why: HoldReason = reason === 'rate' || reason === 'circuit' ? reason : 'in_flight';
      return { ok: false, reason: why, rank: Number(rank ?? 0), waitMs: Number(waitMs ?? 0) };
    },

    async release({ webhookId, lease, circuitFailure, wake, cap, threshold }) {
      const k = keys(webhookId);
      // Given back even when Redis does not answer: the lease then expires by itself.
      if (mine.delete(lease)) liveness?.letGo(webhookId);
      const [failures, ...woken] = await redis.hooklineRelease(k.leases, k.held, k.failures, k.woken, lease.id, circuitFailure === 'none' ? 2 : circuitFailure ? 1 : 0, wake ? 1 : 0, threshold, AHEAD * cap, WAKE_TTL_MS);
      // The woken job runs on its own; this attempt need not wait for it.
      if (woken.length) handOff(webhookId, woken, cap).catch(guard('wake a held delivery'));
      return Number(failures);
    },

    async park({ webhookId, jobId, since, reason, cap }) {
      const k = keys(webhookId);
      const woken = await redis.hooklinePark(k.leases, k.held, k.woken, jobId, since, reason === 'in_flight' ? 1 : 0, cap, AHEAD * cap, WAKE_TTL_MS);
      if (woken.length) await handOff(webhookId, woken, cap);
    },

    async wakeAll({ webhookId, cap }) {
      const k = keys(webhookId);
      const woken = await redis.hooklineWake(k.held, k.woken, AHEAD * cap, WAKE_TTL_MS);
      if (woken.length) await handOff(webhookId, woken, cap);
    },

    async renew({ webhookId, lease }) {
      const k = keys(webhookId);
      const sentAt = Date.now();
      const kept = (await redis.hooklineRenew(k.leases, k.held, k.failures, lease.id, leaseTtl)) === 1;
      if (kept) lease.expiresAt = sentAt + leaseTtl;
      return kept;
    },

    async resetFailures(webhookId) {
      await redis.hooklineReset(keys(webhookId).failures);
    },

    async probeClaimed({ webhookId, deadline }) {
      if (!liveness || probes.has(webhookId)) return;
      const owner = await liveness.hold(webhookId);
      probes.set(webhookId, owner);
      // Kept a minute past the deadline: after it, the claim is void in PostgreSQL anyway.
      await redis.hooklineClaimProbe(keys(webhookId).probe, `${owner}|${deadline}`, Math.max(deadline - Date.now(), 0) + 60_000);
    },

    async probeEnded(webhookId) {
      const owner = probes.get(webhookId);
      if (owner === undefined) return;
      probes.delete(webhookId);
      liveness?.letGo(webhookId);
      await redis.hooklineEndProbe(keys(webhookId).probe, `${owner}|`);
    },

    async reclaim(ownerId, webhookId) {
      const k = keys(webhookId);
      const [probe, ...woken] = await redis.hooklineReclaim(k.leases, k.held, k.woken, k.probe, `${ownerId}|`, WAKE_TTL_MS, AHEAD);
      if (woken.length) await handOff(webhookId, woken, Math.max(1, Math.ceil(woken.length / AHEAD)));
      if (Number(probe) > 0) await opts.onProbeLost?.(webhookId, Number(probe));
    },

    distrustLeases() {
      for (const lease of mine) lease.expiresAt = 0;
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
