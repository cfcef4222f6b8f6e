import { Router } from 'express';
import { deliveryListQuery, recoverBody } from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { getAuth } from '../middleware/auth';
import { idempotent } from '../middleware/idempotency';
import { v1Auth } from '../middleware/v1-auth';
import { getDocumentResult } from '../services/ingest';
import { getDelivery, listDeliveries, recoverDeliveries, retryDelivery, rotateSecret, sendTest } from '../services/deliveries';
import { pathId } from './ingest';

// The integrator's delivery endpoints and the document-result fallback
// (docs/api.md#the-integrator-api). Guards are applied per route (never router.use), so
// an unknown /v1 path still answers 404.
export function createDeliveriesRouter(deps: ApiDeps): Router {
  const router = Router();
  const anyPlan = v1Auth(deps);
  // Webhooks and their deliveries need the pro or enterprise plan.
  const paid = v1Auth(deps, { requirePlan: true });
  // After authentication: a stored answer is scoped to the account and never replayed to anyone else.
  const once = idempotent(deps);

  router.get('/extractions/:extraction_id/documents/:document_id', ...anyPlan, async (req, res) => {
    const extractionId = pathId('extraction_id', req.params.extraction_id);
    const documentId = pathId('document_id', req.params.document_id);
    res.json(await getDocumentResult(deps, getAuth(res).accountId, extractionId, documentId));
  });

  router.get('/webhooks/:id/deliveries', ...paid, async (req, res) => {
    res.locals.webhookId = req.params.id;
    const query = deliveryListQuery.parse(req.query);
    res.json(await listDeliveries(deps, getAuth(res).accountId, String(req.params.id), query));
  });

  router.get('/deliveries/:id', ...paid, async (req, res) => {
    res.locals.deliveryId = req.params.id;
    res.json(await getDelivery(deps, getAuth(res).accountId, String(req.params.id)));
  });

  router.post('/deliveries/:id/retry', ...paid, once, async (req, res) => {
    res.locals.deliveryId = req.params.id;
    res.status(202).json(await retryDelivery(deps, getAuth(res).accountId, String(req.params.id)));
  });

  router.post('/webhooks/:id/recover', ...paid, once, async (req, res) => {
    res.locals.webhookId = req.params.id;
    const body = recoverBody.parse(req.body ?? {});
    res.status(202).json(await recoverDeliveries(deps, getAuth(res).accountId, String(req.params.id), body));
  });

  // No Idempotency-Key here: the API honours it for create and retry only (stored answers are sealed anyway).
  router.post('/webhooks/:id/rotate-secret', ...paid, async (req, res) => {
    res.locals.webhookId = req.params.id;
    res.json(await rotateSecret(deps, getAuth(res).accountId, String(req.params.id)));
  });

  router.post('/webhooks/:id/test', ...paid, async (req, res) => {
    res.locals.webhookId = req.params.id;
    // Stop polling once the caller has gone; the test itself is still delivered.
    const aborted = new AbortController();
    res.on('close', () => aborted.abort());
    const outcome = await sendTest(deps, getAuth(res).accountId, String(req.params.id), { signal: aborted.signal });
    if (outcome) res.json(outcome);
  });

  return router;
}
