import { createRedis } from '@hookline/queue';
import { cleanPrefix, TEST_REDIS_URL, uniquePrefix } from '../../../tests/support/api-harness';
import { createEndpointGate } from '../src/endpoint-gate';

// A slot kept for the next delivery of the same webhook in the same process
// (EndpointGate.renew): one script instead of a release and an acquire, on the
// machine's real Redis. It resets the failure count and moves the lease's
// expiry on; it refuses while parked deliveries wait in the webhook's line, so
// they keep their turn.

const redis = createRedis(TEST_REDIS_URL, 'worker');
const prefix = uniquePrefix('gate');
const gate = createEndpointGate({ redis, prefix, leaseTtlMs: 60_000, promote: () => Promise.resolve(true) });
const slot = { cap: 1, ratePerSecond: null, circuitThreshold: 5 };

afterAll(async () => {
  await cleanPrefix(redis, prefix);
  redis.disconnect();
});

it('keeps the slot (still one in flight, count reset) when no parked delivery waits', async () => {
  const first = await gate.acquire({ webhookId: 'wh_renew1', jobId: 'j1', ...slot });
  if (!first.ok) throw new Error('the first acquire must succeed');
  // One failure counted, then a success hands the slot on in place: the count goes back to 0.
  await redis.set(`${prefix}:endpoint:{wh_renew1}:failures`, '3');
  expect(await gate.renew({ webhookId: 'wh_renew1', lease: first.lease })).toBe(true);
  expect(await gate.inspect('wh_renew1')).toEqual({ held: 0, inFlight: 1, failures: 0 });
  // The kept slot is still the cap's only one: another acquire is refused.
  expect(await gate.acquire({ webhookId: 'wh_renew1', jobId: 'j2', ...slot })).toMatchObject({ ok: false, reason: 'in_flight' });
  await gate.release({ webhookId: 'wh_renew1', lease: first.lease, circuitFailure: false, wake: true, cap: 1, threshold: 5 });
  expect((await gate.inspect('wh_renew1')).inFlight).toBe(0);
});

it('refuses while the webhook has parked deliveries, or when the lease is gone', async () => {
  const first = await gate.acquire({ webhookId: 'wh_renew2', jobId: 'j1', ...slot });
  if (!first.ok) throw new Error('the first acquire must succeed');
  await gate.park({ webhookId: 'wh_renew2', jobId: 'j-parked', since: Date.now(), reason: 'circuit', cap: 1 });
  expect(await gate.renew({ webhookId: 'wh_renew2', lease: first.lease })).toBe(false);

  const other = await gate.acquire({ webhookId: 'wh_renew3', jobId: 'j1', ...slot });
  if (!other.ok) throw new Error('the first acquire must succeed');
  await gate.release({ webhookId: 'wh_renew3', lease: other.lease, circuitFailure: false, wake: true, cap: 1, threshold: 5 });
  expect(await gate.renew({ webhookId: 'wh_renew3', lease: other.lease })).toBe(false);
});
