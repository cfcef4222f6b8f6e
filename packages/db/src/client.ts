import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, type PoolClient } from 'pg';
import { Prisma, PrismaClient } from './generated/prisma/client';
import { DAY_MS } from './partitions';

export { PrismaClient };
export type { Prisma } from './generated/prisma/client';

/** SQL NULL for a nullable Json column (a plain null is refused there: it could mean JSON null). */
export const DbNull = Prisma.DbNull;

/** Raw SQL for the migration runner and the few hot-path statements Prisma cannot express. */
export type SqlRunner = {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Several statements, no parameters. */
  exec(sql: string): Promise<void>;
  /** Runs `fn` on one dedicated connection (session-level locks, explicit transactions). */
  withSession<T>(fn: (session: SqlRunner) => Promise<T>): Promise<T>;
};

export type Db = {
  prisma: PrismaClient;
  sql: SqlRunner;
  kind: 'postgres' | 'pglite';
  /**
   * Write the compact history (COMPACT_HISTORY, docs/operations.md, "Rolling
   * upgrades and the compact history"): false (the default) writes rows as the
   * version before did, which that version's processes can read; rows of both
   * shapes are always read.
   */
  compact: boolean;
  /** PARTITION_INTERVAL in ms: the range of one partition of the history tables (packages/db/src/partitions.ts). */
  partitionIntervalMs: number;
  /** true when the database answers a trivial query (for /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
};

export type DbOptions =
  /** onError: an idle connection lost (the next query reports it too); e.g. a throttled log line. */
  | { databaseUrl: string; poolSize?: number; onError?: (err: Error) => void }
  | { pgliteDir: string };

// Every statement sent through SqlRunner.query is a named prepared statement on
// its connection: PostgreSQL parses each text once per connection instead of on
// every call. The hot statements (the outbox's, the worker's load and record)
// are long CTEs whose parsing cost more than running them; with one server on a
// 2-core machine, that was a third of PostgreSQL's CPU.
//
// Planning is left to PostgreSQL (plan_cache_mode = auto): it plans the worker's
// load and record anew on every execution (0.3-0.5 ms of backend CPU each), and
// switches others to a cached generic plan. Forcing generic plans was tried and
// reverted: a generic plan made while a table is small scans it whole, and stays
// cached until an ANALYZE invalidates it (autovacuum does that in production; on a
// server without it the scans grow with the table).
// Texts are constants in this code base; the cap only guards against one that
// is not (past it, texts are sent unnamed, as before). A pooler in front of
// PostgreSQL must keep sessions (or support prepared statements: PgBouncer ≥ 1.21
// with max_prepared_statements), as the relay's and the sweeper's locks already need.
const MAX_PREPARED = 500;
const statementNames = new Map<string, string>();

function preparedName(text: string): string | undefined {
  const known = statementNames.get(text);
  if (known !== undefined || statementNames.size >= MAX_PREPARED) return known;
  const name = `hl_${statementNames.size.toString(36)}`;
  statementNames.set(text, name);
  return name;
}

export async function createDb(opts: DbOptions): Promise<Db> {
  if ('pgliteDir' in opts) return createPgliteDb(opts.pgliteDir);
  const pool = new Pool({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 10 });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', opts.onError ?? (() => undefined));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const bind = (client: Pool | PoolClient): SqlRunner => ({
    async query(text, params) {
      // Without parameters node-postgres uses the simple protocol, which also runs several statements: left as is.
      const name = params?.length ? preparedName(text) : undefined;
      const result = name ? await client.query({ name, text, values: params as unknown[] }) : await client.query(text, params as unknown[]);
      return result.rows as never[];
    },
    async exec(text) {
      await client.query(text);
    },
    async withSession(fn) {
      if (client !== pool) return fn(bind(client));
      const session = await pool.connect();
      // A checked-out client has no 'error' listener of the pool's: its
      // connection lost (PostgreSQL restarting, a reset) would be an uncaught
      // 'error' event and end the process. Kept here, the loss reaches the
      // running query, and the broken client is discarded, not pooled again.
      let lost: Error | undefined;
      const onError = (err: Error) => {
        lost = err;
      };
      session.on('error', onError);
      try {
        return await fn(bind(session));
      } finally {
        session.removeListener('error', onError);
        session.release(lost);
      }
    },
  });
  const sql = bind(pool);
  return {
    prisma,
    sql,
    kind: 'postgres',
    compact: false,
    partitionIntervalMs: DAY_MS,
    ping: () => pool.query('SELECT 1').then(() => true, () => false),
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function createPgliteDb(dataDir: string): Promise<Db> {
  // Loaded lazily: PGlite is ~850 MB at peak and only `npm start` uses it.
  const { PGlite } = await import('@electric-sql/pglite');
  const { PrismaPGlite } = await import('pglite-prisma-adapter');
  const pglite = await PGlite.create(dataDir);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  const sql: SqlRunner = {
    async query(text, params) {
      return (await pglite.query(text, params as unknown[])).rows as never[];
    },
    async exec(text) {
      await pglite.exec(text);
    },
    // PGlite is a single connection already.
    withSession: (fn) => fn(sql),
  };
  return {
    prisma,
    sql,
    kind: 'pglite',
    compact: false,
    partitionIntervalMs: DAY_MS,
    ping: () => pglite.query('SELECT 1').then(() => true, () => false),
    async close() {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}
