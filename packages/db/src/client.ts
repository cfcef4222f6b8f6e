import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, type PoolClient } from 'pg';
import { Prisma, PrismaClient } from './generated/prisma/client';

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
  /**
   * For the worker's batched load and record statements only: connections of
   * their own whose prepared statements run on a generic plan (see below).
   * The same runner as `sql` on PGlite.
   */
  batchSql: SqlRunner;
  kind: 'postgres' | 'pglite';
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
// are long CTEs whose parsing and planning cost more than running them; with one
// server on a 2-core machine, that was a third of PostgreSQL's CPU.
//
// Parsing, not planning: with plan_cache_mode = auto, PostgreSQL keeps planning
// the worker's load and record anew on every execution (a plan for the ids
// given is always estimated cheaper than one for any array), which is most of
// their cost: 0.28–0.38 and 0.50 ms of backend CPU per execution, against
// 0.10–0.18 and 0.13–0.15 ms on a generic plan (measured on a bench database
// of a million deliveries). Their plans do not depend on the values (lookups by
// primary key, in batches of 1 to 100), so `batchSql` runs them on a pool of
// its own whose sessions force the generic plan. Not every statement: the
// relay's and the sweeper's range scans with LIMIT $n must keep plans made for
// their values (a generic estimate of the range could pick a table scan).
const BATCH_POOL_SIZE = 4;
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
  const size = opts.poolSize ?? 10;
  const batchSize = Math.min(BATCH_POOL_SIZE, Math.max(1, size - 1));
  const pool = new Pool({ connectionString: opts.databaseUrl, max: Math.max(1, size - batchSize) });
  const batchPool = new Pool({ connectionString: opts.databaseUrl, max: batchSize });
  // Sent on each new connection before anything else it runs (a client runs its queries in order).
  batchPool.on('connect', (client) => void client.query('SET plan_cache_mode = force_generic_plan').catch(() => undefined));
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', opts.onError ?? (() => undefined));
  batchPool.on('error', opts.onError ?? (() => undefined));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  /** A runner on `client`: a pool, or one session of `owner`. */
  const bind = (client: Pool | PoolClient, owner: Pool): SqlRunner => ({
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
      if (client !== owner) return fn(bind(client, owner));
      const session = await owner.connect();
      try {
        return await fn(bind(session, owner));
      } finally {
        session.release();
      }
    },
  });
  const sql = bind(pool, pool);
  return {
    prisma,
    sql,
    batchSql: bind(batchPool, batchPool),
    kind: 'postgres',
    ping: () => pool.query('SELECT 1').then(() => true, () => false),
    async close() {
      await prisma.$disconnect();
      await Promise.all([pool.end(), batchPool.end()]);
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
    batchSql: sql,
    kind: 'pglite',
    ping: () => pglite.query('SELECT 1').then(() => true, () => false),
    async close() {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}
