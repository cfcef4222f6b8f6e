import type { RequestHandler } from 'express';
import type { ApiDeps } from '../deps';
import { requireApiKey } from './auth';
import { rateLimit } from './rate-limit';

/**
 * The guard of every /v1 route: API key (optionally a paid plan), then the
 * per-key rate limit. Apply it per route (not with router.use) so an unknown
 * /v1 path still answers 404 and a request is authenticated once.
 */
export function v1Auth(deps: ApiDeps, opts: { requirePlan?: boolean } = {}): RequestHandler[] {
  return [requireApiKey(deps, opts), rateLimit(deps)];
}
