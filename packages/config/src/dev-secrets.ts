import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Development only: secrets generated once into the data folder (mode 0600) so
// `npm start` works with no configuration and keeps working across restarts.
// Production refuses to start without them set explicitly (PRODUCTION_REQUIRED).
export type DevSecrets = { PLATFORM_TOKEN: string; ENCRYPTION_KEY: string; SESSION_SECRET: string; ADMIN_PASSWORD: string };

const GENERATORS: { [K in keyof DevSecrets]: () => string } = {
  PLATFORM_TOKEN: () => `hlpt_${randomBytes(24).toString('hex')}`,
  ENCRYPTION_KEY: () => randomBytes(32).toString('base64'),
  SESSION_SECRET: () => randomBytes(32).toString('hex'),
  // HTTP Basic password of /admin/queues: letters and digits only, so it can be typed and pasted anywhere.
  ADMIN_PASSWORD: () => randomBytes(18).toString('base64url').replace(/[-_]/g, 'x'),
};

export const devSecretsFile = (dataDir: string) => join(dataDir, 'secrets.json');

/**
 * The data folder's secrets, generating only those it does not hold yet: a
 * value once written is never replaced (a new ENCRYPTION_KEY would make every
 * stored webhook secret unreadable), so a folder from an older version keeps
 * its token and key and just gains the newer entries.
 */
export function loadOrCreateDevSecrets(dataDir: string): DevSecrets {
  const file = devSecretsFile(dataDir);
  const stored: Partial<Record<string, unknown>> = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const secrets = { ...stored } as Record<string, unknown>;
  let added = false;
  for (const [name, generate] of Object.entries(GENERATORS)) {
    if (typeof secrets[name] === 'string' && secrets[name]) continue;
    secrets[name] = generate();
    added = true;
  }
  if (added) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  }
  return secrets as DevSecrets;
}
