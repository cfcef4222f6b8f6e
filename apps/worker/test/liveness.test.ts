import { createRedis } from '@hookline/queue';
import { cleanPrefix, TEST_REDIS_URL, uniquePrefix } from '../../../tests/support/api-harness';
import { createEndpointGate, type Lease } from '../src/endpoint-gate';
import { BEAT_MS, createLiveness, LIVENESS_TTL_MS, REAP_MS, type Liveness } from '../src/liveness';

// Endpoint slots and probe claims belong to a live worker (liveness.ts): on the
// machine's real Redis, with the gate's real scripts, what a worker that
// stopped beating held is taken back by another worker and the held line it
// blocked is woken; a worker that keeps beating loses nothing; one that missed
// its deadline comes back under a new id and distrusts its leases.

const redis = createRedis(TEST_REDIS_URL, 'worker');
const prefix = uniquePrefix('liveness');
const slot = { ratePerSecond: null, circuitThreshold: 5 };
const stops: Array<() => Promise<void>> = [];

afterAll(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop().catch(() => undefined)));
  await cleanPrefix(redis, prefix);
  redis.disconnect();
});

/** One worker's gate and liveness; `beatMs` / `ttlMs` compressed or stretched to play a dead or stalled worker. */
async function worker(timing: { beatMs?: number; ttlMs?: number } = {}) {
  const promoted: string[] = [];
  const probesLost: Array<[string, number]> = [];
  let lost = 0;
  // Reaping is driven by the test (reap()), not by the timer.
  const liveness: Liveness = createLiveness({ redis, prefix, reapMs: 3_600_000, ...timing, onLost: () => { lost += 1; gate.distrustLeases(); } });
  const gate = createEndpointGate({
    redis, prefix, leaseTtlMs: 60_000, liveness,
    promote: async (jobId) => (promoted.push(jobId), true),
    onProbeLost: async (webhookId, deadline) => {
      probesLost.push([webhookId, deadline]);
    },
  });
  await liveness.start((owner, webhookId) => gate.reclaim(owner, webhookId));
  stops.push(() => liveness.stop());
  return { liveness, gate, promoted, probesLost, lost: () => lost };
}

/** A worker that stops beating at once: its deadline passes after `ttlMs`, as a SIGKILLed worker's does. */
const dying = (ttlMs = 200) => worker({ beatMs: 3_600_000, ttlMs });

async function take(gate: Awaited<ReturnType<typeof worker>>['gate'], webhookId: string, jobId: string, cap: number): Promise<Lease> {
  const got = await gate.acquire({ webhookId, jobId, cap, ...slot });
  if (!got.ok) throw new Error(`acquire ${jobId}: ${got.reason}`);
  return got.lease;
}

const waitUntil = async (check: () => Promise<boolean> | boolean, what: string, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

it('keeps the rule\'s timings: six beats per liveness, reclaimed within 5 s of the last beat', () => {
  expect(LIVENESS_TTL_MS).toBeGreaterThanOrEqual(5 * BEAT_MS);
  expect(LIVENESS_TTL_MS + REAP_MS).toBeLessThan(5_000);
});

it('takes back a dead worker\'s leases at a webhook at its cap, and wakes the deliveries held for them', async () => {
  const dead = await dying();
  const survivor = await worker();
  const webhookId = 'wh_dead1';
  await take(dead.gate, webhookId, 'running-1', 2);
  await take(dead.gate, webhookId, 'running-2', 2);
  expect(await survivor.gate.acquire({ webhookId, jobId: 'next', cap: 2, ...slot })).toMatchObject({ ok: false, reason: 'in_flight' });
  await survivor.gate.park({ webhookId, jobId: 'held-1', since: 1, reason: 'in_flight', cap: 2 });
  await survivor.gate.park({ webhookId, jobId: 'held-2', since: 2, reason: 'in_flight', cap: 2 });
  expect(await survivor.gate.inspect(webhookId)).toMatchObject({ inFlight: 2, held: 2 });

  // Its liveness lapses; the next reaping round takes its share back.
  await waitUntil(async () => (await survivor.liveness.reap()).includes(dead.liveness.id()), 'the dead worker to be reaped');
  expect(await survivor.gate.inspect(webhookId)).toMatchObject({ inFlight: 0, held: 0 });
  expect(survivor.promoted.sort()).toEqual(['held-1', 'held-2']);
  // Woken jobs are served first; both slots are free for them.
  await take(survivor.gate, webhookId, 'held-1', 2);
  await take(survivor.gate, webhookId, 'held-2', 2);
  // Buried: a second round finds nothing more of it.
  expect(await survivor.liveness.reap()).toEqual([]);
});

it('leaves a live worker\'s leases alone, however short its liveness, while it beats', async () => {
  const live = await worker({ beatMs: 50, ttlMs: 300 });
  const other = await worker();
  const lease = await take(live.gate, 'wh_live1', 'running', 1);
  for (let round = 0; round < 10; round += 1) {
    await new Promise((r) => setTimeout(r, 100));
    expect(await other.liveness.reap()).toEqual([]);
  }
  expect((await other.gate.inspect('wh_live1')).inFlight).toBe(1);
  expect(live.lost()).toBe(0);
  expect(lease.expiresAt).toBeGreaterThan(Date.now());
});

it('a worker that missed its deadline takes it back if no reaper claimed it, and otherwise comes back under a new id and distrusts its leases', async () => {
  // It beats every 400 ms but its liveness lasts 200 ms: between beats it is expired, as during a long stall.
  const stalled = await worker({ beatMs: 400, ttlMs: 200 });
  const before = stalled.liveness.id();
  const lease = await take(stalled.gate, 'wh_stall1', 'running', 1);
  expect(lease.expiresAt).toBeGreaterThan(Date.now());
  // Nobody looked while it was expired: each beat takes its liveness back, holdings and all.
  await new Promise((r) => setTimeout(r, 1_000));
  expect(stalled.lost()).toBe(0);
  expect(stalled.liveness.id()).toBe(before);
  expect(lease.expiresAt).toBeGreaterThan(Date.now());
  // A reaper claims it while it is expired: the lease is taken back, and the worker's next beat finds its id gone.
  const other = await worker();
  await waitUntil(async () => (await other.liveness.reap()).includes(before), 'the expired id to be reaped');
  expect((await other.gate.inspect('wh_stall1')).inFlight).toBe(0);
  await waitUntil(() => stalled.lost() > 0, 'the stalled worker to notice');
  expect(stalled.liveness.id()).not.toBe(before);
  // Not handed on without a renewal that Redis confirms (deliver/slots.ts, freeSlot).
  expect(lease.expiresAt).toBe(0);
  // Its release later is harmless.
  await stalled.gate.release({ webhookId: 'wh_stall1', lease, circuitFailure: false, wake: true, cap: 1, threshold: 5 });
  expect((await other.gate.inspect('wh_stall1')).inFlight).toBe(0);
});

it('gives a dead worker\'s probe claim back (onProbeLost, with the claim\'s deadline), and not an ended one', async () => {
  const dead = await dying();
  const survivor = await worker();
  const deadline = Date.now() + 15_000;
  await dead.gate.probeClaimed({ webhookId: 'wh_probe1', deadline });
  await dead.gate.probeClaimed({ webhookId: 'wh_probe2', deadline });
  await dead.gate.probeEnded('wh_probe2');
  await waitUntil(async () => (await survivor.liveness.reap()).includes(dead.liveness.id()), 'the dead worker to be reaped');
  expect(survivor.probesLost).toEqual([['wh_probe1', deadline]]);
});

it('stop() gives back what the worker still holds at once and leaves the registry', async () => {
  const leaving = await worker();
  const other = await worker();
  await take(leaving.gate, 'wh_leave1', 'running', 1);
  await other.gate.park({ webhookId: 'wh_leave1', jobId: 'held', since: 1, reason: 'in_flight', cap: 1 });
  await leaving.liveness.stop();
  expect(await other.gate.inspect('wh_leave1')).toMatchObject({ inFlight: 0, held: 0 });
  expect(leaving.promoted).toEqual(['held']);
  expect(await redis.zscore(`${prefix}:liveness:{${prefix}}:alive`, leaving.liveness.id())).toBeNull();
});

it('forgets a webhook in its registry once nothing is held there, at the next beat', async () => {
  const w = await worker({ beatMs: 50 });
  const lease = await take(w.gate, 'wh_forget1', 'running', 1);
  const holds = `${prefix}:liveness:{${prefix}}:holds:${w.liveness.id()}`;
  expect(await redis.smembers(holds)).toEqual(['wh_forget1']);
  await w.gate.release({ webhookId: 'wh_forget1', lease, circuitFailure: false, wake: true, cap: 1, threshold: 5 });
  await waitUntil(async () => (await redis.scard(holds)) === 0, 'the webhook to be forgotten');
});

it('workers that stalled together (one event loop) do not take each other\'s slots when they wake: a reaper beats before it judges', async () => {
  const reclaimed: string[] = [];
  // A liveness of 2 s: long enough that, once awake, each beats well within it even on a loaded machine.
  const timing = { beatMs: 50, ttlMs: 2_000, reapMs: 50 };
  const a = createLiveness({ redis, prefix, ...timing });
  const b = createLiveness({ redis, prefix, ...timing });
  await a.start(async (owner) => void reclaimed.push(owner));
  await b.start(async (owner) => void reclaimed.push(owner));
  stops.push(() => a.stop(), () => b.stop());
  await a.hold('wh_stall_a');
  await b.hold('wh_stall_b');
  await new Promise((r) => setTimeout(r, 200));
  const ids = [a.id(), b.id()];

  // The shared event loop stalls for twice the liveness: both deadlines pass while neither can beat.
  const until = Date.now() + 2 * timing.ttlMs;
  while (Date.now() < until) { /* a long GC pause, a starved CPU */ }
  await new Promise((r) => setTimeout(r, 600));

  // Neither swept the other's holdings: each took its own lapsed liveness back at its first beat.
  expect(reclaimed.filter((owner) => ids.includes(owner))).toEqual([]);
  expect([a.id(), b.id()]).toEqual(ids);
  // A worker that really stops beating is still reclaimed by the live one.
  const c = createLiveness({ redis, prefix, beatMs: 3_600_000, ttlMs: 200, reapMs: 3_600_000 });
  await c.start(async () => undefined);
  await c.hold('wh_stall_c');
  const dead = c.id();
  await waitUntil(() => reclaimed.includes(dead), 'the stopped worker reclaimed by a live one');
  // Their reapers run every 50 ms: stopped here, so they judge nobody in the tests that follow.
  await Promise.all([a.stop(), b.stop(), c.stop()]);
});

it('concurrent acquires in one worker each take a slot of their own: the cap holds (no two attempts share one lease id)', async () => {
  const w = await worker();
  // Started together, mostly in one millisecond: each waits for the liveness note before it takes its slot.
  const tries = await Promise.all(Array.from({ length: 12 }, (_, i) => w.gate.acquire({ webhookId: 'wh_burst1', jobId: `burst-${i}`, cap: 6, ...slot })));
  const leases = tries.flatMap((got) => (got.ok ? [got.lease.id] : []));
  expect(new Set(leases).size).toBe(leases.length);
  expect(leases).toHaveLength(6);
  expect((await w.gate.inspect('wh_burst1')).inFlight).toBe(6);
});

it('a worker that just started (or woke) judges a liveness that lapsed before it was awake only one liveness later', async () => {
  const dead = await dying(100);
  await waitUntil(async () => Number(await redis.zscore(`${prefix}:liveness:{${prefix}}:alive`, dead.liveness.id())) < Number((await redis.time())[0]) * 1000, 'the deadline to pass');
  const late = await worker({ ttlMs: 1_500 });
  // Lapsed before `late` registered: it may have been starved with it, so not yet.
  expect(await late.liveness.reap()).not.toContain(dead.liveness.id());
  // One liveness (1.5 s) after its start, it judges.
  await waitUntil(async () => (await late.liveness.reap()).includes(dead.liveness.id()), 'the lapsed worker reaped one liveness later', 5_000);
});
