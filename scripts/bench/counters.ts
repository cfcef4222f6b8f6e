import { Client } from 'pg';
import { benchRedis, masterClient } from './redis';
import { sleep } from './support';

// Round trips per delivery: Redis `INFO commandstats` and PostgreSQL statistics read
// before and after a window in which only the worker runs.
//
// Redis counts every command it executes, including those a Lua script runs
// (EVALSHA/EVAL are counted once, and each redis.call inside them again under
// its own name): client round trips are at most `total − commands inside
// scripts`, which commandstats cannot tell apart, so EVAL/EVALSHA are printed on
// their own. Commandstats are server-wide: on a shared Redis other clients'
// commands are included; `background` measures their rate just before the window.
//
// PostgreSQL: with pg_stat_statements loaded (shared_preload_libraries), the
// statements executed in the bench database; otherwise pg_stat_database's
// transactions (xact_commit + xact_rollback), where each autocommit statement is
// one transaction and an explicit transaction several statements. Backends report
// their counts when a transaction ends at most once a second, and on exit: the
// window is closed only after the worker's connections are gone.

export type RedisCounts = Map<string, number>;

/** The bench Redis's commandstats, summed over its masters (one on a single server). */
export async function redisCommandStats(): Promise<RedisCounts> {
  const counts: RedisCounts = new Map();
  for (const node of await benchRedis().masters()) {
    const redis = masterClient(node);
    try {
      const text = await redis.info('commandstats');
      for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts.set(match[1], (counts.get(match[1]) ?? 0) + Number(match[2]));
    } finally {
      redis.disconnect();
    }
  }
  return counts;
}

export function diffCounts(before: RedisCounts, after: RedisCounts): RedisCounts {
  const delta: RedisCounts = new Map();
  for (const [name, calls] of after) {
    const d = calls - (before.get(name) ?? 0);
    if (d > 0) delta.set(name, d);
  }
  return delta;
}

export const sumCounts = (counts: RedisCounts) => [...counts.values()].reduce((a, b) => a + b, 0);

export type PgCounter = {
  /** 'statements' (pg_stat_statements) or 'transactions' (pg_stat_database) */
  unit: 'statements' | 'transactions';
  read(): Promise<{ total: number; top: Map<string, number> }>;
  /** Waits until no other backend is connected to the bench database (their counts are then reported). */
  quiesce(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
};

/**
 * Counts PostgreSQL work in the bench database (`databaseUrl`). Without
 * pg_stat_statements the counter reads from the server's maintenance database
 * (`serverUrl`), so that its own queries are not transactions of the bench database.
 */
export async function pgCounter(serverUrl: string, databaseUrl: string): Promise<PgCounter> {
  const dbName = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  let statements = false;
  const probe = new Client({ connectionString: databaseUrl });
  await probe.connect();
  try {
    const available = await probe.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'`);
    const preload = await probe.query<{ libs: string }>(`SELECT current_setting('shared_preload_libraries') AS libs`);
    // Available is not enough: the view only answers when the library is preloaded.
    if (available.rowCount && /(^|[,\s])pg_stat_statements($|[,\s])/.test(preload.rows[0].libs)) {
      await probe.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await probe.query('SELECT count(*) FROM pg_stat_statements');
      statements = true;
    }
  } catch {
    statements = false;
  }
  let client = probe;
  if (!statements) {
    await probe.end();
    client = new Client({ connectionString: serverUrl });
    await client.connect();
  }
  return {
    unit: statements ? 'statements' : 'transactions',
    async read() {
      if (statements) {
        const rows = await client.query<{ query: string; calls: string }>(
          `SELECT s.query, sum(s.calls)::bigint AS calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = $1 AND s.query NOT LIKE '%pg\\_stat\\_%'
            GROUP BY s.query`,
          [dbName],
        );
        const top = new Map(rows.rows.map((r) => [r.query.replace(/\s+/g, ' ').slice(0, 70), Number(r.calls)]));
        return { total: sumCounts(top), top };
      }
      const row = await client.query<{ n: string }>(`SELECT (xact_commit + xact_rollback)::bigint AS n FROM pg_stat_database WHERE datname = $1`, [dbName]);
      return { total: Number(row.rows[0].n), top: new Map() };
    },
    async quiesce(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const row = await client.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]);
        if (Number(row.rows[0].n) === 0) break;
        await sleep(100);
      }
      // A backend reports its counts as it exits; give the last one a moment.
      await sleep(500);
      await client.query('SELECT pg_stat_clear_snapshot()');
    },
    close: () => client.end(),
  };
}
