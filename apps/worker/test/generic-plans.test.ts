import { randomBytes } from 'node:crypto';
import { createSecretBox, generateSigningSecret, newId } from '@hookline/domain';
import { publishEvent } from '../../../tests/support/publish-event';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';
import { createDeliveryStore } from '../src/delivery-store';

// The worker's batched load and record statements run on connections whose
// prepared statements use a generic plan, planned once, instead of a plan made
// anew on every execution (packages/db/src/client.ts, batchSql). Everything
// else keeps PostgreSQL's default choice. Real PostgreSQL; a pool of 2 gives
// the batch statements one connection, so its prepared statements can be read.

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase({ poolSize: 2 });
});
afterAll(() => t?.drop());

type Prepared = { statement: string; generic_plans: string; custom_plans: string };
const prepared = (session: TestDatabase['db']['sql']) =>
  session.query<Prepared>('SELECT statement, generic_plans::text, custom_plans::text FROM pg_prepared_statements WHERE statement ~ $1', ['FROM deliveries d|UPDATE deliveries AS dl']);

it('loads and records on generic plans, from the first execution on; the other connections keep the default', async () => {
  const prisma = t.db.prisma;
  const account = await prisma.account.create({ data: { id: newId('account'), name: 'Acme', plan: 'pro' } });
  await prisma.webhook.create({
    data: {
      id: newId('webhook'), accountId: account.id, url: 'http://127.0.0.1:9/hook', events: ['quota.warning'],
      signingSecretEnc: createSecretBox(randomBytes(32)).encrypt(generateSigningSecret()),
    },
  });
  const written = await publishEvent(prisma, { accountId: account.id, event: 'quota.warning', parserId: null, data: { usage: 1, limit: 2 } });
  const [deliveryId] = written.deliveryIds;
  const store = createDeliveryStore(t.db);

  // Seven executions each: PostgreSQL's default plans the first five for their values whatever follows.
  for (let i = 0; i < 7; i++) expect((await store.load(deliveryId))?.id).toBe(deliveryId);
  for (let i = 0; i < 7; i++) {
    // A stale attempt count: the statement runs and records nothing (null), so the loop can repeat it.
    const outcome = await store.record({
      deliveryId, status: 'succeeded', at: new Date(), nextAttemptAt: null, expectedCount: 99, attemptId: newId('attempt'),
      attemptStatus: 'succeeded', responseStatus: 200, responseBody: 'ok', error: null, durationMs: 1, wakeExtraction: null,
    });
    expect(outcome).toBeNull();
  }

  const batch = await t.db.batchSql.withSession(async (session) => ({
    mode: (await session.query<{ plan_cache_mode: string }>('SHOW plan_cache_mode'))[0].plan_cache_mode,
    statements: await prepared(session),
  }));
  expect(batch.mode).toBe('force_generic_plan');
  expect(batch.statements).toHaveLength(2);
  for (const statement of batch.statements) expect(statement).toMatchObject({ generic_plans: '7', custom_plans: '0' });
  const [other] = await t.db.sql.query<{ plan_cache_mode: string }>('SELECT current_setting($1) AS plan_cache_mode', ['plan_cache_mode']);
  expect(other.plan_cache_mode).toBe('auto');
});
