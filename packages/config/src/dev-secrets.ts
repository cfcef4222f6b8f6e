import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Development only: secrets generated once into the data folder (mode 0600) so
// `npm start` works with no configuration and keeps working across restarts.
// Production refuses to start without them set explicitly (PRODUCTION_REQUIRED).
export type DevSecrets = { PLATFORM_TOKEN: string; ENCRYPTION_KEY: string; SESSION_SECRET: string };

export function loadOrCreateDevSecrets(dataDir: string): DevSecrets {
  const file = join(dataDir, 'secrets.json');
  if (existsSync(file)) {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Partial<DevSecrets>;
    if (stored.PLATFORM_TOKEN && stored.ENCRYPTION_KEY && stored.SESSION_SECRET) return stored as DevSecrets;
  }
  const secrets: DevSecrets = {
    PLATFORM_TOKEN: `hlpt_${randomBytes(24).toString('hex')}`,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    SESSION_SECRET: randomBytes(32).toString('hex'),
  };
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  return secrets;
}
