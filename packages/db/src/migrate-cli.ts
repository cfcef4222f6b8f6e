// `npm run db:migrate`: applies pending migrations to DATABASE_URL (or, outside production,
// the embedded database under HOOKLINE_DATA_DIR). Its settings come through packages/config,
// like every app's: a bad value is one line naming the variable.
import { resolve } from 'node:path';
import { loadEnvOrExit, migrateEnvSchema, PRODUCTION_REQUIRED } from '@hookline/config';
import { createDb } from './client';
import { runMigrations } from './migrate';

async function main() {
  const env = loadEnvOrExit(migrateEnvSchema, process.env, PRODUCTION_REQUIRED.migrate);
  const db = env.DATABASE_URL
    ? await createDb({ databaseUrl: env.DATABASE_URL, poolSize: 1 })
    : await createDb({ pgliteDir: resolve(env.HOOKLINE_DATA_DIR, 'pglite') });
  try {
    const applied = await runMigrations(db.sql);
    process.stdout.write(applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await db.close();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`hookline: migration failed: ${err.message}\n`);
  process.exit(1);
});
