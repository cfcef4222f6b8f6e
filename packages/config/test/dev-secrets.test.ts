import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateDevSecrets } from '../src/dev-secrets';

// The data folder's generated secrets: made once, never replaced, and a folder
// written by an older version keeps its values while gaining newer entries.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hookline-dev-secrets-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('generates every secret once, into a file only its owner can read, and returns the same ones later', () => {
  const first = loadOrCreateDevSecrets(dir);
  expect(first.PLATFORM_TOKEN).toMatch(/^hlpt_[0-9a-f]{48}$/);
  expect(Buffer.from(first.ENCRYPTION_KEY, 'base64')).toHaveLength(32);
  expect(first.ADMIN_PASSWORD).toMatch(/^[A-Za-z0-9]{24}$/);
  expect(statSync(join(dir, 'secrets.json')).mode & 0o077).toBe(0);
  expect(loadOrCreateDevSecrets(dir)).toEqual(first);
});

it('keeps an older folder\'s token and key, adding only what is missing', () => {
  const older = { PLATFORM_TOKEN: 'hlpt_older_token_kept', ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'), SESSION_SECRET: 's'.repeat(64) };
  writeFileSync(join(dir, 'secrets.json'), JSON.stringify(older), { mode: 0o600 });
  const secrets = loadOrCreateDevSecrets(dir);
  expect(secrets).toEqual({ ...older, ADMIN_PASSWORD: expect.stringMatching(/^[A-Za-z0-9]{24}$/) });
  expect(JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8'))).toEqual(secrets);
});
