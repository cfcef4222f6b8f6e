import { Router, type Response } from 'express';
import { z } from 'zod';
import { errorBodySchema } from '@hookline/domain';
import { countCircuits } from '@hookline/db';
import { createProbeAnswers, type ProbeAnswer } from '@hookline/metrics';
import { probeRedis, shardIndexOf, shardLagSeconds } from '@hookline/queue';
import type { ApiDeps } from '../deps';
import { createAdminRouter } from '../ops/admin';
import { createDocsRouter } from '../ops/docs';
import { defineRoute, json } from './define';

// Operations endpoints (docs/api.md#pages-and-operations): probes, metrics, the OpenAPI
// document (routes/index.ts) and its page, and the queue admin view. Mounted
// before everything else and without authentication, except the admin view;
// none of them reveal a secret, an id or a URL. The probes answer what the
// worker's health port answers: both take their answers from @hookline/metrics.

const readinessChecks = z.object({ postgres: z.enum(['up', 'down']), redis: z.enum(['up', 'down']) });
const Readiness = z
  .object({ status: z.literal('ready'), checks: readinessChecks })
  .meta({ id: 'Readiness', example: { status: 'ready', checks: { postgres: 'up', redis: 'up' } } });
const NotReady = z
  .object({ error: errorBodySchema, checks: readinessChecks })
  .meta({ id: 'NotReady', example: { error: { code: 'SERVICE_UNAVAILABLE', message: 'Redis is unreachable; the service is not ready to take traffic.' }, checks: { postgres: 'up', redis: 'down' } } });

/** The named schemas of this file, for tests that hold real answers to them. */
export const PROBE_SCHEMAS = { Readiness, NotReady } as const;

const send = (res: Response, answer: ProbeAnswer) => void res.status(answer.status).set(answer.headers).send(answer.body);

/** Stateless: each probe route builds its own from the app's dependencies. */
const probeAnswers = (deps: ApiDeps) =>
  createProbeAnswers({
    postgres: () => deps.db.ping(),
    redis: () => probeRedis(deps.redis),
    metrics: deps.metrics,
    queues: deps.queue.shards,
    countCircuits: () => countCircuits(deps.db.sql),
    lag: deps.queue.shards.map((shard) => ({ shard: shardIndexOf(shard), read: () => shardLagSeconds(deps.redis, shard) })),
  });

export const probeRoutes = [
  defineRoute({
    method: 'get', path: '/healthz', access: 'public', tag: 'Operations', operationId: 'healthz',
    summary: 'Liveness', responses: { 200: json(z.object({ status: z.literal('ok') }), 'The process lives.') },
    handler: (deps) => {
      const probes = probeAnswers(deps);
      return (_req, res) => send(res, probes.healthz());
    },
  }),
  defineRoute({
    method: 'get', path: '/readyz', access: 'public', tag: 'Operations', operationId: 'readyz',
    summary: 'Readiness: PostgreSQL and Redis answer',
    responses: {
      200: json(Readiness, 'Ready.'),
      503: json(NotReady, 'SERVICE_UNAVAILABLE: the message names what is down; `checks` has each dependency.'),
    },
    handler: (deps) => {
      const probes = probeAnswers(deps);
      return async (_req, res) => send(res, await probes.readyz());
    },
  }),
  defineRoute({
    method: 'get', path: '/metrics', access: 'public', tag: 'Operations', operationId: 'metrics',
    summary: 'Prometheus metrics', responses: { 200: { description: 'Prometheus text exposition (hookline_* and process metrics).', content: { 'text/plain': { schema: z.string() } } } },
    handler: (deps) => {
      const probes = probeAnswers(deps);
      return async (_req, res) => send(res, await probes.metrics());
    },
  }),
];

/** The pages below the operations endpoints: the document's /docs and the queue admin view. */
export function createOpsPagesRouter(deps: ApiDeps): Router {
  const router = Router();
  router.use(createDocsRouter());
  const admin = createAdminRouter(deps);
  if (admin) router.use(admin);
  return router;
}
