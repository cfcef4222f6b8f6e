import { z } from 'zod';
import { attemptSchema, deliveryListQuery, deliveryPageSchema, deliverySchema, documentResultSchema, recoverBody } from '@hookline/domain';
import { getAuth } from '../middleware/auth';
import { getDocumentResult } from '../services/ingest';
import { getDelivery, listDeliveries, recoverDeliveries, retryDelivery } from '../services/deliveries';
import { defineRoute, idParam, json } from './define';
import { documentParams, pathId } from './ingest';

// The integrator's delivery endpoints and the document-result fallback
// (docs/api.md#the-integrator-api).

const webhookId = idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya');
const deliveryId = idParam('dlv_5Rm1aKp7Yc2Lw9Xq4Tz6Bn8V');
const DeliveryDetail = z.object({ delivery: deliverySchema, attempts: z.array(attemptSchema) });
const DeliveryAnswer = z.object({ delivery: deliverySchema });
const Requeued = z.object({ requeued: z.number().int().min(0) });

export const deliveryRoutes = [
  defineRoute({
    method: 'get', path: '/v1/extractions/:extraction_id/documents/:document_id', access: 'api_key', notFound: true, tag: 'Events', operationId: 'getDocumentResult',
    summary: 'Get a document\'s last reported result', description: 'The fallback for a missed callback.', params: documentParams,
    responses: { 200: json(documentResultSchema, 'The document\'s last result.') },
    handler: (deps) => async (req, res) => {
      const extractionId = pathId('extraction_id', req.params.extraction_id);
      const documentId = pathId('document_id', req.params.document_id);
      res.json(await getDocumentResult(deps, getAuth(res).accountId, extractionId, documentId));
    },
  }),
  defineRoute({
    method: 'get', path: '/v1/webhooks/:id/deliveries', access: 'api_key', plan: true, notFound: true, tag: 'Deliveries', operationId: 'listWebhookDeliveries',
    summary: 'List a webhook\'s deliveries', params: webhookId, query: deliveryListQuery,
    responses: { 200: json(deliveryPageSchema, 'A page of deliveries, newest first.') },
    handler: (deps) => async (req, res) => {
      const query = deliveryListQuery.parse(req.query);
      res.json(await listDeliveries(deps, getAuth(res).accountId, String(req.params.id), query));
    },
  }),
  defineRoute({
    method: 'get', path: '/v1/deliveries/:id', access: 'api_key', plan: true, notFound: true, tag: 'Deliveries', operationId: 'getDelivery',
    summary: 'Get a delivery with its attempts', params: deliveryId,
    responses: { 200: json(DeliveryDetail, 'The delivery.') },
    handler: (deps) => async (req, res) => {
      res.json((await getDelivery(deps, getAuth(res).accountId, String(req.params.id))) satisfies z.infer<typeof DeliveryDetail>);
    },
  }),
  defineRoute({
    method: 'post', path: '/v1/deliveries/:id/retry', access: 'api_key', plan: true, idempotent: true, notFound: true, conflict: true, tag: 'Deliveries', operationId: 'retryDelivery',
    summary: 'Retry a delivery now', description: 'One more attempt now, whatever its state.', params: deliveryId,
    responses: { 202: json(DeliveryAnswer, 'The delivery, queued for one more attempt.') },
    handler: (deps) => async (req, res) => {
      res.status(202).json((await retryDelivery(deps, getAuth(res).accountId, String(req.params.id))) satisfies z.infer<typeof DeliveryAnswer>);
    },
  }),
  defineRoute({
    method: 'post', path: '/v1/webhooks/:id/recover', access: 'api_key', plan: true, idempotent: true, notFound: true, tag: 'Deliveries', operationId: 'recoverWebhook',
    summary: 'Retry failed deliveries of a time window', params: webhookId, body: recoverBody,
    responses: { 202: json(Requeued, 'How many failed deliveries were queued again.') },
    handler: (deps) => async (req, res) => {
      const body = recoverBody.parse(req.body ?? {});
      res.status(202).json((await recoverDeliveries(deps, getAuth(res).accountId, String(req.params.id), body)) satisfies z.infer<typeof Requeued>);
    },
  }),
];
