import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createSecretBox, generateSigningSecret, newId } from '@hookline/domain';
import { latencyBreakdown } from '../../scripts/bench/breakdown';
import { deliveryKey, type Receiver } from '../../scripts/bench/support';
import { publishEvent } from '../support/publish-event';
import { createTestDatabase, type TestDatabase } from '../support/test-database';

// The bench's "where it goes" line (scripts/bench/breakdown.ts) splits each
// paced delivery's latency at the times the pipeline stored: the event's row
// and the first attempt's start. Real PostgreSQL with the schema's own tables.

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

it('splits sent → received into API, queue and worker, and callback, per (event, webhook path)', async () => {
  const prisma = database.db.prisma;
  const secretBox = createSecretBox(randomBytes(32));
  const account = await prisma.account.create({ data: { id: newId('account'), name: 'Bench', plan: 'pro' } });
  // Webhooks 2 and 0 of a fan-out (receiver paths /hooks/2 and /hooks/0).
  const hooks = await Promise.all([2, 0].map((h) => prisma.webhook.create({
    data: { id: newId('webhook'), accountId: account.id, url: `http://127.0.0.1:9/hooks/${h}`, events: ['quota.warning'], signingSecretEnc: secretBox.encrypt(generateSigningSecret()) },
  })));
  const written = await publishEvent(prisma, { accountId: account.id, event: 'quota.warning', parserId: null, data: { usage: 1, limit: 2 } });
  const stored = Date.parse('2026-11-30T10:00:00.000Z');
  await prisma.$executeRaw`UPDATE events SET created_at = ${new Date(stored)} WHERE id = ${written.eventId}`;
  const attempt = async (webhookId: string, number: number, recordedAt: number, durationMs: number) => {
    const delivery = await prisma.delivery.findFirstOrThrow({ where: { eventId: written.eventId, webhookId } });
    await prisma.attempt.create({
      data: {
        id: newId('attempt'), deliveryId: delivery.id, webhookId, eventId: written.eventId, event: 'quota.warning',
        attemptNumber: number, status: 'succeeded', responseStatus: 200, durationMs, createdAt: new Date(recordedAt),
      },
    });
  };
  // To /hooks/2: sent 7 ms before the row; the first attempt started 20 ms after it
  // (recorded at +32, 12 ms long); received 4 ms into it.
  await attempt(hooks[0].id, 1, stored + 32, 12);
  // Not counted: a later attempt of that delivery, and the attempt to /hooks/0, whose key was not sent.
  await attempt(hooks[0].id, 2, stored + 500, 1);
  await attempt(hooks[1].id, 1, stored + 90, 1);
  const local = (epochMs: number) => epochMs - performance.timeOrigin;
  const key = deliveryKey(written.eventId, 2);
  const sent = new Map([[key, local(stored - 7)]]);
  const receiver = { arrivals: new Map([[key, local(stored + 24)]]) } as Pick<Receiver, 'arrivals'> as Receiver;

  const line = await latencyBreakdown(database.url, sent, receiver);

  expect(line).toMatch(/^API 7 \/ 7, queue and worker 20 \/ 20, callback 4 \/ 4 \(1 deliveries\)$/);
});
