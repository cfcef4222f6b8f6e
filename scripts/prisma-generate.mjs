// Generates the Prisma client when prisma/schema.prisma changed since the last run.
// npm 11 runs no dependency install scripts, so nothing else would. Offline-safe:
// generation needs no schema-engine binary (PRISMA_SCHEMA_ENGINE_BINARY points at a stub).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const out = 'packages/db/src/generated/prisma';
const stamp = `${out}/.schema-hash`;
const hash = createHash('sha256').update(readFileSync('prisma/schema.prisma')).update(readFileSync('node_modules/prisma/package.json')).digest('hex');
if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) process.exit(0);
try {
  execFileSync(process.execPath, ['node_modules/prisma/build/index.js', 'generate'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
  });
} catch (err) {
  process.stderr.write(String(err.stderr ?? ''));
  console.error('hookline: could not generate the Prisma client; run `npm ci` first');
  process.exit(1);
}
writeFileSync(stamp, hash);
