import { Router, type RequestHandler } from 'express';
import type { ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requirePlatformToken } from '../middleware/auth';
import { claimKey, readKey } from '../middleware/idempotency';
import { jsonBody } from '../middleware/json-body';
import { v1Auth } from '../middleware/v1-auth';

// One declaration per operation: the route the app mounts and the operation
// /openapi.json describes are the same object, so neither can exist without
// the other. Who may call it (access, plan) and whether it honours
// Idempotency-Key are read from the declaration to build the route's guards,
// so the document cannot promise what the route does not do.

export type Access = 'api_key' | 'platform' | 'public';

export type ApiRoute = {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** The full path in Express syntax (`:id`); mountRoutes strips the prefix its router is mounted at. */
  path: string;
  /** api_key: /v1 (API key, then the per-key rate limit); platform: the platform token; public: none. */
  access: Access;
  /** With api_key: the account needs the pro or enterprise plan (webhooks and deliveries). */
  plan?: boolean;
  /**
   * Honours Idempotency-Key, after authentication (a stored answer is never
   * replayed to anyone else): true claims the key before the handler runs;
   * 'in-transaction' leaves it to the handler, which records it with its own writes.
   */
  idempotent?: boolean | 'in-transaction';
  tag: string;
  operationId: string;
  summary: string;
  description?: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The error responses it can give beyond those of its access (docs/api.md#errors). */
  notFound?: boolean;
  conflict?: boolean;
  /** A WebSocket endpoint: 101 to an upgrade (served on the HTTP server, not by the handler), 400 to a plain request. */
  upgrade?: boolean;
  /** With plan: the 403 may also be FORBIDDEN (a live key where only test keys may act). */
  forbidden?: boolean;
  responses: Record<number, ResponseConfig>;
  /** Builds the Express handler, once per app (it may keep per-app state, e.g. the event publisher). */
  handler(deps: ApiDeps): RequestHandler;
};

/** Declares one operation (a typed identity: the list it goes in is what mounts and documents it). */
export const defineRoute = (route: ApiRoute): ApiRoute => route;

/** A JSON answer of `schema`. */
export const json = (schema: z.ZodType, description: string): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
export const noContent = (description: string): ResponseConfig => ({ description });

export const idParam = (example: string) => z.object({ id: z.string().meta({ example }) });

/**
 * A Router holding `routes`, to be mounted at `prefix`. Guards are applied
 * per route (never router.use), so an unknown path below the prefix still
 * answers 404; each guard is built once per router. The JSON body of an
 * authenticated route is read after its guard, never before.
 */
export function mountRoutes(deps: ApiDeps, prefix: string, routes: readonly ApiRoute[]): Router {
  const router = Router();
  const guards: Record<Access | 'paid', RequestHandler[]> = {
    api_key: v1Auth(deps),
    paid: v1Auth(deps, { requirePlan: true }),
    platform: [requirePlatformToken(deps)],
    public: [],
  };
  const claim = claimKey(deps, deps.config.IDEMPOTENCY_LEASE);
  for (const route of routes) {
    if (!route.path.startsWith(`${prefix}/`)) throw new Error(`${route.operationId}: ${route.path} is not below ${prefix || '/'}`);
    const guard = route.access === 'api_key' && route.plan ? guards.paid : guards[route.access];
    // Credentials before the body: the guard answers 401 before a byte of an
    // unauthenticated body is read or parsed (so no one without a key can make
    // the server parse 256 KiB of JSON); Idempotency-Key then hashes the parsed body.
    const body = route.access === 'public' ? [] : [jsonBody];
    const once = route.idempotent === true ? [readKey, claim] : route.idempotent ? [readKey] : [];
    router[route.method](route.path.slice(prefix.length), ...guard, ...body, ...once, route.handler(deps));
  }
  return router;
}
