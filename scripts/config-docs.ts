// Rewrites the settings table of docs/configuration.md from the env schemas in packages/config
// (defaults, which process reads each variable) and the words in settings-docs.ts.
// `npm run docs:config`; packages/config/test/settings-docs.test.ts fails when the file drifts.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withSettingsTable } from '../packages/config/src/settings-docs';

const file = join(__dirname, '..', 'docs', 'configuration.md');
const before = readFileSync(file, 'utf8');
const after = withSettingsTable(before);
if (after === before) {
  console.log('docs/configuration.md: the settings table is up to date');
} else {
  writeFileSync(file, after);
  console.log('docs/configuration.md: settings table rewritten');
}
