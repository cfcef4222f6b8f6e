// `npm run bench -- --scenario storage`: what history costs in PostgreSQL.
//
// 1. Bytes per delivery. For each payload size of --payloads (default 50 and
//    4096 bytes of event data), a fresh deployment (API and one worker as
//    separate processes, as in production): one account with --hooks H webhooks
//    on the bench receiver, --events N events published with an Idempotency-Key
//    each (the platform's way), every callback delivered once (one succeeded
//    attempt per delivery). Then the sum of pg_total_relation_size (heap, TOAST
//    and every index) of every table of the database, divided by the deliveries;
//    also without idempotency_records (they expire after a day), and per table
//    and per index. Measured as the run leaves the tables (each delivery was
//    written, then updated once when it succeeded; autovacuum as configured), and
//    again after VACUUM FULL (the same rows, compacted).
// 2. Retention, on the first payload size's database: a day holding --day D
//    deliveries (copies of the delivered rows, with their events and attempts,
//    created RETENTION + 1 day ago), then the sweeper's own batched DELETE
//    statement (apps/worker/src/retention.ts, RETENTION_SQL.events, 500 events a
//    statement, no pause between statements) until that day is gone: statements,
//    seconds, deliveries/s and WAL written. The sweeper in production pauses
//    100 ms between statements and stops a sweep after 2 minutes: add
//    statements × 0.1 s for its wall time.
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { unpackPayload } from '../../packages/db/src/payload';
import { RETENTION_SQL } from '../../apps/worker/src/retention';
import { publish } from './http';
import { createStack } from './stack';
import { progress, sleep, startBenchReceiver, waitUntil } from './support';
import { createFanOut } from './throughput';

export type StorageOptions = {
  events: number;
  hooks: number;
  /** Bytes of event data to pad to, one run each; 0 or anything under the bare payload means the bare ~50 bytes. */
  payloads: number[];
  /** Deliveries in the day the retention phase removes; 0 skips the phase. */
  day: number;
  concurrency: number;
  /** COMPACT_HISTORY for the API and the worker (docs/operations.md, "Rolling upgrades and the compact history"). */
  compact: boolean;
};

const RETENTION_MS = 30 * 86_400_000;
const SWEEP_BATCH = 500;
const PUBLISH_IN_FLIGHT = 64;

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

type Size = { table: string; heap: number; toast: number; indexes: number; total: number };
type IndexSize = { table: string; index: string; bytes: number };

/** Every table of the public schema (a partitioned table's partitions count under their own names). */
async function tableSizes(db: Client): Promise<Size[]> {
  const { rows } = await db.query<{ table: string; heap: string; toast: string; indexes: string; total: string }>(`
    SELECT c.relname AS table, pg_relation_size(c.oid) AS heap,
           COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0) AS toast,
           pg_indexes_size(c.oid) AS indexes, pg_total_relation_size(c.oid) AS total
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind = 'r'
     ORDER BY pg_total_relation_size(c.oid) DESC`);
  return rows.map((r) => ({ table: r.table, heap: Number(r.heap), toast: Number(r.toast), indexes: Number(r.indexes), total: Number(r.total) }));
}

async function indexSizes(db: Client): Promise<IndexSize[]> {
  const { rows } = await db.query<{ table: string; index: string; bytes: string }>(`
    SELECT t.relname AS table, i.relname AS index, pg_relation_size(i.oid) AS bytes
      FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = 'public' AND t.relkind = 'r'
     ORDER BY pg_relation_size(i.oid) DESC`);
  return rows.map((r) => ({ table: r.table, index: r.index, bytes: Number(r.bytes) }));
}

async function count(db: Client, table: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(rows[0].n);
}

export async function runStorage(opts: StorageOptions): Promise<void> {
  console.log(`storage: ${fmt(opts.events)} events × ${opts.hooks} webhooks, Idempotency-Key on every publish; payloads ${opts.payloads.join(', ')} bytes; retention day of ${fmt(opts.day)} deliveries; COMPACT_HISTORY=${opts.compact}`);
  for (const [i, pad] of opts.payloads.entries()) await measureOne(opts, pad, i === 0 ? opts.day : 0);
}

async function measureOne(opts: StorageOptions, padBytes: number, day: number): Promise<void> {
  const stack = await createStack({
    concurrency: opts.concurrency,
    env: { MAX_WEBHOOKS_PER_ACCOUNT: String(Math.max(100, opts.hooks)), COMPACT_HISTORY: String(opts.compact) },
    reasons: { MAX_WEBHOOKS_PER_ACCOUNT: 'room for --hooks webhooks on one account', COMPACT_HISTORY: 'the run\'s --compact' },
  });
  const receiver = await startBenchReceiver({ track: false });
  const db = new Client({ connectionString: stack.env.DATABASE_URL });
  try {
    await stack.startApi();
    await db.connect();
    const accountId = await createFanOut(stack, receiver, { hooks: opts.hooks });
    stack.spawn('apps/worker/src/main.ts', {}, 'worker');
    await publish(stack.port, stack.token, accountId, opts.events, PUBLISH_IN_FLIGHT, `storage (${padBytes} B)`, { idempotency: true, deliveries: opts.hooks, padBytes });
    const expected = opts.events * opts.hooks;
    await waitUntil(() => receiver.total >= expected, 600_000, `${fmt(expected)} callbacks`, 250);
    await waitUntil(async () => (await db.query(`SELECT 1 FROM deliveries WHERE status <> 'succeeded' LIMIT 1`)).rowCount === 0, 60_000, 'every delivery recorded');
    progress('');
    await sleep(1_000);

    const deliveries = await count(db, 'deliveries');
    const attempts = await count(db, 'attempts');
    // The events' JSON as sent (a compressed one unpacked), over a sample; and how many are stored compressed.
    const { rows: sample } = await db.query<{ data: unknown; data_z: Buffer | null }>('SELECT data, data_z FROM events ORDER BY id LIMIT 500');
    const payload = { bytes: Math.round(sample.reduce((sum, row) => sum + Buffer.byteLength(JSON.stringify(unpackPayload(row.data, row.data_z))), 0) / Math.max(1, sample.length)) };
    const { rows: [packed] } = await db.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE data_z IS NOT NULL');
    const sizes = await tableSizes(db);
    const all = sizes.reduce((sum, s) => sum + s.total, 0);
    const withoutKeys = sizes.filter((s) => s.table !== 'idempotency_records').reduce((sum, s) => sum + s.total, 0);
    console.log(`\nstorage, event data ~${payload.bytes} bytes (as JSON text): ${fmt(deliveries)} deliveries, ${fmt(attempts)} attempts; ${fmt(Number(packed.n))} events stored compressed`);
    console.log(`  bytes per delivery, every table and index: ${fmt(all / deliveries)}`);
    console.log(`  bytes per delivery without idempotency_records: ${fmt(withoutKeys / deliveries)}`);
    console.log('  table                       heap      toast    indexes      total   per delivery');
    for (const s of sizes.filter((x) => x.total > 16_384)) {
      console.log(`  ${s.table.padEnd(22)} ${[s.heap, s.toast, s.indexes, s.total].map((n) => fmt(n).padStart(10)).join(' ')} ${fmt(s.total / deliveries).padStart(14)}`);
    }
    console.log('  index                                              bytes   per delivery');
    for (const x of (await indexSizes(db)).filter((r) => r.bytes > 16_384)) {
      console.log(`  ${x.index.padEnd(45)} ${fmt(x.bytes).padStart(10)} ${fmt(x.bytes / deliveries).padStart(14)}`);
    }
    // The run's burst leaves every delivery's first version (written pending, updated
    // once) as dead space not yet reused; a history of many days is mostly rows
    // written long ago and compacted by autovacuum's reuse. VACUUM FULL gives that floor.
    await db.query('VACUUM FULL');
    const compact = await tableSizes(db);
    const compactAll = compact.reduce((sum, s) => sum + s.total, 0);
    const compactKeys = compact.filter((s) => s.table !== 'idempotency_records').reduce((sum, s) => sum + s.total, 0);
    console.log(`  after VACUUM FULL: ${fmt(compactAll / deliveries)} bytes per delivery, ${fmt(compactKeys / deliveries)} without idempotency_records (${compact.slice(0, 4).map((s) => `${s.table} ${fmt(s.total / deliveries)}`).join(', ')})`);
    if (day > 0) await measureRetention(db, day, deliveries);
  } finally {
    await db.end().catch(() => undefined);
    await receiver.close();
    await stack.close();
  }
}

/**
 * Copies of the delivered rows (events, deliveries, attempts), each copy with
 * ids suffixed `.k` and created in one day RETENTION + 1 day ago, whatever the
 * schema's columns (a row goes through jsonb and back).
 */
async function fillDay(db: Client, day: number, perCopy: number): Promise<void> {
  const copies = Math.max(1, Math.round(day / perCopy));
  const copy = (table: string, overrides: string) => `
    INSERT INTO ${table}
    SELECT (jsonb_populate_record(NULL::${table}, to_jsonb(t) || jsonb_build_object(${overrides}))).*
      FROM ${table} t WHERE t.id NOT LIKE '%.%'`;
  const at = `'created_at', now() - interval '${RETENTION_MS / 1000} seconds' - interval '1 day' + $1::int * interval '1 second'`;
  const started = performance.now();
  for (let k = 1; k <= copies; k++) {
    progress(`retention: writing the day, copy ${k}/${copies}`);
    await db.query('BEGIN');
    await db.query(copy('events', `'id', t.id || '.' || $1, ${at}`), [k]);
    await db.query(copy('deliveries', `'id', t.id || '.' || $1, 'event_id', t.event_id || '.' || $1, ${at}`), [k]);
    await db.query(copy('attempts', `'id', t.id || '.' || $1, 'delivery_id', t.delivery_id || '.' || $1, ${at}`), [k]);
    await db.query('COMMIT');
  }
  progress('');
  console.log(`\nretention: wrote a day of ${fmt(copies * perCopy)} deliveries (${copies} copies) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

async function measureRetention(db: Client, day: number, perCopy: number): Promise<void> {
  await fillDay(db, day, perCopy);
  await db.query('VACUUM ANALYZE');
  const old = await db.query<{ n: string }>(`SELECT count(*) AS n FROM deliveries WHERE id LIKE '%.%'`);
  const doomed = Number(old.rows[0].n);
  const { rows: [before] } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn');
  let statements = 0;
  let deleted = 0;
  let slowest = 0;
  const started = performance.now();
  for (;;) {
    const t0 = performance.now();
    const { rows: [row] } = await db.query<{ events: number; deliveries: number }>(RETENTION_SQL.events, [RETENTION_MS, SWEEP_BATCH]);
    slowest = Math.max(slowest, performance.now() - t0);
    statements++;
    deleted += row.deliveries;
    if (statements % 20 === 0) progress(`retention: ${fmt(deleted)}/${fmt(doomed)} deliveries deleted`);
    if (row.events < SWEEP_BATCH) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const { rows: [wal] } = await db.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS bytes', [before.lsn]);
  progress('');
  console.log(`retention: deleted ${fmt(deleted)} deliveries (with their events and attempts) in ${statements} statements, ${seconds.toFixed(1)} s of statements (${fmt(deleted / seconds)} deliveries/s, slowest statement ${slowest.toFixed(0)} ms); WAL written ${fmt(Number(wal.bytes) / 1048576)} MB`);
  console.log(`retention: with the sweeper's 100 ms pause between statements that is ${(seconds + statements * 0.1).toFixed(0)} s of wall time, ${Math.ceil((seconds + statements * 0.1) / 120)} sweeps of at most 2 minutes`);
}
