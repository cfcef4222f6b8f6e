import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

// The product version is the root package.json's: one number for the whole
// service, whichever process (api, worker, standalone) sends the callback.
function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(resolve(__dirname, '../../../package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const VERSION = readVersion();

/** The User-Agent of every callback (docs/api.md#callback-headers). */
export const USER_AGENT = `Hookline/${VERSION}`;
