import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { startApiHarness, type ApiHarness } from './support/api-harness';

describe('test infrastructure', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApiHarness();
  });
  afterAll(() => h.close());

  it('builds the app on a fresh migrated database', async () => {
    const rows = await h.database.db.sql.query<{ migration_name: string }>('SELECT migration_name FROM "_prisma_migrations"');
    // Every migration folder applied, in order (the folder is the list, so a new migration needs no edit here).
    // The test databases have the schema of a finished rollout: the contract steps too.
    const folders = (dir: string) => readdirSync(join(__dirname, dir), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    const migrations = folders('../prisma/migrations').sort();
    expect(migrations[0]).toBe('20261123110000_init');
    expect(rows.map((r) => r.migration_name).sort()).toEqual([...migrations, ...folders('../prisma/contract')].sort());
    const res = await request(h.app).get('/nope');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('RESOURCE_NOT_FOUND');
  });
});
