import { HAND_OVER_MARGIN_MS, freeSlot, takeSlot } from '../src/deliver/slots';
import { createLocalLine, type LocalLine } from '../src/local-line';
import { answered, callsOf, config, fakeContext, fakeGate, fakeStore, leaseFor, loadedRow } from './deliver-fakes';

// Taking, freeing and handing over a slot (deliver/slots.ts) with the real
// in-process line and a fake gate: a delivery waiting in the line gets the
// slot in place; without a renewal only while the lease outlives one more
// attempt by HAND_OVER_MARGIN_MS; never a slot whose attempt failed toward the circuit.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A line that knows the webhook as fast (so a delivery refused a slot waits
 * here instead of being parked), its waits long enough that none times out
 * during a test on a loaded machine.
 */
function fastLine(webhookId: string): LocalLine {
  const line = createLocalLine({ maxWaiting: 10, fastMs: 10_000, waitMs: 10_000 });
  line.observe(webhookId, 2_500);
  return line;
}

/** A renewal the test answers when it likes. */
function heldRenewal() {
  let answer!: (kept: boolean) => void;
  const answered = new Promise<boolean>((resolve) => (answer = resolve));
  return { renewed: () => answered, answer };
}

/** Two deliveries of one webhook: `a` holds `lease`, `b` was refused a slot (every slot busy) and waits in the line. */
async function oneWaiting(leaseMs: number, stillOwned?: () => Promise<boolean>) {
  const a = loadedRow();
  const b = { ...a, id: 'dlv_b' };
  const store = fakeStore(a);
  const gate = fakeGate();
  const line = fastLine(a.webhook_id);
  const ctx = fakeContext({ store, gate, line });
  const lease = leaseFor(leaseMs);
  gate.acquired = () => ({ ok: false, reason: 'in_flight', rank: 0, waitMs: 0 });
  const waiting = takeSlot(ctx, b, { deliveryId: b.id, jobId: b.id, stillOwned }, false);
  await sleep(0);
  expect(line.hasWaiter(a.webhook_id)).toBe(true);
  return { a, ctx, gate, line, lease, waiting };
}

it('hands the slot in place, before the renewal is answered, when the lease outlives the next attempt by the margin', async () => {
  const { a, ctx, gate, lease, waiting } = await oneWaiting(config.DELIVERY_TIMEOUT + HAND_OVER_MARGIN_MS + 10_000);
  const renewal = heldRenewal();
  gate.renewed = renewal.renewed;

  // freeSlot does not wait for the renewal: it resolves while it is still unanswered.
  await expect(Promise.race([freeSlot(ctx, a, lease, answered(200)), sleep(100).then(() => 'waited for the renewal')])).resolves.toBe(0);
  await expect(waiting).resolves.toBe(lease);
  expect(callsOf(gate, 'renew')).toHaveLength(1);
  expect(callsOf(gate, 'release')).toEqual([]);
  // The renewal runs beside the next attempt, which reads its answer when it frees the slot.
  expect(lease.renewal).toBeInstanceOf(Promise);
  renewal.answer(true);
});

it('renews first when the lease would not outlive the next attempt by the margin, then hands the slot in place', async () => {
  const { a, ctx, gate, lease, waiting } = await oneWaiting(config.DELIVERY_TIMEOUT + HAND_OVER_MARGIN_MS - 1_000);
  const renewal = heldRenewal();
  gate.renewed = renewal.renewed;
  let handed = false;
  void waiting.then(() => (handed = true));

  const freeing = freeSlot(ctx, a, lease, answered(200));
  await sleep(20);
  expect(callsOf(gate, 'renew')).toHaveLength(1);
  expect(handed).toBe(false);

  renewal.answer(true);
  await expect(freeing).resolves.toBe(0);
  await expect(waiting).resolves.toBe(lease);
  expect(callsOf(gate, 'release')).toEqual([]);
});

it('releases the slot the normal way when that renewal is refused; the waiter asks the gate again', async () => {
  const { a, ctx, gate, lease, waiting } = await oneWaiting(config.DELIVERY_TIMEOUT + HAND_OVER_MARGIN_MS - 1_000);
  gate.renewed = async () => false;

  await freeSlot(ctx, a, lease, answered(200));
  expect(callsOf(gate, 'release')).toHaveLength(1);
  // Freed, not handed: the waiter's next acquire gets it.
  gate.acquired = () => ({ ok: true, lease: leaseFor(60_000) });
  await expect(waiting).resolves.not.toBe(lease);
  expect(callsOf(gate, 'acquire')).toHaveLength(2);
});

it('does not hand over a slot whose attempt failed toward the circuit: released, the failure counted', async () => {
  const { a, ctx, gate, lease, waiting } = await oneWaiting(config.DELIVERY_TIMEOUT + HAND_OVER_MARGIN_MS + 10_000);

  await freeSlot(ctx, a, lease, answered(503));
  expect(callsOf(gate, 'renew')).toEqual([]);
  expect(callsOf(gate, 'release')).toEqual([{
    method: 'release',
    input: { webhookId: a.webhook_id, lease, circuitFailure: true, wake: true, cap: config.ENDPOINT_CONCURRENCY, threshold: config.CIRCUIT_BREAKER_THRESHOLD },
  }]);
  gate.acquired = () => ({ ok: true, lease: leaseFor(60_000) });
  await expect(waiting).resolves.not.toBe(lease);
});

it('a waiter whose job is no longer its worker\'s (Redis lost it, or another worker took it over) gives the slot back and sends nothing', async () => {
  const { a, ctx, gate, lease, waiting } = await oneWaiting(config.DELIVERY_TIMEOUT + HAND_OVER_MARGIN_MS + 10_000, async () => false);
  gate.renewed = async () => true;
  await freeSlot(ctx, a, lease, answered(200));
  // Handed the slot, it asks whether its job is still its own: no, so the slot goes back, no send.
  await expect(waiting).resolves.toEqual({ outcome: 'skipped', next: { kind: 'done' } });
  expect(callsOf(gate, 'release')).toHaveLength(1);
});

it('a waiter whose job is still its own keeps the slot it was handed', async () => {
  let asked = 0;
  const { a, ctx, gate, lease, waiting } = await oneWaiting(config.DELIVERY_TIMEOUT + HAND_OVER_MARGIN_MS + 10_000, async () => (asked += 1) > 0);
  gate.renewed = async () => true;
  await freeSlot(ctx, a, lease, answered(200));
  await expect(waiting).resolves.toBe(lease);
  expect(asked).toBe(1);
  expect(callsOf(gate, 'release')).toEqual([]);
});
