import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startTcpProxy } from '../support/tcp-proxy';
import { spawnWorkerProcess, workerProcessEnv, type WorkerProcess } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';
import { eventually, startStack, type Stack } from './stack';

// Crash safety with workers as real processes (docs/reliability.md): a
// SIGKILLed worker's endpoint slots come back within 5 s (its liveness lapses
// and another worker takes them back, waking the held delivery), its active
// job runs again on another worker within 10 s (BullMQ's lock and stalled
// check at their defaults), and a rolling SIGTERM restart under load, with the
// grace period the Kubernetes manifests give a worker (SIGKILL when it runs out), delivers
// every callback exactly once. A worker SIGKILLed while it holds an answered
// attempt that PostgreSQL did not take (an outage) sends nothing twice: the
// attempt was kept in its job's outcome journal, and the worker that runs the
// job next records it from there.

type Manifest = { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: { template: { spec: WorkerPodSpec } } };
type WorkerPodSpec = { terminationGracePeriodSeconds: number; containers: Array<{ name: string; lifecycle?: { preStop?: { exec?: { command: string[] } } } }> };

/** What the Kubernetes manifests give a worker to stop in: the grace period less its preStop, and its DELIVERY_TIMEOUT. */
function manifestStopBudget(): { budgetMs: number; deliveryTimeout: string } {
  const read = (file: string) => parseAllDocuments(readFileSync(join(__dirname, '..', '..', 'deploy', 'kubernetes', 'base', file), 'utf8')).map((d) => d.toJS() as Manifest);
  const pod = read('worker.yaml').find((m) => m.kind === 'Deployment')!.spec!.template.spec;
  const preStop = pod.containers[0].lifecycle?.preStop?.exec?.command ?? [];
  const preStopS = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
  const config = read('config.yaml').find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'hookline-worker')!;
  return { budgetMs: (pod.terminationGracePeriodSeconds - preStopS) * 1000, deliveryTimeout: config.data!.DELIVERY_TIMEOUT };
}

describe('crash safety', () => {
  let stack: Stack;
  const running: WorkerProcess[] = [];

  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
    await stack?.close();
  });
  beforeEach(() => stack.freshAccount());
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
  });

  async function start(extra: Record<string, string> = {}): Promise<WorkerProcess> {
    const p = await spawnWorkerProcess(workerProcessEnv(stack.api, { RETRY_SCHEDULE: '300ms,600ms', DELIVERY_TIMEOUT: '20s', RELAY_GRACE: '10m', ...extra }));
    running.push(p);
    return p;
  }

  it('a worker SIGKILLed while holding a webhook\'s slots at its cap: another worker sends its next delivery within 5 s', async () => {
    // The first two callbacks never get an answer: they hold both slots of the webhook.
    const r = await stack.receiver((_req, i) => (i < 2 ? { status: 200, hang: true } : { status: 200, body: 'ok' }));
    const wh = await stack.createWebhook({ url: r.url, max_in_flight: 2 });
    // BullMQ's stalled-job recovery kept out of it (a 30 s lock): what comes back here is the gate's
    // slots, owned by each worker's liveness (WORKER_SLOT_LIVENESS, on by default). The stalled check
    // keeps its default: its interval is a queue-wide key, and a longer one would hold the next test's back.
    const slow = { WORKER_LOCK_DURATION: '30s' };
    const first = await start(slow);
    await stack.publish('quota.warning', { usage: 81 }, 1);
    await stack.publish('quota.warning', { usage: 82 }, 1);
    await r.waitFor(2, 15_000);
    const survivor = await start(slow);
    // The third delivery finds both slots taken and is held.
    const third = await stack.publish('quota.warning', { usage: 83 }, 1);
    await eventually(async () => (await heldCount(wh.id)) === 1, 15_000, 'the third delivery held');

    const killedAt = Date.now();
    await first.kill('SIGKILL');
    const [, , next] = await r.waitFor(3, 15_000);
    expect(next.receivedAt - killedAt).toBeLessThan(5_000);
    const deliveries = await stack.deliveries(wh.id);
    const thirdDelivery = deliveries.find((d) => d.event_id === third)!;
    expect(next.headers['x-perfectparser-delivery']).toBe(thirdDelivery.id);
    // The survivor logs the attempt once it has recorded it, just after the receiver answered.
    await eventually(async () => survivor.output.some((line) => line.includes('"delivery attempt"') && line.includes(thirdDelivery.id)), 10_000, 'the survivor to log the attempt');
  }, 120_000);

  it('a SIGKILLed worker\'s active job runs again on another worker within 10 s', async () => {
    const r = await stack.receiver((_req, i) => (i === 0 ? { status: 200, hang: true } : { status: 200, body: 'second time' }));
    const wh = await stack.createWebhook({ url: r.url });
    // WORKER_LOCK_DURATION and WORKER_STALLED_INTERVAL at their defaults.
    const first = await start();
    await stack.publish('quota.warning', {}, 1);
    const [lost] = await r.waitFor(1, 15_000);
    const survivor = await start();

    const killedAt = Date.now();
    await first.kill('SIGKILL');
    const [, again] = await r.waitFor(2, 15_000);
    expect(again.receivedAt - killedAt).toBeLessThan(10_000);
    expect(again.headers['x-perfectparser-delivery']).toBe(lost.headers['x-perfectparser-delivery']);
    const deliveryId = String(lost.headers['x-perfectparser-delivery']);
    await eventually(async () => (await stack.delivery(deliveryId)).delivery.status === 'succeeded', 10_000, 'the delivery to succeed');
    expect(survivor.output.some((line) => line.includes('"delivery attempt"') && line.includes(deliveryId))).toBe(true);
    expect((await stack.deliveries(wh.id)).map((d) => d.id)).toEqual([deliveryId]);
  }, 120_000);

  it('a worker SIGKILLed holding an answered attempt PostgreSQL did not take: the next worker records it from the outcome journal and the receiver saw one request', async () => {
    const { hostname, port } = new URL(stack.api.database.url);
    const proxy = await startTcpProxy({ host: hostname, port: Number(port || 5432) });
    try {
      // PostgreSQL goes away (for this worker only) as the callback arrives, before it is answered.
      const r = await stack.receiver((_req, i) => {
        if (i === 0) proxy.cut();
        return { status: 200, body: '{"ok":true}' };
      });
      const wh = await stack.createWebhook({ url: r.url });
      const first = await start({ DATABASE_URL: proxy.through(stack.api.database.url) });
      await stack.publish('quota.warning', {}, 1);
      const [sent] = await r.waitFor(1, 15_000);
      const deliveryId = String(sent.headers['x-perfectparser-delivery']);
      // The answer is kept in Redis beside its job while the worker waits for PostgreSQL.
      const journalKey = `${stack.api.queue.toKey(deliveryId)}:outcome`;
      await eventually(async () => (await stack.api.redis.exists(journalKey)) === 1, 10_000, 'the outcome kept in the journal');
      await first.kill('SIGKILL');
      proxy.restore();

      // The stalled check gives the job to the next worker (defaults), which records the kept attempt.
      const survivor = await start();
      const { delivery, attempts } = await eventually(async () => {
        const found = await stack.delivery(deliveryId);
        return found.delivery.status === 'succeeded' ? found : undefined;
      }, 30_000, 'the delivery recorded as succeeded');
      expect(delivery.attempt_count).toBe(1);
      expect(attempts.map((a: { status: string; response_status: number | null }) => [a.status, a.response_status])).toEqual([['succeeded', 200]]);
      expect(survivor.output.some((line) => line.includes('outcome journal') && line.includes(deliveryId))).toBe(true);
      await eventually(async () => (await stack.api.redis.exists(journalKey)) === 0, 5_000, 'the journal entry removed once recorded');
      // Nothing was sent again, and nothing will be: the job is finished.
      await eventually(async () => (await stack.api.queue.getJobState(deliveryId)) === 'unknown', 10_000, 'the job finished');
      expect(r.received).toHaveLength(1);
      expect((await stack.deliveries(wh.id)).map((d) => d.id)).toEqual([deliveryId]);
    } finally {
      proxy.restore();
      await proxy.close();
    }
  }, 120_000);

  it('a rolling SIGTERM restart of three workers under load, with the Kubernetes manifests\' grace period, delivers every callback exactly once', async () => {
    // As the kubelet does it: SIGTERM after the preStop, SIGKILL when the grace period runs out.
    const { budgetMs, deliveryTimeout } = manifestStopBudget();
    // Fast receivers, one of them at a small cap (its held line moves through the restarts).
    const receivers = [
      await stack.receiver({ status: 200, body: 'ok', delayMs: 50 }),
      await stack.receiver({ status: 200, body: 'ok', delayMs: 50 }),
      await stack.receiver({ status: 200, body: 'ok', delayMs: 150 }),
    ];
    await stack.createWebhook({ url: receivers[0].url });
    await stack.createWebhook({ url: receivers[1].url });
    await stack.createWebhook({ url: receivers[2].url, max_in_flight: 2 });
    const env = { DELIVERY_TIMEOUT: deliveryTimeout };
    const workers = await Promise.all([start(env), start(env), start(env)]);

    let publishing = true;
    let published = 0;
    const load = (async () => {
      while (publishing) {
        await stack.publish('quota.warning', { usage: published % 100 }, 3);
        published += 1;
        // The load's pace (about 40 events a second), not a wait for anything.
        await new Promise((r) => setTimeout(r, 25));
      }
    })();

    // Each restart comes with callbacks flowing: at least 100 more arrived since the last one.
    const arrived = () => receivers.reduce((sum, r) => sum + r.received.length, 0);
    const underLoad = async () => {
      const before = arrived();
      await waitUntil(() => arrived() >= before + 100, 'callbacks arriving under load', { timeoutMs: 20_000 });
    };
    const drains: number[] = [];
    try {
      for (let i = 0; i < workers.length; i += 1) {
        await underLoad();
        const signalledAt = Date.now();
        const stopping = workers[i];
        const killer = setTimeout(() => void stopping.kill('SIGKILL'), budgetMs);
        const exit = await stopping.kill('SIGTERM').finally(() => clearTimeout(killer));
        drains.push(Date.now() - signalledAt);
        expect({ exit, output: exit.code === 0 ? [] : workers[i].output }).toEqual({ exit: { code: 0, signal: null }, output: [] });
        workers[i] = await start(env);
      }
      await underLoad();
    } finally {
      publishing = false;
      await load;
    }

    // Every delivery succeeded, and each reached its receiver exactly once.
    const total = published * 3;
    expect(total).toBeGreaterThan(100);
    const ids = await eventually(async () => {
      const rows = await stack.api.database.db.sql.query<{ id: string; status: string }>(
        `SELECT id, status FROM deliveries WHERE account_id = $1`, [stack.account.accountId],
      );
      return rows.length === total && rows.every((row) => row.status === 'succeeded') ? rows.map((row) => row.id) : undefined;
    }, 60_000, `all ${total} deliveries succeeded`);
    const counts = new Map<string, number>();
    for (const c of receivers.flatMap((r) => r.received)) {
      const id = String(c.headers['x-perfectparser-delivery']);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
    expect(counts.size).toBe(total);
    // Each drain ended by itself (exit 0 above), inside the manifests' budget.
    expect(Math.max(...drains)).toBeLessThan(budgetMs);
  }, 240_000);

  /** Deliveries of the webhook held in its line (the gate's key, as operators see it). */
  async function heldCount(webhookId: string): Promise<number> {
    return stack.api.redis.zcard(`${stack.api.prefix}:endpoint:{${webhookId}}:held`);
  }
});
