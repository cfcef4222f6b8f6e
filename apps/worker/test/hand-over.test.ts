import { randomBytes } from 'node:crypto';
import { createLogger } from '@hookline/config';
import { createSecretBox, generateSigningSecret, newId } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import { createRedis } from '@hookline/queue';
import { publishEvent } from '../../../tests/support/publish-event';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';
import { startReceiver, type Receiver } from '../../../tests/support/receiver';
import { cleanPrefix, TEST_REDIS_URL } from '../../../tests/support/api-harness';
import { createDeliverer } from '../src/deliver';
import { createEndpointGate, type EndpointGate } from '../src/endpoint-gate';
import { createLocalLine } from '../src/local-line';
import { createSender } from '../src/sender';
import { waitUntil } from '../../../tests/support/wait-until';

// A slot handed on in place (deliver/slots.ts, freeSlot): the attempt that ends
// gives its slot to a delivery of the same webhook waiting in this process,
// which sends at once; the lease's renewal runs beside that send. Real
// PostgreSQL, Redis and HTTP receiver; the gate is the real one, with its
// renewals held back by the test so that "beside" can be observed.

const secretBox = createSecretBox(randomBytes(32));
const logger = createLogger({ level: 'error', service: 'hand-over-test', silent: true });
const config = {
  WEBHOOK_BRAND: 'PerfectParser', RETRY_SCHEDULE: [300, 600, 1200], RETRY_JITTER: 0, AUTO_DISABLE_AFTER: 3 * 86_400_000, DELIVERY_TIMEOUT: 2_000,
  ENDPOINT_CONCURRENCY: 10, CIRCUIT_BREAKER_THRESHOLD: 1_000, CIRCUIT_BREAKER_COOLDOWN: 1_000,
};
const prefix = `test-hand-over-${randomBytes(4).toString('hex')}`;
const redis = createRedis(TEST_REDIS_URL, 'worker');
const sender = createSender({ timeoutMs: 2_000, allowPrivateTargets: true, userAgent: 'Hookline/test' });
let database: TestDatabase;
let receiver: Receiver;

/** Jobs promoted by the gate (a parked delivery woken when a slot frees). */
const promoted: string[] = [];
const realGate = createEndpointGate({ redis, prefix, leaseTtlMs: 30_000, promote: async (jobId) => (promoted.push(jobId), true) });

/** The real gate, whose renewals wait until the test lets them go. */
function heldRenewals(): { gate: EndpointGate; sent: () => number; letGo: () => void } {
  let sent = 0;
  let letGo!: () => void;
  const gone = new Promise<void>((resolve) => (letGo = resolve));
  const gate: EndpointGate = {
    ...realGate,
    async renew(input) {
      sent += 1;
      await gone;
      return realGate.renew(input);
    },
  };
  return { gate, sent: () => sent, letGo };
}

beforeAll(async () => {
  database = await createTestDatabase();
  receiver = await startReceiver();
});

afterAll(async () => {
  await cleanPrefix(redis, prefix);
  redis.disconnect();
  sender.close();
  await receiver?.close();
  await database?.drop();
});

/** A webhook with one slot (max_in_flight 1), and a function that publishes one event to it. */
async function oneSlotWebhook() {
  const prisma = database.db.prisma;
  const account = await prisma.account.create({ data: { id: newId('account'), name: 'Acme', plan: 'pro' } });
  const webhook = await prisma.webhook.create({
    data: {
      id: newId('webhook'), accountId: account.id, url: receiver.url, events: ['extraction.document_completed'],
      signingSecretEnc: secretBox.encrypt(generateSigningSecret()), maxInFlight: 1,
    },
  });
  const emit = async () => (await publishEvent(prisma, {
    accountId: account.id, event: 'extraction.document_completed', parserId: null,
    data: { extraction_id: 'ext_1', document_id: newId('attempt'), status: 'completed', file_name: 'a.pdf', result: null },
  })).deliveryIds[0];
  return { webhook, emit };
}

function deliverer(gate: EndpointGate) {
  const line = createLocalLine({ maxWaiting: 10 });
  const metrics = createMetrics({ app: 'hand-over-test', defaultMetrics: false });
  return { line, ...createDeliverer({ db: database.db, sender, gate, line, secretBox, logger, metrics, config }) };
}

const bodyOf = (deliveryId: string) => receiver.received.find((r) => r.headers['x-perfectparser-delivery'] === deliveryId);
const until = (check: () => boolean, what: string) => waitUntil(check, what, { timeoutMs: 2_000, intervalMs: 10 });

/**
 * Two deliveries to a one-slot webhook the line has seen answer in 150 ms: the
 * second waits in this process for the first's slot, which is handed to it in
 * place; resolves once both callbacks have arrived, the renewal still held back.
 */
async function handedOver() {
  const { webhook, emit } = await oneSlotWebhook();
  const held = heldRenewals();
  const { deliver, line } = deliverer(held.gate);
  line.observe(webhook.id, 150);
  receiver.respond({ status: 200, body: 'ok', delayMs: 150 });

  const [a, b] = [await emit(), await emit()];
  const first = deliver({ deliveryId: a, jobId: a });
  await until(() => bodyOf(a) !== undefined, 'the first callback');
  const second = deliver({ deliveryId: b, jobId: b });
  await until(() => bodyOf(b) !== undefined, 'the second callback');
  return { webhook, held, a, b, first, second };
}

it('hands the slot to the waiting delivery, which sends before the renewal is answered; the cap of 1 holds', async () => {
  // b waited for a's slot; a ended and handed it over: b's callback arrived
  // while the renewal that a's hand-over sent is still held back.
  const { webhook, held, a, b, first, second } = await handedOver();
  expect(held.sent()).toBe(1);
  expect(bodyOf(b)!.receivedAt).toBeGreaterThanOrEqual(bodyOf(a)!.receivedAt + 150);
  // Still one slot in use, the lease a took (a third delivery would be refused).
  expect((await realGate.inspect(webhook.id)).inFlight).toBe(1);

  held.letGo();
  await expect(first).resolves.toMatchObject({ outcome: 'succeeded' });
  await expect(second).resolves.toMatchObject({ outcome: 'succeeded' });
  expect(await realGate.inspect(webhook.id)).toEqual({ held: 0, inFlight: 0, failures: 0 });
});

it('sends the slot back the normal way when its renewal is refused: a delivery parked for the webhook is woken', async () => {
  const { webhook, held, first, second } = await handedOver();
  // Meanwhile another worker parked a delivery of this webhook: the renewal must be refused.
  await realGate.park({ webhookId: webhook.id, jobId: 'parked-elsewhere', since: Date.now(), reason: 'in_flight', cap: 1 });
  expect(promoted).not.toContain('parked-elsewhere');
  held.letGo();
  await expect(first).resolves.toMatchObject({ outcome: 'succeeded' });
  await expect(second).resolves.toMatchObject({ outcome: 'succeeded' });
  // b's attempt, ending, freed the slot instead of keeping it, and the parked delivery was woken for it.
  await until(() => promoted.includes('parked-elsewhere'), 'the parked delivery to be woken');
  expect((await realGate.inspect(webhook.id)).inFlight).toBe(0);
});
