import { Router } from 'express';
import { EVENT_TYPES, createWebhookBody, listQuery, updateWebhookBody } from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { getAuth } from '../middleware/auth';
import { idempotent } from '../middleware/idempotency';
import { v1Auth } from '../middleware/v1-auth';
import { createWebhook, deleteWebhook, getWebhook, listWebhooks, updateWebhook } from '../services/webhooks';

// The integrator's webhook API (docs/api.md#the-integrator-api). Handlers only parse and
// answer; the rules live in services/webhooks.ts, which the dashboard shares.
export function createWebhooksRouter(deps: ApiDeps): Router {
  const router = Router();
  const anyPlan = v1Auth(deps);
  // Webhooks need the pro or enterprise plan.
  const paid = v1Auth(deps, { requirePlan: true });

  router.get('/event-types', ...anyPlan, (_req, res) => {
    res.json({ data: EVENT_TYPES.map(({ name, description, source }) => ({ name, description, source })) });
  });

  router.get('/webhooks', ...paid, async (req, res) => {
    const query = listQuery.parse(req.query);
    res.json(await listWebhooks(deps, getAuth(res).accountId, query));
  });

  router.post('/webhooks', ...paid, idempotent(deps), async (req, res) => {
    const body = createWebhookBody.parse(req.body);
    const { webhook, signingSecret } = await createWebhook(deps, getAuth(res), body, 'api');
    res.locals.webhookId = webhook.id;
    res.status(201).json({ webhook: { ...webhook, signing_secret: signingSecret } });
  });

  router.get('/webhooks/:id', ...paid, async (req, res) => {
    const found = await getWebhook(deps, getAuth(res).accountId, String(req.params.id));
    res.locals.webhookId = found.webhook.id;
    res.json(found);
  });

  router.patch('/webhooks/:id', ...paid, async (req, res) => {
    const patch = updateWebhookBody.parse(req.body === undefined ? {} : req.body);
    const webhook = await updateWebhook(deps, getAuth(res), String(req.params.id), patch);
    res.locals.webhookId = webhook.id;
    res.json({ webhook });
  });

  router.delete('/webhooks/:id', ...paid, async (req, res) => {
    await deleteWebhook(deps, getAuth(res).accountId, String(req.params.id));
    res.status(204).end();
  });

  return router;
}
