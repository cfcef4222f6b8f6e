import { idTime } from '@hookline/domain';
import type { Db, SqlRunner } from './client';

// Time-partitioned history (docs/operations.md, "Partitions"). events, deliveries
// and attempts are partitioned by RANGE (created_at), one partition per
// PARTITION_INTERVAL (a day by default). The work is done by two functions of
// migration 20261207160000_partitioned_history (hookline_ensure_partitions,
// hookline_drop_partition), each one statement and so one transaction on
// PostgreSQL and on PGlite alike, serialised across processes by an advisory
// lock. pg_partman was weighed: it is what PostgreSQL installations use, but
// PGlite (`npm start`) has no such extension and the two functions are ~60
// lines; one implementation for both keeps them tested the same way.
//
// When partitions are made, so that a row never finds its partition missing:
// - the migration makes the next UTC day's;
// - the API and every worker ensure PARTITIONS_AHEAD intervals past now at
//   start, and the worker's maintenance (retention.ts, one at a time across
//   workers) every tick;
// - the safety net: a write that still fails for want of its partition
//   (isMissingPartition) makes it at once and runs again (withPartitionNet). No
//   DEFAULT partition: one that holds rows must be scanned, under lock, by every
//   later creation of a range it overlaps, and rows moved out of it first.

/** The partitioned tables, in the order the functions treat them. */
export const PARTITIONED_TABLES = ['events', 'deliveries', 'attempts'] as const;
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number];

/** The advisory lock the two functions take (next to the migrator's …369, relay's …370 and sweeper's …371). */
export const PARTITION_LOCK_ID = 72_707_372;

/** Intervals made ahead of now. */
export const PARTITIONS_AHEAD = 3;

export const DAY_MS = 86_400_000;

export type PartitionRange = { partition: string; lowerBound: Date | null; upperBound: Date };

type Row = { partition?: string; name?: string; lower_bound: Date | string | null; upper_bound: Date | string };
const range = (row: Row): PartitionRange => ({
  partition: (row.partition ?? row.name)!,
  lowerBound: row.lower_bound === null ? null : new Date(row.lower_bound),
  upperBound: new Date(row.upper_bound),
});

/** A table's partitions, oldest first (the oldest's lowerBound null: everything before). */
export async function listPartitions(sql: Pick<SqlRunner, 'query'>, table: PartitionedTable): Promise<PartitionRange[]> {
  const rows = await sql.query<Row>('SELECT name, lower_bound, upper_bound FROM hookline_partitions($1)', [table]);
  return rows.map(range);
}

/** Creates what is missing so that every table has partitions past `at` + PARTITIONS_AHEAD intervals; answers what it created. */
export async function ensurePartitions(db: Pick<Db, 'sql' | 'partitionIntervalMs'>, at: Date = new Date()): Promise<PartitionRange[]> {
  const step = db.partitionIntervalMs;
  const until = new Date(at.getTime() + PARTITIONS_AHEAD * step);
  const rows = await db.sql.query<Row>('SELECT partition, lower_bound, upper_bound FROM hookline_ensure_partitions($1::bigint, $2::timestamptz)', [step, until]);
  return rows.map(range);
}

export type DroppedPartition = { partition: string; table: PartitionedTable; kept: boolean; reason: string | null };

/**
 * Detaches and drops the partitions wholly older than `before`, except those a
 * waiting delivery still needs (answered with kept: true; see
 * hookline_drop_partition). Deliveries first, then events, then attempts; each
 * partition in a statement (so a transaction) of its own, which locks one table.
 */
export async function dropPartitions(sql: Pick<SqlRunner, 'query'>, before: Date): Promise<DroppedPartition[]> {
  const out: DroppedPartition[] = [];
  for (const table of ['deliveries', 'events', 'attempts'] as const) {
    for (const { partition, upperBound } of await listPartitions(sql, table)) {
      if (upperBound > before) break;
      const [row] = await sql.query<{ kept: boolean; reason: string | null }>('SELECT kept, reason FROM hookline_drop_partition($1, $2)', [table, partition]);
      out.push({ partition, table, kept: row.kept, reason: row.reason });
    }
  }
  return out;
}

/** PostgreSQL's error for a row no partition takes (SQLSTATE 23514, as a CHECK violation). */
export function isMissingPartition(err: unknown): boolean {
  const message = err instanceof Error ? err.message : typeof err === 'object' && err !== null && 'message' in err ? String(err.message) : '';
  return /no partition of relation "[^"]+" found for row/.test(message);
}

/**
 * The safety net: runs `write`; if it failed because a row's partition is
 * missing, makes the partitions (now and ahead) and runs it once more. `write`
 * must be a whole transaction (or one statement), safe to run again after it
 * failed: its first run wrote nothing.
 */
export async function withPartitionNet<T>(db: Pick<Db, 'sql' | 'partitionIntervalMs'>, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (!isMissingPartition(err)) throw err;
    await ensurePartitions(db);
    return write();
  }
}

// Lookups by id (docs/scaling.md, "Ids and creation time"): an event's or a
// delivery's id carries the time the outbox stored as its created_at, so adding
// `created_at BETWEEN idTime(id) - skew AND idTime(id) + skew` to a lookup lets
// PostgreSQL read one partition (pruned when planned, or as it runs for a
// parameter). The skew covers clocks of different processes and ids minted a
// moment before their row's time; an id that carries no time (issued before ids
// did) gets no bound and is looked for in every partition, as before.
// An attempt's id is minted before its first try to record it, which may wait
// out an outage: its row's created_at is at or after the id's time (a lower bound only).

export const ID_TIME_SKEW_MS = 5 * 60_000;

/** The created_at range a row of this id lies in; nulls (no bound) for an id that carries no time. */
export function createdRange(id: string): { from: Date | null; to: Date | null } {
  const at = idTime(id);
  if (!at) return { from: null, to: null };
  return { from: new Date(at.getTime() - ID_TIME_SKEW_MS), to: new Date(at.getTime() + ID_TIME_SKEW_MS) };
}

/** The same as a Prisma filter: spread into a delivery's or an event's `where` next to its id. */
export function createdAtWhere(id: string): { createdAt?: { gte: Date; lte: Date } } {
  const { from, to } = createdRange(id);
  return from && to ? { createdAt: { gte: from, lte: to } } : {};
}

/**
 * The created_at range that holds the rows of all these ids (from the earliest
 * id's range to the latest's), as a Prisma filter to spread next to `id: { in: ids }`:
 * a page of ids reads only the partitions its ids' times span. No bound when an
 * id carries no time (or there is none).
 */
export function createdAtWhereAll(ids: readonly string[]): { createdAt?: { gte: Date; lte: Date } } {
  let from: Date | null = null;
  let to: Date | null = null;
  for (const id of ids) {
    const range = createdRange(id);
    if (!range.from || !range.to) return {};
    if (!from || range.from < from) from = range.from;
    if (!to || range.to > to) to = range.to;
  }
  return from && to ? { createdAt: { gte: from, lte: to } } : {};
}

/** SQL: `column` within the range of two timestamptz expressions, a NULL one meaning no bound. */
export const createdWithin = (column: string, from: string, to: string) =>
  `${column} BETWEEN COALESCE(${from}, '-infinity'::timestamptz) AND COALESCE(${to}, 'infinity'::timestamptz)`;
