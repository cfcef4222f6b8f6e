import { verifyCallback } from '../support/verifier';
import type { Receiver } from '../support/receiver';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { eventually, startStack, type CreatedWebhook, type Stack } from '../delivery/stack';
import type { RedisTarget } from '@hookline/queue';

// What every topology test does: the real API and two real workers on a Redis
// topology the test started, webhooks on a real receiver, events published
// through the platform API, and an outage in the middle.

export type TopologyRun = {
  stack: Stack;
  second: WorkerHarness;
  receiver: Receiver;
  hooks: CreatedWebhook[];
  close(): Promise<void>;
};

/** The stack on `redis`, a second worker on the same database and prefix, and `hookCount` webhooks on one receiver. */
export async function startTopologyRun(redis: RedisTarget, hookCount = 4): Promise<TopologyRun> {
  const stack = await startStack({ redis });
  let second: WorkerHarness | undefined;
  try {
    second = await startWorkerHarness({ databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey, redis });
    const receiver = await stack.receiver();
    const hooks: CreatedWebhook[] = [];
    for (let i = 0; i < hookCount; i += 1) hooks.push(await stack.createWebhook({ url: `${receiver.url}/h${i}` }));
    const run: TopologyRun = {
      stack,
      second,
      receiver,
      hooks,
      async close() {
        await second?.close();
        await stack.close();
      },
    };
    return run;
  } catch (err) {
    await second?.close();
    await stack.close();
    throw err;
  }
}

/** Publishes `count` quota.warning events one after another; every one must be accepted (202), whatever Redis is doing. */
export async function publishMany(run: TopologyRun, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) ids.push(await run.stack.publish('quota.warning', { usage: i }, run.hooks.length));
  return ids;
}

/**
 * Every delivery of the run's webhooks reached the receiver, correctly signed,
 * and every delivery row is `succeeded`: nothing accepted was lost.
 */
export async function expectAllDelivered(run: TopologyRun, expected: number, timeoutMs = 45_000): Promise<void> {
  const rows = async () => (await Promise.all(run.hooks.map((h) => run.stack.deliveries(h.id)))).flat();
  let seen = '';
  await eventually(async () => {
    const all = await rows();
    seen = JSON.stringify(all.reduce<Record<string, number>>((n, d) => ({ ...n, [d.status]: (n[d.status] ?? 0) + 1 }), {}));
    return all.length === expected && all.every((d) => d.status === 'succeeded');
  }, timeoutMs, `${expected} deliveries succeeded`).catch((err: Error) => {
    throw new Error(`${err.message}; deliveries by status: ${seen}`);
  });
  const received = new Set(run.receiver.received.map((cb) => String(cb.headers['x-perfectparser-delivery'])));
  const all = await rows();
  expect(all.filter((d) => !received.has(d.id))).toEqual([]);
  const secrets = new Map(run.hooks.map((h) => [new URL(h.url).pathname, h.signing_secret]));
  for (const cb of run.receiver.received) {
    const secret = secrets.get(cb.path);
    expect(secret && verifyCallback(secret, cb.body, cb.headers)).toEqual({ standard: true, brand: true });
  }
}
