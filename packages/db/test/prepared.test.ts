import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// SqlRunner.query prepares each parameterised text once per connection
// (packages/db/src/client.ts): PostgreSQL plans it once, not per call.

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase({ poolSize: 1 });
});
afterAll(() => t.drop());

it('a parameterised statement is prepared on its connection once and reused', async () => {
  const text = 'SELECT $1::int + 1 AS n /* prepared.test */';
  await t.db.sql.withSession(async (session) => {
    expect(await session.query<{ n: number }>(text, [1])).toEqual([{ n: 2 }]);
    expect(await session.query<{ n: number }>(text, [41])).toEqual([{ n: 42 }]);
    const prepared = await session.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements');
    expect(prepared.filter((p) => p.statement === text)).toHaveLength(1);
  });
});

it('a text without parameters keeps the simple protocol: several statements still run in one call', async () => {
  await t.db.sql.withSession(async (session) => {
    await session.query('CREATE TEMP TABLE t1 (n int); INSERT INTO t1 VALUES (1), (2)');
    expect(await session.query<{ c: number }>('SELECT count(*)::int AS c FROM t1 WHERE n > $1', [0])).toEqual([{ c: 2 }]);
  });
});
