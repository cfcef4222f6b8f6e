// `npm run db:migrate`: applies pending migrations to DATABASE_URL (or, outside production,
// the embedded database under HOOKLINE_DATA_DIR). Its settings come through packages/config,
// like every app's: a bad value is one line naming the variable.
// `npm run db:contract` (--contract): the contract migrations too (prisma/contract), which
// take away what earlier versions used: run it once no process of an earlier version runs.
import { resolve } from 'node:path';
import { loadEnvOrExit, migrateEnvSchema, PRODUCTION_REQUIRED } from '@hookline/config';
import { createDb } from './client';
import { pendingContract, runMigrations } from './migrate';

async function main() {
  const env = loadEnvOrExit(migrateEnvSchema, process.env, PRODUCTION_REQUIRED.migrate);
  const db = env.DATABASE_URL
    ? await createDb({ databaseUrl: env.DATABASE_URL, poolSize: 1 })
    : await createDb({ pgliteDir: resolve(env.HOOKLINE_DATA_DIR, 'pglite') });
  try {
    const contract = process.argv.includes('--contract');
    const applied = await runMigrations(db.sql, { contract });
    process.stdout.write(applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}\n` : 'database is up to date\n');
    const pending = contract ? [] : await pendingContract(db.sql);
    if (pending.length) {
      process.stdout.write(`contract step(s) waiting: ${pending.join(', ')}; run \`npm run db:contract\` once no process of an earlier version runs (docs/operations.md, "The waiting set and the contract step")\n`);
    }
  } finally {
    await db.close();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`hookline: migration failed: ${err.message}\n`);
  process.exit(1);
});
