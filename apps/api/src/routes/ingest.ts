import { z } from 'zod';
import {
  AppError,
  createExtractionBody,
  documentReportBody,
  emittedEventSchema,
  externalIdParam,
  extractionSchema,
  publishEventBody,
} from '@hookline/domain';
import { idempotencyOf, replay } from '../middleware/idempotency';
import { traced } from '../middleware/tracing';
import { createEventPublisher, eventAccepted } from '../services/event-publisher';
import { createExtraction, publishPlatformEvent, reportAccepted, reportDocument } from '../services/ingest';
import { defineRoute, json } from './define';

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

export const documentParams = z.object({
  extraction_id: z.string().meta({ example: 'ext_9Lq2Wb7Nc4Tz1Km8Vr3Yd5Hx' }),
  document_id: z.string().meta({ example: 'doc-1' }),
});

const ExtractionAnswer = z.object({ extraction: extractionSchema });
export const DocumentReportAccepted = z
  .object({
    accepted: z.literal(true),
    duplicate: z.boolean().meta({ description: 'true when this document was already reported: nothing new was emitted.' }),
    extraction: extractionSchema,
    events: z.array(emittedEventSchema),
  })
  .meta({ id: 'DocumentReportAccepted' });
const EventAccepted = z.object({ event: emittedEventSchema });

export const ingestRoutes = [
  defineRoute({
    method: 'post', path: '/internal/v1/extractions', access: 'platform', idempotent: true, notFound: true, conflict: true, tag: 'Platform', operationId: 'createExtraction',
    summary: 'Start an extraction', description: 'Creating an extraction_id that exists answers 200 with the existing extraction.',
    body: createExtractionBody,
    responses: { 201: json(ExtractionAnswer, 'The new extraction.'), 200: json(ExtractionAnswer, 'The extraction already existed.') },
    handler: (deps) => async (req, res) => {
      const body = createExtractionBody.parse(req.body ?? {});
      const { created, extraction } = await createExtraction(deps, body);
      // 200 (not 201) tells a replayed creation from a new one.
      res.status(created ? 201 : 200).json({ extraction } satisfies z.infer<typeof ExtractionAnswer>);
    },
  }),
  defineRoute({
    method: 'post', path: '/internal/v1/extractions/:extraction_id/documents/:document_id', access: 'platform', idempotent: 'in-transaction', notFound: true, tag: 'Platform', operationId: 'reportDocument',
    summary: 'Report a document result',
    description: 'Emits extraction.document_completed; the report that makes the extraction terminal also emits extraction.job_completed and one batch.* event, exactly once even when reports race. Reporting a document twice emits nothing new.',
    params: documentParams, body: documentReportBody, responses: { 202: json(DocumentReportAccepted, 'Accepted, with the events it emitted.') },
    handler: (deps) => traced('post', '/internal/v1/extractions/:extraction_id/documents/:document_id', async (req, res) => {
      const extractionId = pathId('extraction_id', req.params.extraction_id);
      const documentId = pathId('document_id', req.params.document_id);
      const body = documentReportBody.parse(req.body ?? {});
      const key = idempotencyOf(res);
      const outcome = await reportDocument(deps, extractionId, documentId, body, key);
      if ('keyTaken' in outcome) return replay(deps, res, key!, outcome.keyTaken);
      res.status(202).json(reportAccepted(outcome) satisfies z.infer<typeof DocumentReportAccepted>);
    }),
  }),
  defineRoute({
    method: 'post', path: '/internal/v1/events', access: 'platform', idempotent: 'in-transaction', notFound: true, tag: 'Platform', operationId: 'publishEvent',
    summary: 'Publish an event', body: publishEventBody,
    responses: { 202: json(EventAccepted, 'The event and how many deliveries it made.') },
    handler: (deps) => {
      // One per app: concurrent publishes share its batches.
      const publisher = createEventPublisher(deps);
      return traced('post', '/internal/v1/events', async (req, res) => {
        const body = publishEventBody.parse(req.body ?? {});
        const key = idempotencyOf(res);
        const published = await publishPlatformEvent(publisher, body, key);
        if (published.keyTaken !== undefined) return replay(deps, res, key!, published.keyTaken);
        res.status(202).json(eventAccepted(published.event) satisfies z.infer<typeof EventAccepted>);
      });
    },
  }),
];
