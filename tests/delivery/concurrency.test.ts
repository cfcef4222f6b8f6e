import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';
import { eventually, startStack, type Stack } from './stack';

// Any number of workers may run at once (docs/api.md#running-hookline): with two
// workers on one queue, every delivery is sent exactly once.

describe('two workers at once', () => {
  let stack: Stack;
  let second: WorkerHarness;
  beforeAll(async () => {
    stack = await startStack();
    second = await startWorkerHarness({ databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey });
  });
  afterAll(async () => {
    await second?.close();
    await stack?.close();
  });

  it('200 deliveries: each delivery id is received exactly once, and both workers took part', async () => {
    const r = await stack.receiver({ status: 200, delayMs: 10 });
    const webhooks = await Promise.all(Array.from({ length: 8 }, (_, i) => stack.createWebhook({ url: `${r.url}/${i}` })));
    for (let i = 0; i < 25; i += 1) await stack.publish('quota.warning', { n: i }, webhooks.length);

    const got = await r.waitFor(200, 30_000);
    const ids = got.map((cb) => String(cb.headers['x-perfectparser-delivery']));
    expect(new Set(ids).size).toBe(200);

    const rows = await eventually(async () => {
      const all = await stack.api.database.db.sql.query<{ id: string; status: string; attempt_count: number }>('SELECT id, status, attempt_count FROM deliveries');
      return all.length === 200 && all.every((row) => row.status === 'succeeded') ? all : undefined;
    }, 10_000, 'every delivery succeeded');
    expect(rows.every((row) => row.attempt_count === 1)).toBe(true);
    expect(new Set(rows.map((row) => row.id))).toEqual(new Set(ids));
    const [{ count }] = await stack.api.database.db.sql.query<{ count: string }>('SELECT count(*) FROM attempts');
    expect(Number(count)).toBe(200);

    // Nothing arrives late, from a job run twice: every job has ended.
    await waitUntil(async () => {
      const counts = await stack.api.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
      return Object.values(counts).every((n) => n === 0);
    }, 'every job ended');
    expect(r.received).toHaveLength(200);
    const byFirst = stack.worker.logs.filter((l) => l.message === 'delivery attempt').length;
    const bySecond = second.logs.filter((l) => l.message === 'delivery attempt').length;
    expect(byFirst + bySecond).toBe(200);
    expect(byFirst).toBeGreaterThan(0);
    expect(bySecond).toBeGreaterThan(0);
  });
});
