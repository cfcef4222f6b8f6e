import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import express, { type RequestHandler } from 'express';

// The dashboard's only two assets, static/dashboard.css and static/dashboard.js,
// served from this process (the CSP allows nothing from another host). They
// stay in the source tree, found from src/dashboard (tsx, jest) and from
// dist/dashboard (the compiled build, `npm run build`) alike, so the build has
// no copy step; the Docker image ships this one folder of src/.

export const DASHBOARD_STATIC_DIR = join(__dirname, '../../src/dashboard/static');
export const DASHBOARD_ASSETS = ['dashboard.css', 'dashboard.js'] as const;

/**
 * Changes whenever an asset's bytes do: pages link `…/dashboard.css?v=<this>`,
 * so a browser holding an older copy fetches the new one at once.
 */
export const ASSET_VERSION = createHash('sha256')
  .update(DASHBOARD_ASSETS.map((name) => readFileSync(join(DASHBOARD_STATIC_DIR, name), 'utf8')).join('\0'))
  .digest('base64url')
  .slice(0, 12);

/** The static folder under /assets: an hour of caching, then revalidation by ETag / Last-Modified. */
export function dashboardAssets(): RequestHandler {
  return express.static(DASHBOARD_STATIC_DIR, {
    index: false,
    redirect: false,
    dotfiles: 'ignore',
    // Anything else under /assets falls through to the dashboard's HTML 404 page.
    fallthrough: true,
    // The same for everyone: replace the pages' no-store and Vary: Cookie.
    cacheControl: false,
    setHeaders(res) {
      res.setHeader('Cache-Control', 'public, max-age=3600');
      res.removeHeader('Vary');
    },
  });
}
