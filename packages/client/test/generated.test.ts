import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

// The committed types of @hookline/client are what the API's OpenAPI document
// generates now: a route or schema changed without `npm run -s client:generate`
// fails here. The generator runs as its own process (openapi-typescript's
// dependencies are ES modules, which jest's CommonJS mode cannot load).

const ROOT = resolve(__dirname, '../../..');

it('packages/client/src/schema.ts is generated from the current OpenAPI document', () => {
  const committed = readFileSync(resolve(ROOT, 'packages/client/src/schema.ts'), 'utf8');
  const fresh = execFileSync(resolve(ROOT, 'node_modules/.bin/tsx'), ['scripts/generate-client.ts', '--print'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 32 * 1024 * 1024 });
  expect(fresh).toContain('"/v1/webhooks/{id}"');
  if (committed !== fresh) throw new Error('packages/client/src/schema.ts is stale: run `npm run -s client:generate` and commit the result');
});
