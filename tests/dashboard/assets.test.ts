import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { ASSET_VERSION, DASHBOARD_STATIC_DIR } from '../../apps/api/src/dashboard/assets';
import { DASHBOARD_CSP } from '../../apps/api/src/dashboard/router';

// The dashboard's stylesheet and script are static files served by this
// process: right types, an hour of caching with revalidation, a URL that
// changes with their content, the strict CSP, and nothing else under /assets.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h.close());

const file = (name: string) => readFileSync(join(DASHBOARD_STATIC_DIR, name), 'utf8');

it.each([
  ['dashboard.css', /^text\/css/],
  ['dashboard.js', /^(application|text)\/javascript/],
])('serves %s from the static folder, cacheable for an hour and revalidated by ETag', async (name, type) => {
  const res = await request(h.app).get(`/dashboard/assets/${name}?v=${ASSET_VERSION}`);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(type);
  expect(res.text).toBe(file(name));
  expect(res.headers['cache-control']).toBe('public, max-age=3600');
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['content-security-policy']).toBe(DASHBOARD_CSP);
  expect(res.headers['set-cookie']).toBeUndefined();
  expect(res.headers.vary).toBeUndefined();
  const etag = res.headers.etag;
  expect(etag).toBeTruthy();
  const again = await request(h.app).get(`/dashboard/assets/${name}`).set('If-None-Match', etag);
  expect(again.status).toBe(304);
  expect(again.text).toBe('');
});

it('links the assets from every page with a version taken from their content', async () => {
  expect(ASSET_VERSION).toMatch(/^[A-Za-z0-9_-]{12}$/);
  const page = await request(h.app).get('/dashboard');
  expect(page.text).toContain(`<link rel="stylesheet" href="/dashboard/assets/dashboard.css?v=${ASSET_VERSION}">`);
  expect(page.text).toContain(`<script src="/dashboard/assets/dashboard.js?v=${ASSET_VERSION}" defer></script>`);
  // No style or script is inlined into the page any more than before.
  expect(page.text).not.toMatch(/<style|<script>/);
});

it('answers anything else under /assets with the dashboard\'s HTML 404, never a listing or a file outside', async () => {
  for (const path of ['/dashboard/assets/', '/dashboard/assets/nope.css', '/dashboard/assets/..%2Fassets.ts', '/dashboard/assets/../router.ts', '/dashboard/assets/.hidden']) {
    const res = await request(h.app).get(path);
    expect([404]).toContain(res.status);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).not.toContain('createHash');
  }
});
