import { newId } from '@hookline/domain';
import { writeEvent, writeEventBatch, type UnkeyedEvent } from '../src';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// The one outbox writer on a real PostgreSQL database: it picks exactly the
// webhooks the rule names (subscribed, in scope, active, neither disabled nor
// deleted; a test event its own webhook only), writes every event of a batch
// with its deliveries, skips unknown accounts, writes nothing at all when one
// item cannot be stored, and inside a Prisma transaction commits or rolls back
// with it.

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

/** The matching rule, stated independently of the SQL that implements it. */
function shouldReceive(hook: Hook, item: { event: string; parserId: string | null }): boolean {
  if (hook.deleted || hook.isActive === false || hook.disabledReason) return false;
  if (!hook.events.includes(item.event)) return false;
  return item.parserId === null || !hook.parserId || hook.parserId === item.parserId;
}

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
  it('matches the webhooks the rule names for every event and scope', async () => {
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
    const ids = new Map<Hook, string>();
    for (const hook of hooks) ids.set(hook, await webhook(a, hook));
    const other: Hook = { events: [DOC, JOB, QUOTA] };
    ids.set(other, await webhook(b, other));
    const accountOf = (hook: Hook) => (hook === other ? b : a);

    const items: UnkeyedEvent[] = [];
    for (const accountId of [a, b]) {
      for (const event of [DOC, JOB, QUOTA, 'batch.partial']) {
        for (const parserId of [null, 'p1', 'p2', 'p3']) items.push({ accountId, event, parserId, data: { event, parserId } });
      }
    }
    const results = await writeEventBatch(t.db.sql, items);

    expect(results).toHaveLength(items.length);
    for (const [i, item] of items.entries()) {
      const written = results[i]!;
      const expected = [...ids].filter(([hook]) => accountOf(hook) === item.accountId && shouldReceive(hook, item)).map(([, id]) => id);
      const rows = await t.db.prisma.delivery.findMany({ where: { eventId: written.eventId } });
      expect({ item, webhooks: rows.map((r) => r.webhookId).sort() }).toEqual({ item, webhooks: expected.sort() });
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

describe('writeEvent (in a Prisma transaction)', () => {
  it('matches by the same rule as the batch path', async () => {
    const a = await account();
    const unscoped = await webhook(a, { events: [DOC] });
    const scoped = await webhook(a, { events: [DOC], parserId: 'p1' });
    await webhook(a, { events: [DOC], parserId: 'p2' });
    await webhook(a, { events: [DOC], isActive: false });
    await webhook(a, { events: [JOB] });

    const written = await t.db.prisma.$transaction((tx) => writeEvent(tx, { accountId: a, event: DOC, parserId: 'p1', data: { n: 1 } }));
    const rows = await t.db.prisma.delivery.findMany({ where: { eventId: written.eventId } });
    expect(rows.map((r) => r.webhookId).sort()).toEqual([unscoped, scoped].sort());
    expect(rows.map((r) => r.id).sort()).toEqual([...written.deliveryIds].sort());
    const event = await t.db.prisma.event.findUniqueOrThrow({ where: { id: written.eventId } });
    expect(event).toEqual(expect.objectContaining({ parserId: 'p1', data: { n: 1 }, test: false, createdAt: written.createdAt }));
  });

  it('rolls back with the transaction it was written in', async () => {
    const a = await account();
    await webhook(a, { events: [QUOTA] });
    const failed = await t.db.prisma
      .$transaction(async (tx) => {
        await writeEvent(tx, { accountId: a, event: QUOTA, parserId: null, data: {} });
        throw new Error('caller failed after the write');
      })
      .then(() => null, (err: Error) => err.message);
    expect(failed).toBe('caller failed after the write');
    expect(await t.db.prisma.event.count({ where: { accountId: a } })).toBe(0);
    expect(await t.db.prisma.delivery.count({ where: { accountId: a } })).toBe(0);
  });

  it('sends a test event to its own webhook only, whatever its subscriptions or state, never to a deleted one', async () => {
    const a = await account();
    const paused = await webhook(a, { events: [DOC], isActive: false, parserId: 'p2' });
    const subscribed = await webhook(a, { events: [JOB] });
    const deleted = await webhook(a, { events: [JOB], deleted: true });
    const stranger = await webhook(await account(), { events: [JOB] });
    const test = (onlyWebhookId: string) =>
      t.db.prisma.$transaction((tx) => writeEvent(tx, { accountId: a, event: JOB, parserId: null, data: {}, test: true, onlyWebhookId }));

    const written = await test(paused);
    const rows = await t.db.prisma.delivery.findMany({ where: { eventId: written.eventId } });
    expect(rows.map((r) => r.webhookId)).toEqual([paused]);
    expect(rows.map((r) => r.webhookId)).not.toContain(subscribed);
    expect((await t.db.prisma.event.findUniqueOrThrow({ where: { id: written.eventId } })).test).toBe(true);
    // Another account's webhook or a deleted one gets nothing.
    expect((await test(deleted)).deliveryIds).toEqual([]);
    expect((await test(stranger)).deliveryIds).toEqual([]);
  });

  // One delivery per webhook and event is the outbox's by construction: one INSERT per batch, an event's
  // deliveries from the distinct webhooks it matched, under a new event id. Once the contract step dropped the
  // unique key (event_id, webhook_id, created_at) nothing in the schema checks it (docs/operations.md, "Indexes"),
  // so this checks the writes: a batch of many events of one account, with the same key data, never doubles one.
  it('writes one delivery per webhook and event, however the batch repeats an account and event', async () => {
    const a = await account();
    const hooks = [await webhook(a, { events: [QUOTA] }), await webhook(a, { events: [QUOTA] }), await webhook(a, { events: [QUOTA, 'other.event'] })];
    const written = await writeEventBatch(t.db.sql, Array.from({ length: 40 }, () => ({ accountId: a, event: QUOTA, parserId: null, data: { same: true } })));
    expect(new Set(written.map((w) => w!.eventId)).size).toBe(40);
    const doubled = await t.db.sql.query(
      `SELECT event_id, webhook_id FROM deliveries WHERE event_id = ANY($1::text[]) GROUP BY event_id, webhook_id HAVING count(*) > 1`,
      [written.map((w) => w!.eventId)],
    );
    expect(doubled).toEqual([]);
    for (const w of written) expect([...w!.webhookIds].sort()).toEqual([...hooks].sort());
  });

  // Until the contract step (mid-rollout, the previous version running) the unique key is there and refuses a second.
  it('before the contract step, the schema refuses a second delivery for a webhook and event', async () => {
    const mid = await createTestDatabase({ contract: false });
    try {
      const a = newId('account');
      const hook = newId('webhook');
      await mid.db.sql.query(`INSERT INTO accounts (id, name, updated_at) VALUES ($1, 'M', now())`, [a]);
      await mid.db.sql.query(`INSERT INTO webhooks (id, account_id, url, events, signing_secret_enc, updated_at) VALUES ($1, $2, 'https://example.com/m', ARRAY['${QUOTA}'], 'x', now())`, [hook, a]);
      const [written] = await writeEventBatch(mid.db.sql, [{ accountId: a, event: QUOTA, parserId: null, data: {} }]);
      expect(written?.deliveryIds).toHaveLength(1);
      const insert = mid.db.sql.query(
        `INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, now())`,
        [newId('delivery', written!.createdAt.getTime()), a, hook, written!.eventId, QUOTA, written!.createdAt],
      );
      await expect(insert).rejects.toMatchObject({ code: '23505' });
    } finally {
      await mid.drop();
    }
  });

  it('refuses an unknown account', async () => {
    await expect(t.db.prisma.$transaction((tx) => writeEvent(tx, { accountId: 'acct_nobody', event: QUOTA, parserId: null, data: {} }))).rejects.toThrow(/no such account/);
  });
});
