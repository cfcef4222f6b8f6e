import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// A session (withSession: the relay's and the sweeper's advisory locks) whose
// connection PostgreSQL drops (a restart, a terminated backend): the loss
// reaches the session's own query as an error, never as an uncaught 'error'
// event that would end the worker process, and the pool goes on with a new
// connection.

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase({ poolSize: 2 });
});
afterAll(() => t?.drop());

it('a session whose connection is terminated fails its next query, and the process and the pool go on', async () => {
  const admin = new Client({ connectionString: t.url });
  await admin.connect();
  try {
    const outcome = await t.db.sql.withSession(async (session) => {
      const [{ pid }] = await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      // The backend is gone (and its goodbye read) while the session is idle, between two queries.
      for (;;) {
        const { rows } = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
        if (rows.length === 0) break;
      }
      return session.query('SELECT 1').then(() => 'answered', (err: Error) => `failed: ${err.message}`);
    });
    expect(outcome).toMatch(/^failed: /);
    expect(await t.db.sql.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(await t.db.sql.withSession((session) => session.query<{ one: number }>('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
  } finally {
    await admin.end();
  }
});
