import { z } from 'zod';
import { buildOpenApiDocument, type OpenApiDocument } from '../openapi';
import { defineRoute, type ApiRoute } from './define';
import { deliveryRoutes } from './deliveries';
import { ingestRoutes } from './ingest';
import { listenRoutes } from './listen';
import { probeRoutes } from './ops';
import { platformRoutes } from './platform';
import { webhookRoutes } from './webhooks';

// Every operation of the API, by the prefix app.ts mounts its router at. The
// same lists are what /openapi.json describes: an operation is mounted and
// documented from one declaration, or not at all.

/** The integrator API, below /v1 (API key). */
export const INTEGRATOR_ROUTES: readonly ApiRoute[] = [...webhookRoutes, ...deliveryRoutes, ...listenRoutes];
/** The platform API, below /internal/v1 (platform token). */
export const PLATFORM_ROUTES: readonly ApiRoute[] = [...platformRoutes, ...ingestRoutes];

const openApiRoute = defineRoute({
  method: 'get', path: '/openapi.json', access: 'public', tag: 'Operations', operationId: 'openapi',
  summary: 'This document', responses: { 200: { description: 'The OpenAPI 3.1 document.', content: { 'application/json': { schema: z.looseObject({}) } } } },
  handler: () => (_req, res) => void res.json(getOpenApiDocument()),
});

/** Probes, metrics and this document, at the root (no authentication). */
export const OPS_ROUTES: readonly ApiRoute[] = [...probeRoutes, openApiRoute];

export const API_ROUTES: readonly ApiRoute[] = [...INTEGRATOR_ROUTES, ...PLATFORM_ROUTES, ...OPS_ROUTES];

let cached: OpenApiDocument | undefined;

/** Built once, on first use: generation walks every schema and takes a few milliseconds. */
export function getOpenApiDocument(): OpenApiDocument {
  cached ??= buildOpenApiDocument(API_ROUTES);
  return cached;
}
