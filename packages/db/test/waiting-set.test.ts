import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '@hookline/domain';
import { createDb, ensurePartitions, listMigrations, listPartitions, MIGRATIONS_DIR, runMigrations, writeEventBatch, type Db } from '../src';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// The waiting set (migration 20261208010000_waiting_set, docs/operations.md,
// "The waiting set"): a trigger on deliveries keeps waiting_deliveries, one row
// per pending or pending_retry delivery, whoever writes the delivery. Once the
// contract step has dropped the partial index, the update that ends a delivery
// is HOT. On PostgreSQL and on PGlite.

const WAITING_SET = '20261208010000_waiting_set';

type WaitingRow = { id: string; webhook_id: string; event_id: string; status: string; next_attempt_at: Date | null; created_at: Date };

async function seed(db: Db): Promise<{ accountId: string; webhookId: string }> {
  const accountId = newId('account');
  const webhookId = newId('webhook');
  await db.sql.query(`INSERT INTO accounts (id, name, updated_at) VALUES ($1, 'W', now())`, [accountId]);
  await db.sql.query(
    `INSERT INTO webhooks (id, account_id, url, events, signing_secret_enc, updated_at) VALUES ($1, $2, 'https://example.com/w', ARRAY['quota.warning'], 'x', now())`,
    [webhookId, accountId],
  );
  return { accountId, webhookId };
}

async function waitingRows(db: Db, ids: string[]): Promise<WaitingRow[]> {
  return db.sql.query<WaitingRow>('SELECT id, webhook_id, event_id, status, next_attempt_at, created_at FROM waiting_deliveries WHERE id = ANY($1::text[]) ORDER BY id', [ids]);
}

async function deliveryOf(db: Db, id: string) {
  const [row] = await db.sql.query<WaitingRow>('SELECT id, webhook_id, event_id, status, next_attempt_at, created_at FROM deliveries WHERE id = $1', [id]);
  return row;
}

/** The ending update of one delivery, in a transaction of its own; whether PostgreSQL made it a HOT update. */
async function endIsHot(db: Db, id: string): Promise<boolean> {
  return db.sql.withSession(async (sql) => {
    await sql.exec('BEGIN');
    try {
      const [{ part }] = await sql.query<{ part: string }>('SELECT tableoid::regclass::text AS part FROM deliveries WHERE id = $1', [id]);
      // The backend's counts not yet flushed (this transaction's and maybe earlier ones'): read around the update.
      const counts = async () => {
        const [row] = await sql.query<{ updated: string; hot: string }>(
          'SELECT pg_stat_get_xact_tuples_updated($1::regclass) AS updated, pg_stat_get_xact_tuples_hot_updated($1::regclass) AS hot',
          [part],
        );
        return { updated: Number(row.updated), hot: Number(row.hot) };
      };
      const before = await counts();
      await sql.query(
        `UPDATE deliveries SET status = 'succeeded', attempt_count = attempt_count + 1, next_attempt_at = NULL,
                last_attempt_at = now(), completed_at = now(), updated_at = NULL WHERE id = $1`,
        [id],
      );
      const after = await counts();
      expect(after.updated - before.updated).toBe(1);
      return after.hot - before.hot === 1;
    } finally {
      await sql.exec('COMMIT');
    }
  });
}

const stores: [string, (contract: boolean) => Promise<{ db: Db; done: () => Promise<void> }>][] = [
  ['PostgreSQL', async (contract) => {
    const t: TestDatabase = await createTestDatabase({ poolSize: 3, contract });
    return { db: t.db, done: () => t.drop() };
  }],
  ['PGlite', async (contract) => {
    const db = await createDb({ pgliteDir: 'memory://' });
    await runMigrations(db.sql, { contract });
    return { db, done: () => db.close() };
  }],
];

describe.each(stores)('on %s', (_name, open) => {
  let db: Db;
  let done: () => Promise<void>;
  let accountId: string;
  beforeAll(async () => {
    ({ db, done } = await open(true));
    ({ accountId } = await seed(db));
  }, 60_000);
  afterAll(async () => done?.());

  it('a published delivery is in the waiting set with its webhook, event, status, next attempt and time', async () => {
    const [written] = await writeEventBatch(db.sql, [{ accountId, event: 'quota.warning', parserId: null, data: { n: 1 } }]);
    const [id] = written!.deliveryIds;
    const delivery = await deliveryOf(db, id);
    expect(await waitingRows(db, [id])).toEqual([delivery]);
    expect(delivery.status).toBe('pending');
  });

  it('a retry moves its row; an ended, cancelled or deleted delivery leaves the set; one written ended never enters it', async () => {
    const [written] = await writeEventBatch(db.sql, [{ accountId, event: 'quota.warning', parserId: null, data: { n: 2 } }]);
    const [retried] = written!.deliveryIds;
    await db.sql.query(`UPDATE deliveries SET status = 'pending_retry', attempt_count = 1, next_attempt_at = now() + interval '1 hour' WHERE id = $1`, [retried]);
    const [row] = await waitingRows(db, [retried]);
    expect(row).toEqual(await deliveryOf(db, retried));
    expect(row.status).toBe('pending_retry');
    expect(row.next_attempt_at!.getTime()).toBeGreaterThan(Date.now() + 3_000_000);

    // Another column of a waiting delivery changes: the row stays as it is.
    await db.sql.query('UPDATE deliveries SET attempt_count = 2 WHERE id = $1', [retried]);
    expect(await waitingRows(db, [retried])).toEqual([row]);

    await db.sql.query(`UPDATE deliveries SET status = 'succeeded', next_attempt_at = NULL, completed_at = now() WHERE id = $1`, [retried]);
    expect(await waitingRows(db, [retried])).toEqual([]);

    const [again] = await writeEventBatch(db.sql, [{ accountId, event: 'quota.warning', parserId: null, data: { n: 3 } }]);
    const [cancelled] = again!.deliveryIds;
    await db.sql.query(`UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL WHERE id = $1`, [cancelled]);
    expect(await waitingRows(db, [cancelled])).toEqual([]);

    const [third] = await writeEventBatch(db.sql, [{ accountId, event: 'quota.warning', parserId: null, data: { n: 4 } }]);
    const [deleted] = third!.deliveryIds;
    expect(await waitingRows(db, [deleted])).toHaveLength(1);
    await db.sql.query('DELETE FROM deliveries WHERE id = $1', [deleted]);
    expect(await waitingRows(db, [deleted])).toEqual([]);

    const { webhookId } = await seed(db);
    const ended = newId('delivery');
    await db.sql.query(
      `INSERT INTO deliveries (id, webhook_id, event_id, status, created_at) VALUES ($1, $2, $3, 'failed', now())`,
      [ended, webhookId, third!.eventId],
    );
    expect(await waitingRows(db, [ended])).toEqual([]);
  });

  it('a partition made ahead keeps the set too', async () => {
    await ensurePartitions(db);
    const partitions = await listPartitions(db.sql, 'deliveries');
    const ahead = partitions[partitions.length - 1];
    const { webhookId } = await seed(db);
    const id = newId('delivery');
    const at = new Date(ahead.lowerBound!.getTime() + 60_000);
    await db.sql.query(
      `INSERT INTO deliveries (id, webhook_id, event_id, status, next_attempt_at, created_at) VALUES ($1, $2, $3, 'pending', $4, $4)`,
      [id, webhookId, newId('event'), at],
    );
    const [row] = await db.sql.query<{ part: string }>('SELECT tableoid::regclass::text AS part FROM deliveries WHERE id = $1', [id]);
    expect(row.part).toBe(ahead.partition);
    expect(await waitingRows(db, [id])).toEqual([await deliveryOf(db, id)]);
    await db.sql.query('DELETE FROM deliveries WHERE id = $1', [id]);
  });

  it('partitions of deliveries keep room for the ending versions (fillfactor 90), those made ahead too', async () => {
    await ensurePartitions(db);
    const rows = await db.sql.query<{ part: string; options: string[] | null }>(
      `SELECT c.relname AS part, c.reloptions AS options FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'deliveries'::regclass`,
    );
    expect(rows.length).toBeGreaterThan(2);
    for (const row of rows) expect([row.part, row.options]).toEqual([row.part, ['fillfactor=90']]);
  });

  it('the partition drop reads the waiting set: a partition it names is kept, and dropped once it names none', async () => {
    await ensurePartitions(db);
    const partitions = await listPartitions(db.sql, 'deliveries');
    const ahead = partitions[partitions.length - 1];
    const id = newId('delivery');
    // A row of the waiting set alone (no delivery behind it): only the set can have kept the partition.
    await db.sql.query(
      `INSERT INTO waiting_deliveries (id, created_at, webhook_id, event_id, status, next_attempt_at) VALUES ($1, $2, 'wh_x', 'evt_x', 'pending', $2)`,
      [id, new Date(ahead.lowerBound!.getTime() + 1_000)],
    );
    const drop = () => db.sql.query<{ kept: boolean; reason: string | null }>('SELECT kept, reason FROM hookline_drop_partition($1, $2)', ['deliveries', ahead.partition]);
    expect(await drop()).toEqual([{ kept: true, reason: 'a waiting delivery' }]);
    await db.sql.query('DELETE FROM waiting_deliveries WHERE id = $1', [id]);
    expect(await drop()).toEqual([{ kept: false, reason: null }]);
    expect((await listPartitions(db.sql, 'deliveries')).map((p) => p.partition)).not.toContain(ahead.partition);
    await ensurePartitions(db);
  });

  it('after the contract step the update that ends a delivery is HOT; before it, the partial index makes it not', async () => {
    const [written] = await writeEventBatch(db.sql, [{ accountId, event: 'quota.warning', parserId: null, data: { n: 5 } }]);
    expect(await endIsHot(db, written!.deliveryIds[0])).toBe(true);
    expect(await waitingRows(db, written!.deliveryIds)).toEqual([]);

    const before = await open(false);
    try {
      const { accountId: other } = await seed(before.db);
      const [old] = await writeEventBatch(before.db.sql, [{ accountId: other, event: 'quota.warning', parserId: null, data: { n: 6 } }]);
      expect(await endIsHot(before.db, old!.deliveryIds[0])).toBe(false);
      expect(await waitingRows(before.db, old!.deliveryIds)).toEqual([]);
    } finally {
      await before.done();
    }
  }, 60_000);
});

describe('the migration on a database holding deliveries (PostgreSQL)', () => {
  let t: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    t = await createTestDatabase({ poolSize: 3, contract: false });
    dir = mkdtempSync(join(tmpdir(), 'hookline-ws-'));
  }, 60_000);
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t?.drop();
  });

  it('puts every waiting delivery, and only those, in the set', async () => {
    // The database as the previous version left it: the migration and its trigger undone, the set emptied.
    await t.db.sql.exec(`DROP TRIGGER deliveries_track_waiting ON deliveries; DROP FUNCTION hookline_track_waiting(); DROP TABLE waiting_deliveries; DELETE FROM "_prisma_migrations" WHERE migration_name = '${WAITING_SET}'`);
    const { accountId } = await seed(t.db);
    await seed(t.db);
    const written = await writeEventBatch(t.db.sql, [1, 2, 3].map((n) => ({ accountId, event: 'quota.warning', parserId: null, data: { n } })));
    const ids = written.flatMap((w) => w?.deliveryIds ?? []);
    expect(ids).toHaveLength(3);
    await t.db.sql.query(`UPDATE deliveries SET status = 'succeeded', next_attempt_at = NULL WHERE id = $1`, [ids[0]]);
    await t.db.sql.query(`UPDATE deliveries SET status = 'pending_retry', next_attempt_at = now() + interval '5 minutes' WHERE id = $1`, [ids[1]]);

    for (const m of listMigrations().filter((x) => x.name === WAITING_SET)) cpSync(join(MIGRATIONS_DIR, m.name), join(dir, m.name), { recursive: true });
    expect(await runMigrations(t.db.sql, { dir })).toEqual([WAITING_SET]);
    const rows = await waitingRows(t.db, ids);
    expect(rows.map((r) => r.id).sort()).toEqual([ids[1], ids[2]].sort());
    for (const row of rows) expect(row).toEqual(await deliveryOf(t.db, row.id));
  });
});
