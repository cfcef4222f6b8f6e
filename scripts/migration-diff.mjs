// Dev tool: prints the SQL that takes an empty database to prisma/schema.prisma,
// using Prisma's own schema engine compiled to WebAssembly (works offline).
// Usage: node scripts/migration-diff.mjs > prisma/migrations/<stamp>_<name>/migration.sql
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
// The package imports its .wasm as an ES module, which Node 20 cannot; instantiate it by hand.
const bg = await import('@prisma/schema-engine-wasm/schema_engine_bg');
const wasmPath = require.resolve('@prisma/schema-engine-wasm').replace(/schema_engine\.js$/, 'schema_engine_bg.wasm');
const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), { './schema_engine_bg.js': bg });
bg.__wbg_set_wasm(instance.exports);
instance.exports.__wbindgen_start();
const { SchemaEngine } = bg;
const { bindMigrationAwareSqlAdapterFactory } = require('@prisma/driver-adapter-utils');
const { PrismaPg } = require('@prisma/adapter-pg');

const url = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const adapter = bindMigrationAwareSqlAdapterFactory(new PrismaPg({ connectionString: url }));
const schema = readFileSync('prisma/schema.prisma', 'utf8');
const engine = await SchemaEngine.new({ datamodels: [['schema.prisma', schema]] }, (msg) => process.stderr.write(String(msg) + '\n'), adapter);
const result = await engine.diff({
  from: { tag: 'empty' },
  to: { tag: 'schemaDatamodel', files: [{ path: 'schema.prisma', content: schema }] },
  script: true,
  exitCode: null,
  filters: { externalTables: [], externalEnums: [] },
});
process.stdout.write(result.stdout ?? '');
process.exit(0);
