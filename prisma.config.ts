import { defineConfig } from 'prisma/config';

// Prisma 7 reads its configuration here. Migrations are applied by
// packages/db/src/migrate.ts (offline-safe); the CLI is only used to generate the client.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
