import { Router } from 'express';
import { AppError, createExtractionBody, documentReportBody, externalIdParam, publishEventBody } from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { requirePlatformToken } from '../middleware/auth';
import { idempotent } from '../middleware/idempotency';
import { createEventPublisher } from '../services/event-publisher';
import { createExtraction, publishPlatformEvent, reportDocument } from '../services/ingest';

// Ingest (docs/api.md#the-platform-api): the platform reports extractions, documents and
// events. Every answer here is given after the rows are committed; callbacks
// are the worker's business.

/** A path id, validated like the body's ids (so a report cannot store an id a body could not carry). */
export function pathId(name: string, value: unknown): string {
  const parsed = externalIdParam.safeParse(value);
  if (parsed.success) return parsed.data;
  const message = parsed.error.issues[0]?.message ?? 'is not a valid id';
  throw new AppError('INVALID_PAYLOAD', `${name}: ${message}`, [{ path: name, message }]);
}

export function createIngestRouter(deps: ApiDeps): Router {
  const router = Router();
  const platform = requirePlatformToken(deps);
  // After the token check, so a stored answer is never replayed to an unauthenticated caller.
  const once = idempotent(deps);
  // One per app: concurrent publishes share its batches.
  const publisher = createEventPublisher(deps);

  router.post('/extractions', platform, once, async (req, res) => {
    const body = createExtractionBody.parse(req.body ?? {});
    const { created, extraction } = await createExtraction(deps, body);
    // 200 (not 201) tells a replayed creation from a new one.
    res.status(created ? 201 : 200).json({ extraction });
  });

  router.post('/extractions/:extraction_id/documents/:document_id', platform, once, async (req, res) => {
    const extractionId = pathId('extraction_id', req.params.extraction_id);
    const documentId = pathId('document_id', req.params.document_id);
    const body = documentReportBody.parse(req.body ?? {});
    const outcome = await reportDocument(deps, extractionId, documentId, body);
    res.status(202).json({ accepted: true, duplicate: outcome.duplicate, extraction: outcome.extraction, events: outcome.events });
  });

  router.post('/events', platform, once, async (req, res) => {
    const body = publishEventBody.parse(req.body ?? {});
    const event = await publishPlatformEvent(publisher, body);
    res.status(202).json({ event: { id: event.id, event: event.event, deliveries: event.deliveries } });
  });

  return router;
}
