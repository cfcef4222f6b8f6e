// `npm run db:migrate`: applies pending migrations to DATABASE_URL (or the embedded ./.data database).
import { resolve } from 'node:path';
import { createDb } from './client';
import { runMigrations } from './migrate';

async function main() {
  const databaseUrl = process.env.DATABASE_URL;
  const db = databaseUrl ? await createDb({ databaseUrl, poolSize: 1 }) : await createDb({ pgliteDir: resolve(process.env.HOOKLINE_DATA_DIR ?? '.data', 'pglite') });
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
