import { randomBytes } from 'node:crypto';
import type { RedisClient } from '@hookline/queue';

// Which worker processes are alive, so that what a dead one held — its
// endpoint slots (leases) and circuit probe claims, see endpoint-gate.ts — is
// taken back in seconds instead of when each lease expires.
//
// THE RULE (every timing that protects a live worker's holdings is here, and
// BullMQ's job lock follows the same rule in worker.ts, lockRenewMs):
//   - A worker beats every BEAT_MS from a timer: its entry in `alive` gets the
//     deadline Redis-now + LIVENESS_TTL_MS. LIVENESS_TTL_MS is six beats, so a
//     worker whose event loop stalls (a long GC pause, a saturated CPU) for up
//     to LIVENESS_TTL_MS − BEAT_MS (2.5 s) loses nothing.
//   - What a worker holds is reclaimed only once its deadline passed (its
//     liveness is gone): every worker looks every REAP_MS, so a dead worker's
//     share is back within LIVENESS_TTL_MS + REAP_MS (3.5 s) of its last beat.
//     A reaper first claims the id (moves it from `alive` to `reaping`, in one
//     script), then sweeps what it held, then buries it.
//   - A worker whose deadline passed but whose id no reaper has claimed yet
//     (it stalled, and nobody looked meanwhile) takes its liveness back at its
//     next beat, holdings and all: nothing of it was touched.
//   - An id that was claimed is never used again: a worker whose beat finds its
//     id claimed registers under a new id and treats everything held under the
//     old one as possibly lost (reclaimed by others: a lease must be renewed in
//     Redis, not trusted, before it is handed on; see Lease.expiresAt).
//   - A worker reaps only while its own beat is fresh (its last one, counted from when it was sent,
//     within REAP_FRESH_MS): a process that stalled cannot tell a dead worker
//     from one stalled with it (workers sharing its event loop, or a machine
//     starved of CPU), so after a stall it beats first and reaps from the next
//     round on. A dead worker is then still reclaimed by every live one.
//   - A reaper that just came back from a stall of its own (or just started)
//     does not judge, for one LIVENESS_TTL_MS, the ids whose deadline passed
//     before it was awake again: a worker starved of CPU with it may wake a
//     little later, and gets that long to beat. Ids that lapse while the reaper
//     is awake are judged at once; a surviving worker that was never stalled
//     reclaims within LIVENESS_TTL_MS + REAP_MS of the last beat, a worker
//     started after the death within 2 × LIVENESS_TTL_MS + REAP_MS of its start.
// A stalled worker whose holdings were reclaimed may, when it wakes, finish
// attempts whose slots others took: its webhooks see one extra attempt in
// flight for the length of that attempt. Nothing is lost or sent twice by it.
//
// Keys: `<prefix>:liveness:{<prefix>}:alive` (worker id → deadline), `…:reaping`
// (ids claimed by a reaper, not yet buried) and, per
// worker, `…:holds:<id>`, the webhooks where it may hold a lease or a probe
// (noted before it takes one). They share one hash tag, so each script here
// touches one Redis Cluster slot; the per-webhook reclaim runs on the
// webhook's own slot (endpoint-gate.ts). Times come from Redis (TIME).

export const BEAT_MS = 500;
export const LIVENESS_TTL_MS = 3_000;
export const REAP_MS = 500;
/** How recent this worker's own last beat must be for it to judge others dead (the rule's fourth point). */
export const REAP_FRESH_MS = LIVENESS_TTL_MS / 2;
/** Registries of workers that vanished without a trace still go away, eventually. */
const IDLE_TTL_MS = 86_400_000;

const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: alive. ARGV: id, ttl.
const REGISTER = `${NOW}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ${IDLE_TTL_MS})
return 1`;

// A beat (taking back a lapsed liveness no reaper claimed), and the webhooks this worker no longer holds anything of.
// KEYS: alive, holds. ARGV: id, ttl, webhook ids to forget… → 1 alive | 0 claimed by a reaper (re-register)
const BEAT = `${NOW}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ${IDLE_TTL_MS})
if #ARGV > 2 then redis.call('SREM', KEYS[2], unpack(ARGV, 3)) end
return 1`;

// Notes a webhook where this worker is about to hold something (a working worker: its liveness is
// taken back if it lapsed unclaimed); refused once its id was claimed.
// KEYS: alive, holds. ARGV: id, webhook id, ttl. → 1 | 0 claimed (re-register)
const NOTE = `${NOW}
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline then return 0 end
if tonumber(deadline) < now then redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1]) end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ${IDLE_TTL_MS})
return 1`;

// Claims the ids whose deadline passed (out of `alive`, into `reaping`) and returns every id
// claimed and not yet buried (a reaper that died mid-sweep leaves its ids to the others).
// An id whose deadline passed before the reaper itself came back from a stall (or started)
// is left one liveness more: it may have been starved with the reaper (the rule's fifth point).
// KEYS: alive, reaping. ARGV: at most this many, ms since the reaper is awake, liveness ttl. → ids to sweep
const DEAD = `${NOW}
local limit = tonumber(ARGV[1])
local awake = now - tonumber(ARGV[2])
local settled = now >= awake + tonumber(ARGV[3])
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #lapsed, 2 do
  local id = lapsed[i]
  if settled or tonumber(lapsed[i + 1]) >= awake then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', KEYS[2], now, id)
  end
end
redis.call('PEXPIRE', KEYS[2], ${IDLE_TTL_MS})
return redis.call('ZRANGE', KEYS[2], 0, limit - 1)`;

// Forgets a swept id (or, force, a worker leaving: out of `alive` too).
// KEYS: alive, reaping, holds. ARGV: id, force (1/0).
const BURY = `
if ARGV[2] == '1' then redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return 1`;

type LivenessCommands = {
  hooklineLivenessRegister(alive: string, id: string, ttl: number): Promise<number>;
  hooklineLivenessBeat(alive: string, holds: string, id: string, ttl: number, ...forget: string[]): Promise<number>;
  hooklineLivenessNote(alive: string, holds: string, id: string, webhookId: string, ttl: number): Promise<number>;
  hooklineLivenessDead(alive: string, reaping: string, limit: number, awakeMs: number, ttl: number): Promise<string[]>;
  hooklineLivenessBury(alive: string, reaping: string, holds: string, id: string, force: number): Promise<number>;
};

/** Takes back, on one webhook, what `ownerId` held there (endpoint-gate.ts). */
export type Reclaim = (ownerId: string, webhookId: string) => Promise<void>;

export type Liveness = {
  /** The id this worker holds things under now; it changes when the worker re-registers after losing its liveness. */
  id(): string;
  /**
   * Before taking a lease or a probe of the webhook: makes sure this worker's
   * registry names it (so it is reclaimed if this worker dies), and counts it
   * held here. Resolves to the owner id to take it under. Pair with `letGo`.
   */
  hold(webhookId: string): Promise<string>;
  /** One thing held at the webhook was given back (the webhook is forgotten at the next beat when nothing is left). */
  letGo(webhookId: string): void;
  /** Registers, then beats and looks for dead workers (reclaiming their holdings) until stop(). */
  start(reclaim: Reclaim): Promise<void>;
  /** Stops beating; reclaims what this worker still holds (so others can use it at once) and leaves the registry. */
  stop(): Promise<void>;
  /** One round of looking for dead workers and reclaiming their holdings (the timer runs it every REAP_MS); resolves to the ids buried. */
  reap(): Promise<string[]>;
};

export type LivenessOptions = {
  redis: RedisClient;
  prefix: string;
  /** Everything held under an id that lost its liveness may have been reclaimed by others (see the rule). */
  onLost?(oldId: string): void;
  onError?(err: Error, what: string): void;
  /** For tests: other timings than the rule's. */
  beatMs?: number;
  ttlMs?: number;
  reapMs?: number;
};

const newId = () => `${process.pid}-${randomBytes(6).toString('hex')}`;

export function createLiveness(opts: LivenessOptions): Liveness {
  const redis = opts.redis as RedisClient & LivenessCommands;
  const commands: Array<[keyof LivenessCommands, number, string]> = [
    ['hooklineLivenessRegister', 1, REGISTER],
    ['hooklineLivenessBeat', 2, BEAT],
    ['hooklineLivenessNote', 2, NOTE],
    ['hooklineLivenessDead', 2, DEAD],
    ['hooklineLivenessBury', 3, BURY],
  ];
  for (const [name, numberOfKeys, lua] of commands) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
  }
  const base = `${opts.prefix}:liveness:{${opts.prefix}}`;
  const alive = `${base}:alive`;
  const claimed = `${base}:reaping`;
  const holdsOf = (id: string) => `${base}:holds:${id}`;
  const beatMs = opts.beatMs ?? BEAT_MS;
  const ttlMs = opts.ttlMs ?? LIVENESS_TTL_MS;
  const reapMs = opts.reapMs ?? REAP_MS;
  const guard = (what: string) => (err: Error) => opts.onError?.(err, what);

  let id = newId();
  let registration: Promise<unknown> | null = null;
  /** Webhooks the registry of `id` names, and how many things this process holds at each. */
  let noted = new Set<string>();
  const held = new Map<string, number>();
  /** Notes on their way, per webhook (concurrent holds share one). */
  const noting = new Map<string, Promise<string>>();
  let reclaim: Reclaim | null = null;
  /**
   * When this worker's own last beat (or registration) that Redis accepted was SENT, by its own clock:
   * an answer that waited out a stall in the socket proves nothing about after the stall.
   */
  let lastBeatAt = 0;
  /** When this worker's current run of beats began (its start, or its first beat after a stall), by its own clock. */
  let awakeSince = 0;
  const freshMs = Math.min(REAP_FRESH_MS, ttlMs / 2);
  /** A beat sent at `sentAt` was accepted: a gap since the last one starts a new run (the rule's fifth point). */
  const beaten = (sentAt: number) => {
    if (sentAt - lastBeatAt > freshMs) awakeSince = sentAt;
    lastBeatAt = sentAt;
  };
  let beatTimer: NodeJS.Timeout | undefined;
  let reapTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  const register = () => {
    if (registration) return registration;
    const sentAt = Date.now();
    registration = redis.hooklineLivenessRegister(alive, id, ttlMs).then(
      (answer) => {
        beaten(sentAt);
        return answer;
      },
      (err: Error) => {
        registration = null;
        throw err;
      },
    );
    return registration;
  };

  /** This id lost its liveness: a new one, and the old one's holdings left to the reapers. */
  function reRegister(lost: string): void {
    if (id !== lost) return;
    id = newId();
    registration = null;
    noted = new Set();
    noting.clear();
    opts.onLost?.(lost);
  }

  async function note(webhookId: string): Promise<string> {
    for (let tries = 0; tries < 3; tries += 1) {
      const owner = id;
      await register();
      if ((await redis.hooklineLivenessNote(alive, holdsOf(owner), owner, webhookId, ttlMs)) === 1) {
        if (owner === id) noted.add(webhookId);
        return owner;
      }
      reRegister(owner);
    }
    throw new Error('this worker keeps losing its liveness in Redis');
  }

  async function beat(): Promise<void> {
    const owner = id;
    await register();
    const forget = [...noted].filter((webhookId) => !held.get(webhookId) && !noting.has(webhookId));
    for (const webhookId of forget) noted.delete(webhookId);
    const sentAt = Date.now();
    if ((await redis.hooklineLivenessBeat(alive, holdsOf(owner), owner, ttlMs, ...forget)) === 0) reRegister(owner);
    else beaten(sentAt);
  }

  async function sweep(owner: string, force: boolean): Promise<void> {
    const webhooks = await redis.smembers(holdsOf(owner));
    if (reclaim) for (const webhookId of webhooks) await reclaim(owner, webhookId);
    await redis.hooklineLivenessBury(alive, claimed, holdsOf(owner), owner, force ? 1 : 0);
  }

  let reaping: Promise<string[]> | null = null;
  function reap(): Promise<string[]> {
    reaping ??= (async () => {
      try {
        const dead = await redis.hooklineLivenessDead(alive, claimed, 20, Math.max(0, Date.now() - awakeSince), ttlMs);
        // Several workers may sweep one dead worker at once: every step is idempotent.
        for (const owner of dead) await sweep(owner, false);
        return dead;
      } finally {
        reaping = null;
      }
    })();
    return reaping;
  }

  return {
    id: () => id,
    async hold(webhookId) {
      held.set(webhookId, (held.get(webhookId) ?? 0) + 1);
      if (noted.has(webhookId)) return id;
      let pending = noting.get(webhookId);
      if (!pending) {
        pending = note(webhookId).finally(() => noting.delete(webhookId));
        noting.set(webhookId, pending);
      }
      try {
        return await pending;
      } catch (err) {
        this.letGo(webhookId);
        throw err;
      }
    },
    letGo(webhookId) {
      const left = (held.get(webhookId) ?? 0) - 1;
      if (left > 0) held.set(webhookId, left);
      else held.delete(webhookId);
    },
    async start(reclaimOne) {
      reclaim = reclaimOne;
      await register();
      if (stopped) return;
      beatTimer = setInterval(() => void beat().catch(guard('beat (worker liveness)')), beatMs);
      reapTimer = setInterval(() => {
        // After a stall of its own, this worker beats before it judges anyone (the rule).
        if (Date.now() - lastBeatAt > freshMs) return;
        void reap().catch(guard('reclaim what dead workers held'));
      }, reapMs);
      // Neither keeps a process alive on its own.
      beatTimer.unref();
      reapTimer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(beatTimer);
      clearInterval(reapTimer);
      await reaping?.catch(() => undefined);
      await sweep(id, true);
    },
    reap,
  };
}
