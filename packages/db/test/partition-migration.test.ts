import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { newId } from '@hookline/domain';
import { createDb, listMigrations, listPartitions, MIGRATIONS_DIR, runMigrations, writeEventBatch, type Db } from '../src';

// Migration 20261207160000_partitioned_history on a database holding data, with
// publishes and deliveries' updates running through it (as the previous
// version's API and workers would, during a rolling upgrade): nothing written
// before or during it is lost, no write fails (they wait for its lock; a
// connection's prepared statements are planned again against the new tables),
// and the old rows end up in the legacy partition. Both ways: the migration
// alone, and after the online preparation docs/operations.md describes (the
// indexes built CONCURRENTLY and the bound validated as a CHECK, with the
// traffic running), which leaves the migration only catalog work.

const PARTITIONED = '20261207160000_partitioned_history';
const serverUrl = () => process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

async function admin(sql: string) {
  const client = new Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const DAY = 86_400_000;

/** The preparation of docs/operations.md ("Partitions"), each statement on its own (CONCURRENTLY runs outside a transaction). */
function preparation(bound: Date): string[] {
  const b = bound.toISOString();
  return [
    'CREATE UNIQUE INDEX CONCURRENTLY events_legacy_id_created_at_key ON events (id, created_at)',
    'CREATE UNIQUE INDEX CONCURRENTLY deliveries_legacy_id_created_at_key ON deliveries (id, created_at)',
    'CREATE UNIQUE INDEX CONCURRENTLY deliveries_legacy_event_id_webhook_id_created_at_key ON deliveries (event_id, webhook_id, created_at)',
    'CREATE UNIQUE INDEX CONCURRENTLY attempts_legacy_id_created_at_key ON attempts (id, created_at)',
    'CREATE UNIQUE INDEX CONCURRENTLY attempts_legacy_delivery_id_attempt_number_created_at_key ON attempts (delivery_id, attempt_number, created_at)',
    ...['events', 'deliveries', 'attempts'].flatMap((t) => [
      `ALTER TABLE ${t} ADD CONSTRAINT ${t}_legacy_created_at_check CHECK (created_at < '${b}') NOT VALID`,
      `ALTER TABLE ${t} VALIDATE CONSTRAINT ${t}_legacy_created_at_check`,
    ]),
  ];
}

describe.each([['alone', false], ['after the online preparation', true]] as const)('the partitioning migration %s, on a populated database with traffic', (_how, prepared) => {
  const name = `hookline_test_pm_${randomBytes(4).toString('hex')}`;
  let migrator: Db;
  let traffic: Db;
  let before: string;
  let through: string;

  beforeAll(async () => {
    await admin(`CREATE DATABASE "${name}"`);
    const parsed = new URL(serverUrl());
    parsed.pathname = `/${name}`;
    migrator = await createDb({ databaseUrl: parsed.toString(), poolSize: 2 });
    traffic = await createDb({ databaseUrl: parsed.toString(), poolSize: 6 });
    // Every migration before the partitioned history: the installation as it is today.
    before = mkdtempSync(join(tmpdir(), 'hookline-pm-'));
    for (const m of listMigrations().filter((x) => x.name < PARTITIONED)) cpSync(join(MIGRATIONS_DIR, m.name), join(before, m.name), { recursive: true });
    await runMigrations(migrator.sql, { dir: before });
    // The same and the partitioned history, which the test runs (the later migrations are not its subject).
    through = mkdtempSync(join(tmpdir(), 'hookline-pm-'));
    for (const m of listMigrations().filter((x) => x.name <= PARTITIONED)) cpSync(join(MIGRATIONS_DIR, m.name), join(through, m.name), { recursive: true });
  }, 180_000);

  afterAll(async () => {
    await traffic?.close();
    await migrator?.close();
    rmSync(before, { recursive: true, force: true });
    rmSync(through, { recursive: true, force: true });
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });

  it('moves every row, and every write made while it runs lands', async () => {
    const accountId = newId('account');
    await migrator.sql.query(`INSERT INTO accounts (id, name, updated_at) VALUES ($1, 'M', now())`, [accountId]);
    for (let i = 0; i < 4; i++) {
      await migrator.sql.query(
        `INSERT INTO webhooks (id, account_id, url, events, signing_secret_enc, updated_at) VALUES ($1, $2, $3, ARRAY['quota.warning'], 'x', now())`,
        [newId('webhook'), accountId, `https://example.com/m/${i}`],
      );
    }
    // History already there: 2,000 events × 4 deliveries, each with an attempt.
    const item = { accountId, event: 'quota.warning', parserId: null, data: { n: 1 } };
    for (let i = 0; i < 20; i++) await writeEventBatch(migrator.sql, Array.from({ length: 100 }, () => item));
    await migrator.sql.exec(`INSERT INTO attempts (id, delivery_id, webhook_id, attempt_number, status, duration_ms, created_at)
      SELECT 'att_' || substr(id, 5), id, webhook_id, 1, 'succeeded', 5, created_at FROM deliveries`);

    // Traffic: publishes, and each published delivery then recorded as sent (update + attempt), until told to stop.
    let stop = false;
    const published: string[] = [];
    const failures: unknown[] = [];
    let slowest = 0;
    const publisher = async () => {
      while (!stop) {
        const started = Date.now();
        try {
          const [w] = await writeEventBatch(traffic.sql, [item]);
          published.push(w!.eventId);
          const id = w!.deliveryIds[0];
          await traffic.sql.query(`UPDATE deliveries SET status = 'succeeded', attempt_count = 1, completed_at = now() WHERE id = $1`, [id]);
          await traffic.sql.query(
            `INSERT INTO attempts (id, delivery_id, webhook_id, attempt_number, status, duration_ms, created_at) VALUES ($1, $2, $3, 1, 'succeeded', 5, now())`,
            [newId('attempt'), id, w!.webhookIds[0]],
          );
        } catch (err) {
          // Kept few, and a pause: a pool closed under a loop that outlived its test must not spin.
          if (failures.length < 20) failures.push(err);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        slowest = Math.max(slowest, Date.now() - started);
      }
    };
    const running = [publisher(), publisher(), publisher()];
    // Two UTC midnights ahead: the upgrade must come before it (rows at or after it would fail the CHECK).
    const bound = new Date(Math.floor(Date.now() / DAY) * DAY + 2 * DAY);
    let migrating = 0;
    let tookMs = 0;
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (prepared) for (const statement of preparation(bound)) await migrator.sql.exec(statement);
      migrating = Date.now();
      expect(await runMigrations(migrator.sql, { dir: through })).toEqual([PARTITIONED]);
      tookMs = Date.now() - migrating;
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      stop = true;
      await Promise.all(running);
    }

    expect(failures).toEqual([]);
    expect(published.length).toBeGreaterThan(10);
    // Nothing lost: every event, each with its 4 deliveries, each delivery with its attempt.
    const [counts] = await migrator.sql.query<{ events: number; deliveries: number; attempts: number; sent: number }>(
      `SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM deliveries)::int AS deliveries,
              (SELECT count(*) FROM attempts)::int AS attempts,
              (SELECT count(*) FROM events WHERE id = ANY($1::text[]))::int AS sent`,
      [published],
    );
    expect(counts.sent).toBe(published.length);
    expect(counts.events).toBe(2000 + published.length);
    expect(counts.deliveries).toBe(4 * counts.events);
    expect(counts.attempts).toBe(8000 + published.length);
    const [kind] = await migrator.sql.query<{ relkind: string }>(`SELECT relkind FROM pg_class WHERE relname = 'deliveries'`);
    expect(kind.relkind).toBe('p');
    const [legacy] = await listPartitions(migrator.sql, 'deliveries');
    expect(legacy.partition).toBe('deliveries_legacy');
    // Prepared: the legacy partition ends at the validated bound (ATTACH read no row); else at the next UTC midnight.
    expect(legacy.upperBound).toEqual(prepared ? bound : new Date(Math.floor(migrating / DAY) * DAY + DAY));
    const [inLegacy] = await migrator.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM deliveries_legacy');
    expect(inLegacy.n).toBe(counts.deliveries);
    // The writes waited for the migration's lock at most as long as it ran.
    expect(slowest).toBeLessThan(tookMs + 2_000);
  }, 300_000);
});
