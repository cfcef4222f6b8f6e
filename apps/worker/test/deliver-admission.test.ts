import { deliver } from '../src/deliver';
import { admit } from '../src/deliver/admission';
import { answered, callsOf, config, fakeContext, fakeGate, fakeSender, fakeStore, loadedRow } from './deliver-fakes';

// Admission (deliver/admission.ts) on an in-memory store and gate: which
// deliveries are cancelled, which are held behind their circuit, and that a
// half-open circuit lets exactly one probe through.

const minute = 60_000;

it('cancels a paused webhook\'s delivery: nothing sent, no slot asked for; a manual retry still goes', async () => {
  const row = loadedRow({ is_active: false });
  const store = fakeStore(row);
  const gate = fakeGate();
  const sender = fakeSender(answered(200));
  const ctx = fakeContext({ store, gate, sender });

  await expect(deliver(ctx, { deliveryId: row.id, jobId: row.id })).resolves.toEqual({ outcome: 'cancelled', next: { kind: 'done' } });
  expect(store.calls.filter((c) => c.method === 'cancel').map((c) => c.args[0])).toEqual([row.id]);
  expect(sender.sent).toBe(0);
  expect(gate.calls).toEqual([]);

  // An explicit user action reaches a paused webhook.
  await expect(admit(ctx, row, { deliveryId: row.id, once: true })).resolves.toEqual({ probe: false });
});

it('cancels a deleted webhook\'s delivery, a manual retry\'s too', async () => {
  const row = loadedRow({ deleted: true });
  const store = fakeStore(row);
  const ctx = fakeContext({ store });

  await expect(admit(ctx, row, { deliveryId: row.id, jobId: row.id })).resolves.toMatchObject({ outcome: 'cancelled' });
  await expect(admit(ctx, row, { deliveryId: row.id, once: true })).resolves.toMatchObject({ outcome: 'cancelled' });
  expect(store.calls.filter((c) => c.method === 'cancel')).toHaveLength(2);
});

it('holds a delivery behind its open circuit until the cooldown ends, parked in its webhook\'s line with reason circuit', async () => {
  const retryAt = new Date(Date.now() + minute);
  const row = loadedRow({ circuit: 'open', circuit_retry_at: retryAt });
  const store = fakeStore(row);
  const gate = fakeGate();
  const sender = fakeSender(answered(200));
  const ctx = fakeContext({ store, gate, sender });

  const result = await deliver(ctx, { deliveryId: row.id, jobId: row.id, enqueuedAt: 1_000 });
  expect(result).toMatchObject({ outcome: 'held', next: { kind: 'later', park: { webhookId: row.webhook_id, reason: 'circuit', cap: config.ENDPOINT_CONCURRENCY, since: 1_000 } } });
  // Back no earlier than the end of the cooldown, when the probe may go.
  expect(result.next.kind === 'later' && result.next.delayMs).toBeGreaterThanOrEqual(minute - 1_000);
  expect(store.calls.map((c) => c.method)).toEqual(['load']);
  expect(sender.sent).toBe(0);
  expect(gate.calls).toEqual([]);
});

it('lets one probe through a circuit whose cooldown ended; the other delivery is held for the probe\'s answer', async () => {
  const row = loadedRow({ circuit: 'open', circuit_retry_at: new Date(Date.now() - 1_000) });
  const other = { ...row, id: 'dlv_other' };
  const store = fakeStore(row);
  const gate = fakeGate();
  const ctx = fakeContext({ store, gate });

  const before = Date.now();
  const [first, second] = await Promise.all([
    admit(ctx, row, { deliveryId: row.id, jobId: row.id }),
    admit(ctx, other, { deliveryId: other.id, jobId: other.id }),
  ]);
  expect(first).toEqual({ probe: true });
  expect(second).toMatchObject({ outcome: 'held', next: { kind: 'later', park: { reason: 'circuit' } } });
  expect(store.calls.filter((c) => c.method === 'claimProbe')).toHaveLength(2);
  // The claim is recorded as this worker's, with the deadline the probe must report by.
  const claimed = callsOf(gate, 'probeClaimed');
  expect(claimed).toHaveLength(1);
  const { webhookId, deadline } = claimed[0].input as { webhookId: string; deadline: number };
  expect(webhookId).toBe(row.webhook_id);
  expect(deadline).toBeGreaterThanOrEqual(before + config.DELIVERY_TIMEOUT);
});

it('the probe that succeeds closes the circuit, wakes the webhook\'s line and ends its claim', async () => {
  const row = loadedRow({ circuit: 'open', circuit_retry_at: new Date(Date.now() - 1_000) });
  const store = fakeStore(row);
  const gate = fakeGate();
  const ctx = fakeContext({ store, gate, sender: fakeSender(answered(200)) });

  await expect(deliver(ctx, { deliveryId: row.id, jobId: row.id })).resolves.toMatchObject({ outcome: 'succeeded' });
  // Exempt from the failure count at the gate, as the probe.
  expect(callsOf(gate, 'acquire')[0].input).toMatchObject({ circuitThreshold: 0 });
  expect(store.calls.filter((c) => c.method === 'closeCircuit')).toHaveLength(1);
  expect(callsOf(gate, 'wakeAll')).toEqual([{ method: 'wakeAll', input: { webhookId: row.webhook_id, cap: config.ENDPOINT_CONCURRENCY } }]);
  expect(callsOf(gate, 'probeEnded')).toEqual([{ method: 'probeEnded', input: row.webhook_id }]);
});
