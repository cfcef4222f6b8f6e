import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// `npm run db:migrate` reads its settings through packages/config: a bad or missing
// value is one line naming the variable, and a good one migrates.
const CLI = join(__dirname, '..', 'src', 'migrate-cli.ts');

function runCli(env: Record<string, string>, args: string[] = []) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !['DATABASE_URL', 'NODE_ENV', 'HOOKLINE_DATA_DIR'].includes(name)));
  const result = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...clean, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('npm run db:migrate', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it('in production, refuses to run without DATABASE_URL, in one line', () => {
    const result = runCli({ NODE_ENV: 'production' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe('hookline: invalid configuration: DATABASE_URL must be set when NODE_ENV=production');
  });

  it('names a malformed DATABASE_URL', () => {
    const result = runCli({ DATABASE_URL: 'mysql://somewhere/db' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe('hookline: invalid configuration: DATABASE_URL: must be a postgresql:// URL');
  });

  it('says when a contract step waits, and --contract (npm run db:contract) applies it once', async () => {
    const midRollout = await createTestDatabase({ contract: false });
    try {
      const before = runCli({ DATABASE_URL: midRollout.url, NODE_ENV: 'production' });
      expect(before.stdout).toMatch(/^database is up to date\ncontract step\(s\) waiting: 20261208020000_hot_ending_update, 20261208040000_deliveries_event_key; run `npm run db:contract` once no process of an earlier version runs/);
      expect(before.status).toBe(0);
      const contracted = runCli({ DATABASE_URL: midRollout.url, NODE_ENV: 'production' }, ['--contract']);
      expect(contracted.stdout.trim()).toBe('applied 2 migration(s): 20261208020000_hot_ending_update, 20261208040000_deliveries_event_key');
      expect(runCli({ DATABASE_URL: midRollout.url, NODE_ENV: 'production' }).stdout.trim()).toBe('database is up to date');
      expect(runCli({ DATABASE_URL: midRollout.url, NODE_ENV: 'production' }, ['--contract']).stdout.trim()).toBe('database is up to date');
    } finally {
      await midRollout.drop();
    }
  }, 120_000);

  it('finds a migrated database up to date', () => {
    const result = runCli({ DATABASE_URL: database.url, NODE_ENV: 'production' });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('database is up to date');
    expect(result.status).toBe(0);
  });
});
