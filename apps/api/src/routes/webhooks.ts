import { z } from 'zod';
import {
  EVENT_TYPES,
  attemptSchema,
  createWebhookBody,
  eventTypeResource,
  eventTypeSchema,
  listQuery,
  updateWebhookBody,
  webhookPageSchema,
  webhookSchema,
  webhookWithSecretSchema,
} from '@hookline/domain';
import { getAuth } from '../middleware/auth';
import { createWebhook, deleteWebhook, getWebhook, listWebhooks, rotateSecret, sendTest, updateWebhook } from '../services/webhooks';
import { defineRoute, idParam, json, noContent } from './define';

// The integrator's webhook API (docs/api.md#the-integrator-api). Handlers only parse and
// answer; the rules live in services/webhooks.ts, which the dashboard shares.

const webhookId = idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya');
const WebhookCreated = z.object({ webhook: webhookWithSecretSchema });
const WebhookDetail = z.object({ webhook: webhookSchema, recent_attempts: z.array(attemptSchema) });
const WebhookAnswer = z.object({ webhook: webhookSchema });
const TestAttempt = z.object({ attempt: attemptSchema });
const EventTypeList = z.object({ data: z.array(eventTypeSchema) });

export const webhookRoutes = [
  defineRoute({
    method: 'get', path: '/v1/event-types', access: 'api_key', tag: 'Events', operationId: 'listEventTypes',
    summary: 'List event types', responses: { 200: json(EventTypeList, 'The event catalog.') },
    handler: () => (_req, res) => {
      res.json({ data: EVENT_TYPES.map(eventTypeResource) } satisfies z.infer<typeof EventTypeList>);
    },
  }),
  defineRoute({
    method: 'get', path: '/v1/webhooks', access: 'api_key', plan: true, tag: 'Webhooks', operationId: 'listWebhooks',
    summary: 'List webhooks', description: 'The account\'s webhooks, newest first, deleted ones left out.',
    query: listQuery, responses: { 200: json(webhookPageSchema, 'A page of webhooks.') },
    handler: (deps) => async (req, res) => {
      const query = listQuery.parse(req.query);
      res.json(await listWebhooks(deps, getAuth(res).accountId, query));
    },
  }),
  defineRoute({
    method: 'post', path: '/v1/webhooks', access: 'api_key', plan: true, idempotent: true, conflict: true, tag: 'Webhooks', operationId: 'createWebhook',
    summary: 'Create a webhook', description: 'A live key may register only https:// URLs; a test key may also register http://. The signing secret is in this answer only.',
    body: createWebhookBody, responses: { 201: json(WebhookCreated, 'The new webhook with its signing secret.') },
    handler: (deps) => async (req, res) => {
      const body = createWebhookBody.parse(req.body);
      const { webhook, signingSecret } = await createWebhook(deps, getAuth(res), body, 'api');
      res.status(201).json({ webhook: { ...webhook, signing_secret: signingSecret } } satisfies z.infer<typeof WebhookCreated>);
    },
  }),
  defineRoute({
    method: 'get', path: '/v1/webhooks/:id', access: 'api_key', plan: true, notFound: true, tag: 'Webhooks', operationId: 'getWebhook',
    summary: 'Get a webhook', description: 'With its last 10 attempts, newest first.',
    params: webhookId, responses: { 200: json(WebhookDetail, 'The webhook.') },
    handler: (deps) => async (req, res) => {
      const found = await getWebhook(deps, getAuth(res).accountId, String(req.params.id));
      res.json(found satisfies z.infer<typeof WebhookDetail>);
    },
  }),
  defineRoute({
    method: 'patch', path: '/v1/webhooks/:id', access: 'api_key', plan: true, notFound: true, conflict: true, tag: 'Webhooks', operationId: 'updateWebhook',
    summary: 'Update a webhook', description: '`secret: null` removes the static secret; `max_in_flight: null` and `rate_limit_per_second: null` go back to the defaults; `is_active: true` on a disabled webhook re-enables it and closes its circuit.',
    params: webhookId, body: updateWebhookBody, responses: { 200: json(WebhookAnswer, 'The updated webhook.') },
    handler: (deps) => async (req, res) => {
      const patch = updateWebhookBody.parse(req.body === undefined ? {} : req.body);
      const webhook = await updateWebhook(deps, getAuth(res), String(req.params.id), patch);
      res.json({ webhook } satisfies z.infer<typeof WebhookAnswer>);
    },
  }),
  defineRoute({
    method: 'delete', path: '/v1/webhooks/:id', access: 'api_key', plan: true, notFound: true, tag: 'Webhooks', operationId: 'deleteWebhook',
    summary: 'Delete a webhook', description: 'Soft delete: gone from every read; no further callback is sent, retries included.',
    params: webhookId, responses: { 204: noContent('Deleted.') },
    handler: (deps) => async (req, res) => {
      await deleteWebhook(deps, getAuth(res).accountId, String(req.params.id));
      res.status(204).end();
    },
  }),
  defineRoute({
    method: 'post', path: '/v1/webhooks/:id/test', access: 'api_key', plan: true, notFound: true, tag: 'Webhooks', operationId: 'testWebhook',
    summary: 'Send a test callback', description: 'A synthetic, signed callback of an event the webhook is subscribed to (the first of its events in catalog order) with `"test": true`, tried once (no retries); answers once it was tried.',
    params: webhookId, responses: { 200: json(TestAttempt, 'The attempt.') },
    handler: (deps) => async (req, res) => {
      // Stop polling once the caller has gone; the test itself is still delivered.
      const aborted = new AbortController();
      res.on('close', () => aborted.abort());
      const outcome = await sendTest(deps, getAuth(res).accountId, String(req.params.id), { signal: aborted.signal });
      if (outcome) res.json(outcome satisfies z.infer<typeof TestAttempt>);
    },
  }),
  // No Idempotency-Key here: it is honoured where docs/api.md says (create, retry, recover, the platform's POSTs).
  defineRoute({
    method: 'post', path: '/v1/webhooks/:id/rotate-secret', access: 'api_key', plan: true, notFound: true, tag: 'Webhooks', operationId: 'rotateWebhookSecret',
    summary: 'Rotate the signing secret', description: 'For 24 h, callbacks carry signatures by both the old and the new secret.',
    params: webhookId, responses: { 200: json(WebhookCreated, 'The webhook with its new signing secret.') },
    handler: (deps) => async (req, res) => {
      res.json((await rotateSecret(deps, getAuth(res).accountId, String(req.params.id))) satisfies z.infer<typeof WebhookCreated>);
    },
  }),
];
