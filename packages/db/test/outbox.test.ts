import { newId } from '@hookline/domain';
import { matchingWebhooksWhere, writeEventBatch, type EventBatchItem } from '../src';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// writeEventBatch on a real PostgreSQL database: it must pick exactly the
// webhooks the Prisma outbox (matchingWebhooksWhere) picks, write every event
// of a batch with its deliveries, skip unknown accounts, and write nothing at
// all when one item cannot be stored.

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});

afterAll(async () => {
  await t?.drop();
});

async function account(): Promise<string> {
  const id = newId('account');
  await t.db.prisma.account.create({ data: { id, name: 'Batch', plan: 'pro' } });
  return id;
}

type Hook = { events: string[]; parserId?: string | null; isActive?: boolean; disabledReason?: string | null; deleted?: boolean };

async function webhook(accountId: string, hook: Hook): Promise<string> {
  const id = newId('webhook');
  await t.db.prisma.webhook.create({
    data: {
      id,
      accountId,
      url: `https://hooks.example.com/${id}`,
      events: hook.events,
      parserId: hook.parserId ?? null,
      isActive: hook.isActive ?? true,
      disabledReason: hook.disabledReason ?? null,
      deletedAt: hook.deleted ? new Date() : null,
      signingSecretEnc: 'v1:not-used-here',
    },
  });
  return id;
}

const DOC = 'extraction.document_completed';
const JOB = 'extraction.job_completed';
const QUOTA = 'quota.warning';

describe('writeEventBatch', () => {
  it('matches the same webhooks as the Prisma outbox for every event and scope', async () => {
    const a = await account();
    const b = await account();
    const hooks: Hook[] = [
      { events: [DOC, JOB] },
      { events: [DOC, JOB], parserId: 'p1' },
      { events: [DOC], parserId: 'p2' },
      { events: [QUOTA] },
      { events: [QUOTA], parserId: 'p1' },
      { events: [DOC, QUOTA], isActive: false },
      { events: [DOC, QUOTA], disabledReason: 'gone' },
      { events: [DOC, QUOTA], deleted: true },
      { events: ['batch.completed', 'batch.failed', 'batch.partial'] },
    ];
    for (const hook of hooks) await webhook(a, hook);
    await webhook(b, { events: [DOC, JOB, QUOTA] });

    const items: EventBatchItem[] = [];
    for (const accountId of [a, b]) {
      for (const event of [DOC, JOB, QUOTA, 'batch.partial']) {
        for (const parserId of [null, 'p1', 'p2', 'p3']) items.push({ accountId, event, parserId, data: { event, parserId } });
      }
    }
    const results = await writeEventBatch(t.db.sql, items);

    expect(results).toHaveLength(items.length);
    for (const [i, item] of items.entries()) {
      const written = results[i]!;
      const expected = await t.db.prisma.webhook.findMany({ where: matchingWebhooksWhere(item), select: { id: true } });
      const rows = await t.db.prisma.delivery.findMany({ where: { eventId: written.eventId } });
      expect(rows.map((r) => r.webhookId).sort()).toEqual(expected.map((w) => w.id).sort());
      expect(rows.map((r) => r.id).sort()).toEqual([...written.deliveryIds].sort());
      for (const row of rows) {
        expect(row).toEqual(expect.objectContaining({ accountId: item.accountId, event: item.event, status: 'pending', attemptCount: 0, nextAttemptAt: written.createdAt, createdAt: written.createdAt }));
      }
      const event = await t.db.prisma.event.findUniqueOrThrow({ where: { id: written.eventId } });
      expect(event).toEqual(expect.objectContaining({ accountId: item.accountId, event: item.event, parserId: item.parserId, data: item.data, test: false, createdAt: written.createdAt }));
    }
    // The matrix reaches every kind of outcome: no webhook, one, several.
    const counts = new Set(results.map((r) => r!.deliveryIds.length));
    expect([...counts].sort()).toEqual([0, 1, 2, 3]);
  });

  it('answers null for an unknown account and writes nothing for it, while the rest of the batch is written', async () => {
    const a = await account();
    const hook = await webhook(a, { events: [QUOTA] });
    const results = await writeEventBatch(t.db.sql, [
      { accountId: a, event: QUOTA, parserId: null, data: { n: 1 } },
      { accountId: 'acct_nobody', event: QUOTA, parserId: null, data: { n: 2 } },
      { accountId: a, event: QUOTA, parserId: null, data: { nested: { list: [1, 'two', null, true], text: 'ünïcödé ✓ 😀 "quoted" \\ back' } } },
    ]);

    expect(results[1]).toBeNull();
    expect(await t.db.prisma.event.count({ where: { accountId: 'acct_nobody' } })).toBe(0);
    for (const written of [results[0]!, results[2]!]) {
      expect(written.deliveryIds).toHaveLength(1);
      const delivery = await t.db.prisma.delivery.findUniqueOrThrow({ where: { id: written.deliveryIds[0] } });
      expect(delivery.webhookId).toBe(hook);
    }
    const stored = await t.db.prisma.event.findUniqueOrThrow({ where: { id: results[2]!.eventId } });
    expect(stored.data).toEqual({ nested: { list: [1, 'two', null, true], text: 'ünïcödé ✓ 😀 "quoted" \\ back' } });
  });

  it('writes nothing of a batch when one item cannot be stored (one statement, all or nothing)', async () => {
    const a = await account();
    await webhook(a, { events: [QUOTA] });
    const before = await t.db.prisma.event.count({ where: { accountId: a } });

    const failure = await writeEventBatch(t.db.sql, [
      { accountId: a, event: QUOTA, parserId: null, data: { fine: true } },
      { accountId: a, event: QUOTA, parserId: null, data: { bad: 'nul \u0000 inside' } },
    ]).then(() => null, (err: { code?: string }) => err);

    expect(failure?.code).toBe('22P05');
    expect(await t.db.prisma.event.count({ where: { accountId: a } })).toBe(before);
    expect(await t.db.prisma.delivery.count({ where: { accountId: a } })).toBe(0);
  });

  it('does nothing for an empty batch', async () => {
    expect(await writeEventBatch(t.db.sql, [])).toEqual([]);
  });
});
