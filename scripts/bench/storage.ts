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
// 2. Retention, on the first payload size's database, with the API and the
//    worker stopped: two whole days older than RETENTION, each its own partition
//    of events, deliveries and attempts, each holding --day D deliveries (copies
//    of the delivered rows, with their events and attempts). The first day goes by
//    the batched DELETE the sweeper used before partitions (apps/worker/src/retention.ts,
//    RETENTION_SQL.events, 500 events a statement, no pause between statements)
//    until it is gone: statements, seconds, deliveries/s and WAL written. (The
//    sweeper in production pauses 100 ms between statements and stops a sweep
//    after 2 minutes: add statements × 0.1 s for its wall time.) The second day
//    goes by the sweeper's partition drop (dropPartitions: hookline_drop_partition
//    per table, its check for waiting deliveries, DETACH, DROP): seconds and WAL.
//    Then both and their ratio.
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { unpackPayload } from '../../packages/db/src/payload';
import { RETENTION_SQL } from '../../apps/worker/src/retention';
import { dropPartitions } from '../../packages/db/src/partitions';
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
    // The waiting set holds only what waits (nothing now): its dead rows go at the relay's next vacuum of it (every 10 s).
    const waitingBytes = async () => Number((await db.query<{ n: string }>(`SELECT pg_total_relation_size('waiting_deliveries') AS n`)).rows[0].n);
    await waitUntil(async () => (await waitingBytes()) <= 65_536, 30_000, 'the relay\'s vacuum of the waiting set', 500).catch(() => undefined);

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
    // What grows with the history kept: events, deliveries, attempts (their partitions) and the keys' records. Not the
    // waiting set (the deliveries waiting now; its index pages, once emptied, are reused by the next rows), the partitions
    // made ahead while empty, nor the small tables: their size does not grow with the deliveries.
    const history = sizes.filter((s) => (/^(events|deliveries|attempts)_/.test(s.table) && s.heap > 0) || s.table === 'idempotency_records').reduce((sum, s) => sum + s.total, 0);
    console.log(`  bytes per delivery of the history (events, deliveries, attempts, idempotency_records): ${fmt(history / deliveries)}`);
    // Of the updates of deliveries flushed to the statistics so far (a backend reports within seconds), the HOT ones: no index entry, the new version on the same page.
    const { rows: [upd] } = await db.query<{ upd: string; hot: string }>(
      `SELECT COALESCE(sum(n_tup_upd), 0) AS upd, COALESCE(sum(n_tup_hot_upd), 0) AS hot FROM pg_stat_user_tables WHERE relname LIKE 'deliveries%'`);
    console.log(`  updates of deliveries that were HOT: ${fmt(Number(upd.hot))} of ${fmt(Number(upd.upd))} (${Number(upd.upd) ? Math.round((100 * Number(upd.hot)) / Number(upd.upd)) : 0}%)`);
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
    if (day > 0) {
      // Nothing else runs on the database meanwhile (the worker's own sweeper would take the old days).
      await stack.stopChildren();
      await measureRetention(db, day, deliveries);
    }
  } finally {
    await db.end().catch(() => undefined);
    await receiver.close();
    await stack.close();
  }
}

const DAY_MS = 86_400_000;
const SECOND = 1_000;

type Runner = { query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> };
const runnerOf = (db: Client): Runner => ({ query: async <T>(text: string, params?: unknown[]) => (await db.query(text, params)).rows as T[] });
const ymd = (d: Date) => d.toISOString().slice(0, 10).replace(/-/g, '');

/**
 * Two whole UTC days older than RETENTION, `first` and `first` + 1 day, each a
 * partition of its own in events, deliveries and attempts, as the partition
 * manager makes them (a table LIKE the parent, then attached). The bench's
 * database was migrated today, so its first partition (the legacy one, which
 * holds the delivered rows) spans everything before the next midnight: it is
 * detached and attached again from the end of the second day on (it holds no
 * older row), which makes room for the two days.
 */
async function makeOldDays(db: Client, first: Date): Promise<void> {
  const end = new Date(first.getTime() + 2 * DAY_MS);
  for (const t of ['events', 'deliveries', 'attempts']) {
    const { rows: [oldest] } = await db.query<{ name: string; upper_bound: Date }>('SELECT name, upper_bound FROM hookline_partitions($1) ORDER BY upper_bound LIMIT 1', [t]);
    await db.query('BEGIN');
    await db.query(`ALTER TABLE ${t} DETACH PARTITION ${oldest.name}`);
    await db.query(`ALTER TABLE ${t} ATTACH PARTITION ${oldest.name} FOR VALUES FROM ('${end.toISOString()}') TO ('${oldest.upper_bound.toISOString()}')`);
    for (const day of [first, new Date(first.getTime() + DAY_MS)]) {
      const part = `${t}_p${ymd(day)}`;
      await db.query(`CREATE TABLE ${part} (LIKE ${t} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
      await db.query(`ALTER TABLE ${t} ATTACH PARTITION ${part} FOR VALUES FROM ('${day.toISOString()}') TO ('${new Date(day.getTime() + DAY_MS).toISOString()}')`);
    }
    await db.query('COMMIT');
  }
}

/**
 * Copies of the delivered rows (events, deliveries, attempts) into each of
 * `days`: copy k of day i has ids suffixed `.<i><k>` and is created at noon
 * of that day + k seconds, whatever the schema's columns (a row goes through
 * jsonb and back). The copies are read from the delivered rows only (created
 * after the days, so the partitions being filled are pruned from the read).
 */
async function fillDays(db: Client, days: Date[], day: number, perCopy: number): Promise<number> {
  const copies = Math.max(1, Math.round(day / perCopy));
  const after = new Date(days[days.length - 1].getTime() + DAY_MS).toISOString();
  const copy = (table: string, overrides: string) => `
    INSERT INTO ${table}
    SELECT (jsonb_populate_record(NULL::${table}, to_jsonb(t) || jsonb_build_object(${overrides}))).*
      FROM ${table} t WHERE t.created_at >= '${after}' AND t.id NOT LIKE '%.%'`;
  // $1 = the suffix, $2 = the day's noon + k seconds.
  const at = `'created_at', $2::timestamptz`;
  const started = performance.now();
  for (let k = 1; k <= copies; k++) {
    const elapsed = (performance.now() - started) / 1000;
    progress(`retention: writing the days, copy ${k}/${copies} of each (${fmt((k - 1) * perCopy * days.length)} deliveries in ${elapsed.toFixed(0)} s)`);
    await db.query('BEGIN');
    for (const [i, d] of days.entries()) {
      const params = [`${String.fromCharCode(97 + i)}${k}`, new Date(d.getTime() + DAY_MS / 2 + k * SECOND)];
      await db.query(copy('events', `'id', t.id || '.' || $1, ${at}`), params);
      await db.query(copy('deliveries', `'id', t.id || '.' || $1, 'event_id', t.event_id || '.' || $1, ${at}`), params);
      await db.query(copy('attempts', `'id', t.id || '.' || $1, 'delivery_id', t.delivery_id || '.' || $1, ${at}`), params);
    }
    await db.query('COMMIT');
  }
  progress('');
  console.log(`\nretention: wrote ${days.length} days of ${fmt(copies * perCopy)} deliveries each (${copies} copies of the delivered rows, with their events and attempts) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return copies * perCopy;
}

const walSince = async (db: Client, lsn: string) =>
  Number((await db.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS bytes', [lsn])).rows[0].bytes);
const walNow = async (db: Client) => (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn')).rows[0].lsn;

/**
 * Two ways to remove an old day, on the same data in the same run: two days
 * older than RETENTION, each its own partitions, each filled with the same
 * `day` deliveries. The first day is removed by the batched DELETE the sweeper
 * used before partitions (and still uses for what partitions do not cover), to
 * its end; the second by the sweeper's partition drop (dropPartitions →
 * hookline_drop_partition: the check for waiting deliveries, detach, drop).
 */
async function measureRetention(db: Client, day: number, perCopy: number): Promise<void> {
  const first = new Date(Math.floor((Date.now() - RETENTION_MS) / DAY_MS) * DAY_MS - 2 * DAY_MS);
  const second = new Date(first.getTime() + DAY_MS);
  await makeOldDays(db, first);
  await fillDays(db, [first, second], day, perCopy);
  progress('retention: VACUUM ANALYZE');
  await db.query('VACUUM ANALYZE');
  progress('');
  const inDay = async (d: Date) => Number((await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM deliveries WHERE created_at >= $1 AND created_at < $2', [d, new Date(d.getTime() + DAY_MS)])).rows[0].n);
  const doomed = await inDay(first);
  const { rows: parts } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM hookline_partitions('deliveries')`);

  // 1. The batched DELETE, RETENTION_SQL.events with the cutoff at the first day's end (recomputed
  //    per statement, as now() moves): oldest events first, 500 a statement, with their deliveries and attempts.
  let lsn = await walNow(db);
  let statements = 0;
  let deleted = 0;
  let slowest = 0;
  let started = performance.now();
  const firstEnd = first.getTime() + DAY_MS;
  for (;;) {
    const t0 = performance.now();
    const { rows: [row] } = await db.query<{ events: number; deliveries: number }>(RETENTION_SQL.events, [Date.now() - firstEnd, SWEEP_BATCH]);
    slowest = Math.max(slowest, performance.now() - t0);
    statements++;
    deleted += row.deliveries;
    if (statements % 20 === 0) {
      const s = (performance.now() - started) / 1000;
      progress(`retention, batched DELETE: ${fmt(deleted)}/${fmt(doomed)} deliveries deleted in ${s.toFixed(0)} s (${fmt(deleted / s)}/s)`);
    }
    if (row.events < SWEEP_BATCH) break;
  }
  const deleteSeconds = (performance.now() - started) / 1000;
  const deleteWal = await walSince(db, lsn);
  progress('');
  if (await inDay(first) !== 0) throw new Error('the batched DELETE left deliveries of the first day');
  console.log(`retention, batched DELETE (the sweeper's RETENTION_SQL.events, ${SWEEP_BATCH} events a statement, no pause; ${parts[0].n} partitions per table): deleted ${fmt(deleted)} deliveries (with their events and attempts) in ${statements} statements, ${deleteSeconds.toFixed(1)} s (${fmt(deleted / deleteSeconds)} deliveries/s, slowest statement ${slowest.toFixed(0)} ms); WAL written ${fmt(deleteWal / 1048576)} MB`);
  console.log(`retention, batched DELETE: with the sweeper's 100 ms pause between statements that is ${(deleteSeconds + statements * 0.1).toFixed(0)} s of wall time, ${Math.ceil((deleteSeconds + statements * 0.1) / 120)} sweeps of at most 2 minutes`);
  // The first day's partitions, emptied: the sweeper drops them next (not part of either figure).
  const emptied = await dropPartitions(runnerOf(db), new Date(firstEnd));
  if (emptied.length !== 3 || emptied.some((p) => p.kept)) throw new Error(`the emptied day's partitions: ${JSON.stringify(emptied)}`);

  // 2. The partition drop: what the sweeper runs for a day wholly older than RETENTION.
  const dropping = await inDay(second);
  lsn = await walNow(db);
  started = performance.now();
  const dropped = await dropPartitions(runnerOf(db), new Date(second.getTime() + DAY_MS));
  const dropSeconds = (performance.now() - started) / 1000;
  const dropWal = await walSince(db, lsn);
  if (dropped.length !== 3 || dropped.some((p) => p.kept)) throw new Error(`the partition drop: ${JSON.stringify(dropped)}`);
  console.log(`retention, partition drop (dropPartitions: hookline_drop_partition on ${dropped.map((p) => p.partition).join(', ')}): removed ${fmt(dropping)} deliveries (with their events and attempts) in ${dropSeconds.toFixed(3)} s; WAL written ${fmt(dropWal / 1024)} KB`);
  console.log(`retention: a day of ${fmt(doomed)} deliveries, batched DELETE ${deleteSeconds.toFixed(1)} s against partition drop ${dropSeconds.toFixed(3)} s: the drop is ${fmt(deleteSeconds / dropSeconds)} times faster, and writes ${fmt(deleteWal / Math.max(1, dropWal))} times less WAL`);
}
