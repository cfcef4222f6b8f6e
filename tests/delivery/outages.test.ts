import { startHealthServer, type HealthServer } from '../../apps/worker/src/health-server';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { deliveryReaches, eventually, onlyDelivery, startStack, type Stack } from './stack';

// PostgreSQL taken away from the worker (real worker, real PostgreSQL behind
// a real TCP proxy the test cuts; the API keeps its own direct connection, so
// events are accepted meanwhile), real Redis and a real receiver:
// - an attempt sent and answered while PostgreSQL is gone is kept and
//   recorded once when it returns, the job held (its lock renewed) meanwhile:
//   the receiver sees one request;
// - an outage is waited out: the workers pause, jobs go back without spending
//   a BullMQ attempt, one warning when it starts and one line when it ends,
//   and every delivery arrives exactly once afterwards.

const OUTAGE_STARTS = /unreachable: this worker takes no jobs/;
const OUTAGE_ENDS = /reachable again after the outage/;

describe('PostgreSQL outages, as the worker sees them', () => {
  let stack: Stack;
  let proxy: TcpProxy;
  let worker: WorkerHarness;
  let health: HealthServer;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
    const { hostname, port } = new URL(stack.api.database.url);
    proxy = await startTcpProxy({ host: hostname, port: Number(port || 5432) });
    worker = await startWorkerHarness({
      databaseUrl: proxy.through(stack.api.database.url), prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey,
      // Failures are retried, not held by the circuit.
      config: { CIRCUIT_BREAKER_THRESHOLD: 1_000 },
    });
    const { db, connection: redis, metrics, logger, delivery } = worker;
    health = await startHealthServer({ port: 0, db, redis, metrics, logger, queues: delivery.queues.shards, outage: delivery.outage });
  });
  afterAll(async () => {
    proxy?.restore();
    await health?.close();
    await worker?.close();
    await proxy?.close();
    await stack?.close();
  });
  beforeEach(() => stack.freshAccount());
  afterEach(() => proxy.restore());

  const lines = (pattern: RegExp) => worker.logs.filter((l) => pattern.test(l.message));
  const lockTtl = (jobId: string) => worker.connection.pttl(`${stack.api.queue.toKey(jobId)}:lock`);

  it('lost between send and record: the answer is kept, recorded once when PostgreSQL returns, and the receiver saw one request', async () => {
    const before = { starts: lines(OUTAGE_STARTS).length, ends: lines(OUTAGE_ENDS).length };
    // The receiver takes PostgreSQL away as the callback arrives, before it answers.
    const r = await stack.receiver((_req, index) => {
      if (index === 0) proxy.cut();
      return { status: 200, body: '{"ok":true}' };
    });
    const wh = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    await r.waitFor(1, 10_000);
    const delivery = await onlyDelivery(stack, wh.id);

    // The worker waits the outage out with the answer in hand: paused, and still holding
    // the job, its lock renewed (past the harness's 3 s lock, with a 1 s stalled check).
    await eventually(async () => worker.delivery.outage().down.includes('postgres'), 10_000, 'the outage seen');
    expect(worker.delivery.worker.all.every((w) => w.isPaused())).toBe(true);
    let lowest = Infinity;
    await eventually(async () => {
      const ttl = await lockTtl(delivery.id);
      if (ttl > lowest + 300) return true;
      lowest = Math.min(lowest, ttl > 0 ? ttl : Infinity);
      return false;
    }, 10_000, 'the job lock renewed while the attempt is held');
    expect(await stack.api.queue.getJobState(delivery.id)).toBe('active');

    proxy.restore();
    const { attempts } = await deliveryReaches(stack, delivery.id, 'succeeded', 15_000);
    expect(attempts.map((a) => [a.attempt_number, a.status, a.response_status])).toEqual([[1, 'succeeded', 200]]);
    // The job is gone (completed): nothing can send it again.
    await eventually(async () => (await stack.api.queue.getJobState(delivery.id)) === 'unknown', 10_000, 'job finished');
    expect(r.received).toHaveLength(1);
    expect(lines(OUTAGE_STARTS).length - before.starts).toBe(1);
    await eventually(async () => lines(OUTAGE_ENDS).length - before.ends === 1, 10_000, 'the outage over');
    expect(worker.delivery.worker.all.every((w) => !w.isPaused())).toBe(true);
    expect(worker.logs.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('an outage: the workers pause, no BullMQ attempt is spent, one warning and one recovery line, and every delivery arrives once afterwards', async () => {
    const before = { starts: lines(OUTAGE_STARTS).length, ends: lines(OUTAGE_ENDS).length };
    const r = await stack.receiver();
    const hooks = await Promise.all([0, 1, 2].map((i) => stack.createWebhook({ url: `${r.url}/${i}` })));
    proxy.cut();
    // The API still writes to PostgreSQL and queues the jobs: the worker takes them and cannot load them.
    for (let i = 0; i < 5; i += 1) await stack.publish('quota.warning', { usage: i }, hooks.length);

    await eventually(async () => worker.delivery.outage().down.includes('postgres'), 10_000, 'the outage seen');
    await eventually(async () => worker.delivery.worker.all.every((w) => w.isPaused()), 5_000, 'the workers paused');
    // Every job is back in the queue, none active, none failed, and not one BullMQ attempt spent.
    const queued = await eventually(async () => {
      const jobs = await stack.api.queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'failed', 'completed']);
      const active = await stack.api.queue.getJobs(['active', 'failed']);
      return jobs.length === 15 && active.length === 0 ? jobs : undefined;
    }, 10_000, 'all 15 jobs back in the queue');
    expect(queued.map((job) => job.attemptsMade)).toEqual(Array(15).fill(0));
    expect(r.received).toHaveLength(0);
    const since = worker.delivery.outage().since!;
    expect(since).toEqual(expect.any(Number));
    // The worker's /readyz says what is down and that this worker waits for it.
    const ready = await fetch(`http://127.0.0.1:${health.port}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      checks: { postgres: 'down', redis: 'up' }, outage: { down: ['postgres'], since: new Date(since).toISOString(), taking_jobs: false },
    });

    proxy.restore();
    const all = await eventually(async () => {
      const list = (await Promise.all(hooks.map((h) => stack.deliveries(h.id)))).flat();
      return list.length === 15 && list.every((d) => d.status === 'succeeded') ? list : undefined;
    }, 20_000, 'all 15 delivered');
    expect(all.map((d) => d.attempt_count)).toEqual(Array(15).fill(1));
    await eventually(async () => (await stack.api.queue.getJobs(['waiting', 'prioritized', 'delayed', 'active'])).length === 0, 10_000, 'queue empty');
    const ids = r.received.map((cb) => String(cb.headers['x-perfectparser-delivery'])).sort();
    expect(ids).toEqual(all.map((d) => d.id).sort());

    expect(lines(OUTAGE_STARTS).length - before.starts).toBe(1);
    expect(lines(OUTAGE_ENDS).length - before.ends).toBe(1);
    expect(worker.logs.filter((l) => /failed unexpectedly/.test(l.message))).toEqual([]);
    // The relay's ticks (every 200 ms here) failed throughout; the outage's two lines said it all.
    expect(worker.logs.filter((l) => /relay tick failed/.test(l.message))).toEqual([]);
    expect(worker.delivery.outage()).toEqual({ down: [], since: null });
    const after = await fetch(`http://127.0.0.1:${health.port}/readyz`);
    expect([after.status, await after.json()]).toEqual([200, { status: 'ready', checks: { postgres: 'up', redis: 'up' } }]);
  });
});
