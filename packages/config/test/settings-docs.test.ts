import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiEnvSchema, standaloneEnvSchema, workerEnvSchema } from '../src/env';
import { SETTING_TEXTS, settingRows, withSettingsTable } from '../src/settings-docs';

// docs/configuration.md's table is generated from the env schemas (npm run docs:config):
// a variable added, removed or given another default without regenerating fails here.
describe('the configuration table', () => {
  const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');

  it('is what the schemas generate', () => {
    expect(withSettingsTable(doc)).toBe(doc);
  });

  it('has one row per variable either app or npm start reads, with words for each and none left over', () => {
    const names = new Set([...Object.keys(apiEnvSchema.shape), ...Object.keys(workerEnvSchema.shape), ...Object.keys(standaloneEnvSchema.shape)]);
    expect(settingRows().map((row) => row.name).sort()).toEqual([...names].sort());
    expect(Object.keys(SETTING_TEXTS).sort()).toEqual([...names].sort());
  });

  it('takes defaults and processes from the schemas', () => {
    const rows = new Map(settingRows().map((row) => [row.name, row]));
    expect(rows.get('DELIVERY_TIMEOUT')).toMatchObject({ process: 'worker', defaultText: '`10s`' });
    expect(rows.get('PORT')).toMatchObject({ process: 'API', defaultText: '`3000`' });
    expect(rows.get('ALLOW_PRIVATE_TARGETS')).toMatchObject({ process: 'both' });
    expect(rows.get('QUEUE_PREFIX')).toMatchObject({ process: 'both', defaultText: '`hookline`' });
    expect(rows.get('HOST')).toMatchObject({ process: '`npm start`' });
    expect(rows.get('REDIS_CLUSTER_NODES')).toMatchObject({ process: 'both', defaultText: 'unset' });
  });
});
