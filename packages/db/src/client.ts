import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, type PoolClient } from 'pg';
import { PrismaClient } from './generated/prisma/client';

export { PrismaClient };
export type { Prisma } from './generated/prisma/client';

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
  /** true when the database answers a trivial query (for /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
};

export type DbOptions =
  /** onError: an idle connection lost (the next query reports it too); e.g. a throttled log line. */
  | { databaseUrl: string; poolSize?: number; onError?: (err: Error) => void }
  | { pgliteDir: string };

export async function createDb(opts: DbOptions): Promise<Db> {
  if ('pgliteDir' in opts) return createPgliteDb(opts.pgliteDir);
  const pool = new Pool({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 10 });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', opts.onError ?? (() => undefined));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const bind = (client: Pool | PoolClient): SqlRunner => ({
    async query(text, params) {
      return (await client.query(text, params as unknown[])).rows as never[];
    },
    async exec(text) {
      await client.query(text);
    },
    async withSession(fn) {
      if (client !== pool) return fn(bind(client));
      const session = await pool.connect();
      try {
        return await fn(bind(session));
      } finally {
        session.release();
      }
    },
  });
  const sql = bind(pool);
  return {
    prisma,
    sql,
    kind: 'postgres',
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
    ping: () => pglite.query('SELECT 1').then(() => true, () => false),
    async close() {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}
