import type { z } from 'zod';
import type { Prisma } from '@hookline/db';
import { isUniqueViolation, readIdempotencyRecords, takeIdempotencyKey, transactionSql, writeEvent, type IdempotencyRecord } from '@hookline/db';
import {
  AppError,
  documentResultResource,
  extractionResource,
  newId,
  type createExtractionBody,
  type documentReportBody,
  type EventName,
  type ExtractionRow,
  type publishEventBody,
} from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { IDEMPOTENCY_TTL_MS, sealAnswer, type IdempotencyContext } from '../middleware/idempotency';
import type { EventPublisher, Published } from './event-publisher';
import { inSpan, SpanKind } from '@hookline/telemetry';
import { emitted, enqueueCommitted, type EmittedEvent, type Written } from './outbox-enqueue';

// Ingest: the platform reports extractions and documents; each report becomes
// events and delivery rows in one transaction (the outbox), and jobs are
// enqueued only after commit. The API never sends a callback itself.
// Published events take the batched raw-SQL path of event-publisher.ts; the
// rarer document reports keep their interactive transaction (a row lock
// orders racing reports of one extraction).

export type CreateExtractionInput = z.infer<typeof createExtractionBody>;
export type DocumentReportInput = z.infer<typeof documentReportBody>;
export type PublishEventInput = z.infer<typeof publishEventBody>;

// Racing reports of one extraction queue on its row lock; with a small pool
// a report may wait a while for a connection, which must not fail it.
const TX_OPTIONS = { maxWait: 15_000, timeout: 20_000 } as const;

export async function requireAccount(deps: Pick<ApiDeps, 'db'>, accountId: string): Promise<void> {
  const account = await deps.db.prisma.account.findUnique({ where: { id: accountId }, select: { id: true } });
  if (!account) throw new AppError('RESOURCE_NOT_FOUND', `No such account: ${accountId}. Create it first with POST /internal/v1/accounts.`);
}

/**
 * Creates an extraction. Replaying the same creation (same id, account,
 * parser and document_count) answers the existing row with `created: false`
 * instead of failing, so a platform retry after a lost response is harmless;
 * the same id with other attributes is refused.
 */
export async function createExtraction(deps: Pick<ApiDeps, 'db'>, input: CreateExtractionInput): Promise<{ created: boolean; extraction: ReturnType<typeof extractionResource> }> {
  await requireAccount(deps, input.account_id);
  const id = input.extraction_id ?? newId('extraction');
  const parserId = input.parser_id ?? null;
  const created = await deps.db.prisma.extraction
    .create({ data: { id, accountId: input.account_id, parserId, documentCount: input.document_count } })
    .then((row) => row, (err: unknown) => {
      if (isUniqueViolation(err)) return null;
      throw err;
    });
  if (created) return { created: true, extraction: extractionResource(created) };

  const existing = await deps.db.prisma.extraction.findUnique({ where: { id } });
  if (!existing) throw new AppError('INTERNAL_ERROR', 'The extraction could not be created; try again.');
  const same = existing.accountId === input.account_id && existing.parserId === parserId && existing.documentCount === input.document_count;
  if (!same) {
    throw new AppError('INVALID_PAYLOAD', `extraction_id "${id}" already exists with a different account_id, parser_id or document_count; use a new extraction_id.`, [
      { path: 'extraction_id', message: 'already exists' },
    ]);
  }
  return { created: false, extraction: extractionResource(existing) };
}

export type ReportOutcome = {
  duplicate: boolean;
  extraction: ReturnType<typeof extractionResource>;
  events: EmittedEvent[];
};

/** The 202 body of a document report, as sent and as stored for a replay. */
export const reportAccepted = (outcome: ReportOutcome) => ({ accepted: true as const, duplicate: outcome.duplicate, extraction: outcome.extraction, events: outcome.events });

/** Thrown inside the report's transaction to roll it back: the request's key was taken first. */
class KeyTakenFirst extends Error {}


const terminalStatus = (row: Pick<ExtractionRow, 'completedCount' | 'failedCount'>) =>
  row.failedCount === 0 ? 'completed' : row.completedCount === 0 ? 'failed' : 'partial';

/**
 * One document reached completed or failed. Exactly-once rules, even when
 * reports race:
 * - the (extraction, document) primary key makes a second report of a document
 *   a no-op (INSERT … ON CONFLICT DO NOTHING waits for a racing insert to commit);
 * - the counters move by one UPDATE … RETURNING that holds the extraction's row
 *   lock until commit, so each report sees the counts its predecessors left and
 *   exactly one of them brings completed + failed to document_count;
 * - that one flips `status` under `WHERE status = 'processing'` and alone writes
 *   extraction.job_completed and the batch.* event.
 * The first report of a document wins: a later one changes neither the stored
 * result nor the counts (the callbacks already told the integrator the first).
 */
export async function reportDocument(
  deps: Pick<ApiDeps, 'db' | 'queue' | 'logger' | 'metrics' | 'secretBox'>,
  extractionId: string,
  documentId: string,
  input: DocumentReportInput,
  key?: IdempotencyContext,
): Promise<ReportOutcome | { keyTaken: IdempotencyRecord | null }> {
  const outcome = await inSpan('hookline.outbox.write', () => deps.db.prisma.$transaction(async (tx) => {
    const report = await writeReport(tx);
    // The key is recorded with the report's own writes, answer included, as its
    // last statement: a replay (or a racing request with the same key, which
    // waits here for the first to commit) finds it taken and rolls back.
    if (key) {
      const answer = reportAccepted({ duplicate: report.duplicate, extraction: extractionResource(report.extraction), events: report.written.map(emitted) });
      const take = { scope: key.scope, request_hash: key.requestHash, response_status: 202, response_body: sealAnswer(deps, answer), ttl_ms: IDEMPOTENCY_TTL_MS };
      if (!(await takeIdempotencyKey(transactionSql(tx), take))) throw new KeyTakenFirst();
    }
    return report;
  }, TX_OPTIONS), { kind: SpanKind.CLIENT }).catch(async (err: unknown) => {
    if (!(err instanceof KeyTakenFirst) || !key) throw err;
    const records = await readIdempotencyRecords(deps.db.sql, [key.scope]);
    return { keyTaken: records.get(key.scope) ?? null };
  });
  if ('keyTaken' in outcome) return outcome;

  const events = outcome.written.length ? await enqueueCommitted(deps, outcome.written) : [];
  return { duplicate: outcome.duplicate, extraction: extractionResource(outcome.extraction), events };

  async function writeReport(tx: Prisma.TransactionClient) {
    const extraction = await tx.extraction.findUnique({ where: { id: extractionId } });
    if (!extraction) throw new AppError('RESOURCE_NOT_FOUND', `No such extraction: ${extractionId}. Create it first with POST /internal/v1/extractions.`);

    const inserted = await tx.extractionDocument.createMany({
      data: [{
        extractionId,
        documentId,
        status: input.status,
        fileName: input.file_name ?? null,
        // JSONB: a string or an object, stored and passed on as sent (SQL NULL when absent).
        ...(input.status === 'failed' && input.error != null ? { error: input.error as Prisma.InputJsonValue } : {}),
        ...(input.status === 'completed' && input.result ? { result: input.result as Prisma.InputJsonObject } : {}),
      }],
      skipDuplicates: true,
    });
    if (inserted.count === 0) return { duplicate: true, extraction, written: [] as Written[] };

    const completed = input.status === 'completed' ? 1 : 0;
    const [counts] = await tx.$queryRaw<ExtractionRow[]>`
      UPDATE extractions
         SET completed_count = completed_count + ${completed}::int,
             failed_count = failed_count + ${1 - completed}::int,
             updated_at = now()
       WHERE id = ${extractionId} AND completed_count + failed_count < document_count
      RETURNING id, account_id AS "accountId", parser_id AS "parserId", document_count AS "documentCount",
                completed_count AS "completedCount", failed_count AS "failedCount", status,
                completed_at AS "completedAt", created_at AS "createdAt"`;
    if (!counts) {
      throw new AppError(
        'INVALID_PAYLOAD',
        `Extraction ${extractionId} already has all ${extraction.documentCount} of its documents reported (document_count is ${extraction.documentCount}); document ${documentId} cannot be added.`,
        [{ path: 'document_id', message: `exceeds document_count (${extraction.documentCount})` }],
      );
    }

    const written: Written[] = [];
    const emit = async (event: EventName, data: Prisma.InputJsonObject) => {
      const w = await writeEvent(tx, { accountId: counts.accountId, event, parserId: counts.parserId, data }, deps.db);
      written.push({ ...w, event });
    };
    await emit('extraction.document_completed', {
      extraction_id: extractionId,
      document_id: documentId,
      parser_id: counts.parserId,
      status: input.status,
      file_name: input.file_name ?? null,
      ...(input.status === 'completed' ? { result: (input.result ?? null) as Prisma.InputJsonObject | null } : { error: (input.error ?? null) as Prisma.InputJsonValue | null }),
    });

    if (counts.completedCount + counts.failedCount < counts.documentCount) return { duplicate: false, extraction: counts, written };

    const status = terminalStatus(counts);
    const completedAt = new Date();
    // The status guard makes the flip happen once even if counting ever went wrong.
    const flipped = await tx.extraction.updateMany({ where: { id: extractionId, status: 'processing' }, data: { status, completedAt } });
    if (flipped.count === 0) return { duplicate: false, extraction: counts, written };
    const summary = {
      extraction_id: extractionId,
      parser_id: counts.parserId,
      status,
      document_count: counts.documentCount,
      completed_count: counts.completedCount,
      failed_count: counts.failedCount,
    };
    await emit('extraction.job_completed', summary);
    await emit(`batch.${status}`, summary);
    return { duplicate: false, extraction: { ...counts, status, completedAt }, written };
  }
}

/**
 * An event the platform publishes directly (quota.*, or any catalog event).
 * The publisher batches concurrent calls (see event-publisher.ts); an unknown
 * account is refused with 404 and nothing is written for it.
 */
export function publishPlatformEvent(publisher: EventPublisher, input: PublishEventInput, key?: IdempotencyContext): Promise<Published> {
  return publisher.publish({
    accountId: input.account_id,
    event: input.event,
    parserId: input.parser_id ?? null,
    data: input.data as Prisma.InputJsonObject,
    key,
  });
}

/** The stored result of one document, for its own account only (the fallback for a missed callback). */
export async function getDocumentResult(deps: Pick<ApiDeps, 'db'>, accountId: string, extractionId: string, documentId: string) {
  const extraction = await deps.db.prisma.extraction.findFirst({ where: { id: extractionId, accountId }, select: { id: true, parserId: true } });
  if (!extraction) throw new AppError('RESOURCE_NOT_FOUND', `No such extraction: ${extractionId}.`);
  const doc = await deps.db.prisma.extractionDocument.findUnique({ where: { extractionId_documentId: { extractionId, documentId } } });
  if (!doc) throw new AppError('RESOURCE_NOT_FOUND', `No result for document ${documentId} of extraction ${extractionId} yet: it has not finished processing.`);
  return documentResultResource(extraction, doc);
}
