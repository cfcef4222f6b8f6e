import { spawnWorkerProcess, startWorkerHarness, workerProcessEnv, type WorkerProcess } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';
import { allDeliveriesFinal, eventually, sleep, startStack, type Stack } from './stack';

// Endpoint isolation end to end: the real API, real workers (two processes
// where the rule is cluster-wide) and real receivers on 127.0.0.1 that count
// the requests each endpoint has open at once. See docs/api.md, "Isolation".

describe('endpoint isolation', () => {
  let stack: Stack;
  const processes: WorkerProcess[] = [];

  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
    await stack?.close();
  });
  beforeEach(() => stack.freshAccount());

  async function workerProcesses(count: number, extra: Record<string, string> = {}) {
    const env = workerProcessEnv(stack.api, { WORKER_CONCURRENCY: '50', DELIVERY_TIMEOUT: '5s', RETRY_JITTER: '0%', ...extra });
    const started = await Promise.all(Array.from({ length: count }, () => spawnWorkerProcess(env)));
    processes.push(...started);
    return {
      async stop() {
        await Promise.all(started.map((p) => p.kill('SIGTERM')));
        for (const p of started) processes.splice(processes.indexOf(p), 1);
      },
    };
  }

  const ids = (received: Array<{ headers: Record<string, unknown> }>) => received.map((cb) => String(cb.headers['x-perfectparser-delivery']));

  it('two worker processes never have more than max_in_flight requests open to one endpoint, and every delivery arrives once', async () => {
    const slow = await stack.receiver({ status: 200, delayMs: 250 });
    const wh = await stack.createWebhook({ url: slow.url, max_in_flight: 3 });
    const workers = await workerProcesses(2);
    try {
      for (let i = 0; i < 30; i += 1) await stack.publish('quota.warning', { usage: i, limit: 100 }, 1);
      await slow.waitFor(30, 30_000);
      // Every delivery recorded: nothing more will be sent, so the counts below are final.
      await allDeliveriesFinal(stack);
      expect(slow.maxOpen()).toBeLessThanOrEqual(3);
      // The cap was reached, so it was the cap that held the rest back.
      expect(slow.maxOpen()).toBe(3);
      expect(new Set(ids(slow.received)).size).toBe(30);
      expect(slow.received).toHaveLength(30);
      // Held deliveries never counted an attempt.
      for (const d of await stack.deliveries(wh.id)) expect(d).toMatchObject({ status: 'succeeded', attempt_count: 1 });
    } finally {
      await workers.stop();
    }
  });

  it('a rate-limited endpoint never sees more than its rate in any one-second window', async () => {
    const r = await stack.receiver({ status: 200 });
    await stack.createWebhook({ url: r.url, rate_limit_per_second: 4 });
    const workers = await workerProcesses(2);
    try {
      for (let i = 0; i < 14; i += 1) await stack.publish('quota.warning', { usage: i, limit: 100 }, 1);
      const got = await r.waitFor(14, 20_000);
      const times = got.map((cb) => cb.receivedAt).sort((a, b) => a - b);
      let worst = 0;
      for (let i = 0; i < times.length; i += 1) {
        let j = i;
        while (j < times.length && times[j] < times[i] + 1_000) j += 1;
        worst = Math.max(worst, j - i);
      }
      // One of slack: a request that left in one window can arrive in the next.
      expect(worst).toBeLessThanOrEqual(5);
      expect(times[times.length - 1] - times[0]).toBeGreaterThanOrEqual(2_000);
      expect(new Set(ids(got)).size).toBe(14);
    } finally {
      await workers.stop();
    }
  });

  it('a fast endpoint at its cap: the deliveries over it wait in the worker for a slot (none parked); a slow one\'s are parked', async () => {
    const heldInFlight = async (worker: { metrics: { registry: { metrics(): Promise<string> } } }) =>
      Number(/hookline_deliveries_held_total\{reason="in_flight"[^}]*\} (\d+)/.exec(await worker.metrics.registry.metrics())?.[1] ?? 0);
    // 30 slots: 20 may wait in the worker, the rest keep fetching.
    const worker = await startWorkerHarness({
      databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, config: { WORKER_CONCURRENCY: 30 },
    });
    try {
      const fast = await stack.receiver({ status: 200, delayMs: 30 });
      const fastWh = await stack.createWebhook({ url: fast.url, max_in_flight: 2, events: ['quota.warning'] });
      // One callback first: the worker waits only for a webhook it has seen answer fast.
      await stack.publish('quota.warning', { usage: 0, limit: 100 }, 1);
      await fast.waitFor(1, 10_000);
      await Promise.all(Array.from({ length: 20 }, (_, i) => stack.publish('quota.warning', { usage: i + 1, limit: 100 }, 1)));
      await fast.waitFor(21, 15_000);
      await allDeliveriesFinal(stack);
      expect(fast.maxOpen()).toBe(2);
      expect(new Set(ids(fast.received)).size).toBe(21);
      expect(await heldInFlight(worker)).toBe(0);
      for (const d of await stack.deliveries(fastWh.id)) expect(d).toMatchObject({ status: 'succeeded', attempt_count: 1 });

      // An endpoint that takes 400 ms is not worth a worker slot's wait: its deliveries over the cap are parked.
      const slow = await stack.receiver({ status: 200, delayMs: 400 });
      await stack.createWebhook({ url: slow.url, max_in_flight: 1, events: ['quota.exceeded'] });
      await Promise.all(Array.from({ length: 8 }, (_, i) => stack.publish('quota.exceeded', { usage: 101 + i, limit: 100 }, 1)));
      await slow.waitFor(8, 20_000);
      expect(slow.maxOpen()).toBe(1);
      expect(await heldInFlight(worker)).toBeGreaterThan(0);
    } finally {
      await worker.close();
    }
  });

  it('the circuit opens after the threshold, holds the rest without attempts, probes once, closes, and the held deliveries arrive exactly once', async () => {
    const worker = await startWorkerHarness({
      databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey,
      config: { CIRCUIT_BREAKER_THRESHOLD: 3, CIRCUIT_BREAKER_COOLDOWN: 3_000 },
    });
    try {
      let healthy = false;
      const r = await stack.receiver(() => (healthy ? { status: 200 } : { status: 503 }));
      // One at a time, so "after three failures" is exact; no retries, so only held deliveries remain.
      const wh = await stack.createWebhook({ url: r.url, max_in_flight: 1, retry_enabled: false });
      for (let i = 0; i < 10; i += 1) await stack.publish('quota.warning', { usage: i, limit: 100 }, 1);

      const opened = await eventually(async () => {
        const w = await stack.webhook(wh.id);
        return w.circuit === 'open' ? w : undefined;
      }, 10_000, 'circuit open');
      expect(typeof opened.circuit_retry_at).toBe('string');
      expect(r.received).toHaveLength(3);
      const held = (await stack.deliveries(wh.id)).filter((d) => d.status === 'pending');
      expect(held).toHaveLength(7);
      for (const d of held) expect(d.attempt_count).toBe(0);

      // Nothing is sent while the circuit is open. Time itself is the point here (the
      // deliveries stay held, no state to wait for): 800 ms of the 3 s cooldown pass.
      await sleep(800);
      expect(r.received).toHaveLength(3);
      const metrics = await worker.metrics.registry.metrics();
      expect(metrics).toMatch(/hookline_circuit_transitions_total\{to="open",app="worker-test"\} 1/);

      // The endpoint recovers; the probe (one request) closes the circuit, and the held deliveries follow.
      healthy = true;
      const all = await r.waitFor(10, 15_000);
      // Every delivery final: no retries (retry_enabled false), so nothing more is sent.
      await allDeliveriesFinal(stack);
      expect(r.received).toHaveLength(10);
      expect(new Set(ids(all)).size).toBe(10);
      expect(r.maxOpen()).toBe(1);
      expect(await stack.webhook(wh.id)).toMatchObject({ circuit: 'closed', circuit_retry_at: null });
      const deliveries = await stack.deliveries(wh.id);
      expect(deliveries.filter((d) => d.status === 'succeeded')).toHaveLength(7);
      expect(deliveries.filter((d) => d.status === 'failed')).toHaveLength(3);
      expect(await worker.metrics.registry.metrics()).toMatch(/hookline_circuit_transitions_total\{to="closed",app="worker-test"\} 1/);
    } finally {
      await worker.close();
    }
  });

  it('a dead endpoint and a healthy one on the same account: the healthy callbacks keep arriving while the dead circuit is open', async () => {
    const worker = await startWorkerHarness({
      databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey,
      config: { DELIVERY_TIMEOUT: 1_000, CIRCUIT_BREAKER_THRESHOLD: 5, CIRCUIT_BREAKER_COOLDOWN: 60_000, WORKER_CONCURRENCY: 20 },
    });
    try {
      const dead = await stack.receiver({ status: 200, hang: true });
      const ok = await stack.receiver({ status: 200 });
      const deadWh = await stack.createWebhook({ url: dead.url, events: ['quota.warning'] });
      await stack.createWebhook({ url: ok.url, events: ['quota.warning'] });
      for (let i = 0; i < 40; i += 1) await stack.publish('quota.warning', { usage: i, limit: 100 }, 2);
      // The healthy endpoint gets everything at once, the dead one's slots (10) notwithstanding.
      await ok.waitFor(40, 10_000);
      expect(dead.maxOpen()).toBeLessThanOrEqual(10);
      await eventually(async () => (await stack.webhook(deadWh.id)).circuit === 'open', 10_000, 'dead circuit open');
      // Attempts on their way when it opened reached it at once (loopback) and are held
      // open until the worker gives up on them (DELIVERY_TIMEOUT): wait for that.
      await waitUntil(() => dead.open() === 0, 'the dead endpoint\'s requests abandoned by the worker');

      // While it is open, new events reach the healthy endpoint promptly and the dead one not at all.
      const deadSeen = dead.received.length;
      const started = Date.now();
      for (let i = 0; i < 20; i += 1) await stack.publish('quota.warning', { usage: 100 + i, limit: 200 }, 2);
      await ok.waitFor(60, 10_000);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(dead.received.length).toBe(deadSeen);
      expect((await stack.webhook(deadWh.id)).circuit).toBe('open');
    } finally {
      await worker.close();
    }
  });

  it('a backlog of due retries does not delay a healthy webhook\'s first attempt', async () => {
    const config = { CIRCUIT_BREAKER_THRESHOLD: 1_000, RETRY_SCHEDULE: [3_000] };
    const failing = await stack.receiver({ status: 500 });
    const healthy = await stack.receiver({ status: 200 });
    const failingWh = await stack.createWebhook({ url: failing.url, events: ['quota.warning'], max_in_flight: 30 });
    const first = await startWorkerHarness({ databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, config });
    for (let i = 0; i < 30; i += 1) await stack.publish('quota.warning', { usage: i, limit: 100 }, 1);
    await failing.waitFor(30, 10_000);
    // Stop the worker with 30 retries scheduled; let them all come due.
    await first.close();
    const firstAttempts = failing.received.length;
    expect(firstAttempts).toBe(30);
    await waitUntil(async () => {
      const waiting = (await stack.deliveries(failingWh.id)).filter((d) => d.status === 'pending_retry');
      return waiting.length === 30 && waiting.every((d) => d.next_attempt_at && Date.parse(d.next_attempt_at) <= Date.now());
    }, 'every retry due', { timeoutMs: 10_000, intervalMs: 100 });
    await stack.createWebhook({ url: healthy.url, events: ['quota.exceeded'] });
    await stack.publish('quota.exceeded', { usage: 101, limit: 100 }, 1);

    // One slot: whatever BullMQ hands out first is what goes first.
    const second = await startWorkerHarness({
      databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, config: { ...config, WORKER_CONCURRENCY: 1 },
    });
    try {
      const [cb] = await healthy.waitFor(1, 10_000);
      await failing.waitFor(firstAttempts + 30, 15_000);
      const retriesBefore = failing.received.slice(firstAttempts).filter((r) => r.receivedAt < cb.receivedAt);
      expect(retriesBefore).toHaveLength(0);
    } finally {
      await second.close();
    }
  });
});
