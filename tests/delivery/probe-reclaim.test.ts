import { createRedis } from '@hookline/queue';
import { createEndpointGate } from '../../apps/worker/src/endpoint-gate';
import { createLiveness } from '../../apps/worker/src/liveness';
import { TEST_REDIS_URL } from '../support/api-harness';
import { eventually, startStack, type Stack } from './stack';

// A circuit's half-open probe claim belongs to a live worker (docs/reliability.md):
// when the worker that claimed it dies, the others end the claim within
// seconds (not at its deadline) and the held delivery goes as the next probe.

describe('a dead worker\'s probe claim', () => {
  let stack: Stack;
  const redis = createRedis(TEST_REDIS_URL, 'worker');

  beforeAll(async () => {
    // Probe claims owned by a live worker: WORKER_SLOT_LIVENESS (off by default).
    stack = await startStack({ worker: { config: { WORKER_SLOT_LIVENESS: true } } });
  });
  afterAll(async () => {
    await stack?.close();
    redis.disconnect();
  });

  it('is taken back within seconds: the held delivery is sent as the next probe and closes the circuit', async () => {
    const r = await stack.receiver({ status: 200, body: 'ok' });
    const wh = await stack.createWebhook({ url: r.url });
    // Another worker won the probe a moment ago, until a deadline a minute away, and then died.
    const deadline = Date.now() + 60_000;
    await stack.api.database.db.prisma.webhook.update({
      where: { id: wh.id }, data: { circuit: 'half_open', circuitRetryAt: new Date(deadline), circuitCooldownMs: 1_000 },
    });
    const liveness = createLiveness({ redis, prefix: stack.api.prefix, beatMs: 3_600_000, ttlMs: 60_000 });
    const gate = createEndpointGate({ redis, prefix: stack.api.prefix, leaseTtlMs: 30_000, liveness, promote: async () => true });
    await liveness.start(async () => undefined);
    await gate.probeClaimed({ webhookId: wh.id, deadline });

    // The delivery is held for that probe, parked in the webhook's line.
    await stack.publish('quota.warning', {}, 1);
    const p = stack.api.prefix;
    await eventually(async () => (await redis.zcard(`${p}:endpoint:{${wh.id}}:held`)) === 1, 15_000, 'the delivery held for the probe');
    // Now the worker that claimed it dies: its deadline passes (as 3 s after a SIGKILL).
    await redis.zadd(`${p}:liveness:{${p}}:alive`, 0, liveness.id());
    const diedAt = Date.now();
    const [probe] = await r.waitFor(1, 20_000);
    expect(probe.receivedAt - diedAt).toBeLessThan(5_000);
    // It was held for the dead worker's probe first, then woken when the claim was taken back.
    expect(await stack.worker.metrics.registry.metrics()).toMatch(/hookline_deliveries_held_total\{reason="circuit"[^}]*\} [1-9]/);
    await eventually(async () => (await stack.webhook(wh.id)).circuit === 'closed', 10_000, 'the circuit to close');
    const messages = stack.worker.logs.map((line) => line.message);
    expect(messages.indexOf('circuit probe of a dead worker taken back; another probe may go')).toBeGreaterThanOrEqual(0);
    expect(messages.indexOf('circuit half-open: sending one probe')).toBeGreaterThan(messages.indexOf('circuit probe of a dead worker taken back; another probe may go'));
  }, 60_000);
});
