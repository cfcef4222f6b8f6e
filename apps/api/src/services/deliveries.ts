import type { z } from 'zod';
import { AppError, attemptResource, decodeCursor, deliveryResource, encodeCursor, type deliveryListQuery, type recoverBody } from '@hookline/domain';
import { createdAtWhere, createdAtWhereAll } from '@hookline/db';
import type { ApiDeps } from '../deps';
import { attemptRow, attemptsOfWhere, deliveryRow, withEventNames } from './history-rows';
import { enqueueWithin, queueDown } from './outbox-enqueue';
import { getWebhookRow } from './webhooks';

// The integrator's delivery endpoints (docs/api.md#the-integrator-api): the log, manual
// retries and recovery of a failed window. Like ingest, nothing here sends a
// callback: it writes rows and enqueues jobs.

export type DeliveryListQuery = z.infer<typeof deliveryListQuery>;
export type RecoverInput = z.infer<typeof recoverBody>;

const RECOVER_BATCH = 500;
const ID_RE = /^[a-z]+_[0-9A-Za-z]{1,64}$/;

const deliveryNotFound = () => new AppError('RESOURCE_NOT_FOUND', 'No such delivery.');

async function findOwnDelivery(deps: Pick<ApiDeps, 'db'>, accountId: string, deliveryId: string) {
  if (!ID_RE.test(deliveryId)) throw deliveryNotFound();
  // A deleted webhook takes its deliveries out of every read with it. The account
  // is the webhook's (a delivery's own copy is NULL in the compact history).
  // On the one partition of the id's time (createdAtWhere), and so its event (written at the same time):
  // not through Prisma's include, whose query of the event by id alone would look in every partition.
  const row = await deps.db.prisma.delivery.findFirst({ where: { id: deliveryId, ...createdAtWhere(deliveryId), webhook: { accountId, deletedAt: null } } });
  if (!row) throw deliveryNotFound();
  const event = row.event ?? (await deps.db.prisma.event.findFirst({ where: { id: row.eventId, ...createdAtWhere(deliveryId) }, select: { event: true } }))?.event;
  if (event === undefined) throw deliveryNotFound();
  return deliveryRow({ ...row, eventRecord: { event } });
}

/** Newest first, keyset-paginated on (created_at, id). */
export async function listDeliveries(deps: Pick<ApiDeps, 'db'>, accountId: string, webhookId: string, query: DeliveryListQuery) {
  // The webhook is the account's: its deliveries are, whatever their own account_id says (NULL in the compact history).
  await getWebhookRow(deps, accountId, webhookId);
  const cursor = query.cursor === undefined ? null : decodeCursor(query.cursor);
  if (query.cursor !== undefined && !cursor) {
    throw new AppError('INVALID_PAYLOAD', 'cursor: is not a valid cursor; pass the next_cursor of the previous page unchanged.', [{ path: 'cursor', message: 'is not a valid cursor' }]);
  }
  const rows = await deps.db.prisma.delivery.findMany({
    where: {
      webhookId,
      ...(query.status ? { status: query.status } : {}),
      // The event's own name: a delivery's copy is NULL in the compact history.
      ...(query.event ? { eventRecord: { event: query.event } } : {}),
      ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: query.limit + 1,
  });
  // The page's event names, on the partitions the page spans (not Prisma's include: by id alone, in every partition).
  const page = (await withEventNames(deps.db, rows.slice(0, query.limit))).map(deliveryRow);
  const hasMore = rows.length > query.limit;
  const last = page[page.length - 1];
  return { data: page.map(deliveryResource), has_more: hasMore, next_cursor: hasMore && last ? encodeCursor(last) : null };
}

/** A page of the log (listDeliveries) with each delivery's attempts, newest first, read for the whole page in one query. */
export async function listDeliveriesWithAttempts(deps: Pick<ApiDeps, 'db'>, accountId: string, webhookId: string, query: DeliveryListQuery) {
  const list = await listDeliveries(deps, accountId, webhookId, query);
  // The deliveries are already this account's webhook's: their attempts are too.
  // Attempts are never older than their delivery: the partitions before the page's oldest are left out.
  const ids = list.data.map((d) => d.id);
  const from = createdAtWhereAll(ids).createdAt?.gte;
  const attempts = ids.length
    ? await deps.db.prisma.attempt.findMany({ where: { deliveryId: { in: ids }, ...(from ? { createdAt: { gte: from } } : {}) }, orderBy: [{ deliveryId: 'asc' }, { attemptNumber: 'desc' }] })
    : [];
  const data = list.data.map((delivery) => ({
    delivery,
    attempts: attempts.filter((a) => a.deliveryId === delivery.id).map((a) => attemptResource(attemptRow(a, { eventId: delivery.event_id, event: delivery.event }))),
  }));
  return { ...list, data };
}

/** What a webhook's card says of its newest delivery and that delivery's last attempt; null before its first. */
export type LastDelivery = {
  status: string;
  event: string;
  createdAt: string;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  responseStatus: number | null;
  error: string | null;
} | null;

/**
 * The newest delivery by the list index (webhook_id, created_at desc), ties in id
 * order; then its event's name and its last attempt, each on the partitions of the
 * delivery's id's time on (not through Prisma's nested reads, by id alone in every
 * partition). The webhook is the caller's, listed for its account.
 */
export async function lastDelivery(deps: Pick<ApiDeps, 'db'>, webhookId: string): Promise<LastDelivery> {
  const found = await deps.db.prisma.delivery.findFirst({
    where: { webhookId },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    select: { id: true, status: true, eventId: true, event: true, createdAt: true, lastAttemptAt: true, nextAttemptAt: true },
  });
  if (!found) return null;
  // A delivery's own copy of the event's name is NULL in the compact history.
  const [row] = await withEventNames(deps.db, [found]);
  const attempt = await deps.db.prisma.attempt.findFirst({ where: attemptsOfWhere(row.id), orderBy: { attemptNumber: 'desc' }, select: { responseStatus: true, error: true } });
  return {
    status: row.status,
    event: row.eventRecord.event,
    createdAt: row.createdAt.toISOString(),
    lastAttemptAt: row.lastAttemptAt?.toISOString() ?? null,
    nextAttemptAt: row.nextAttemptAt?.toISOString() ?? null,
    responseStatus: attempt?.responseStatus ?? null,
    error: attempt?.error ?? null,
  };
}

export async function getDelivery(deps: Pick<ApiDeps, 'db'>, accountId: string, deliveryId: string) {
  const delivery = await findOwnDelivery(deps, accountId, deliveryId);
  const attempts = await deps.db.prisma.attempt.findMany({ where: attemptsOfWhere(deliveryId), orderBy: { attemptNumber: 'asc' } });
  return { delivery: deliveryResource(delivery), attempts: attempts.map((a) => attemptResource(attemptRow(a, delivery))) };
}

/**
 * One more attempt now, whatever the delivery's state. The job has its own id
 * (`once`), so it never collides with a delayed retry job of the same delivery;
 * the worker records it as the next attempt and does not retry it.
 */
export async function retryDelivery(deps: Pick<ApiDeps, 'db' | 'queue'>, accountId: string, deliveryId: string) {
  const delivery = await findOwnDelivery(deps, accountId, deliveryId);
  await enqueueWithin(deps, [{ id: delivery.id, webhookId: delivery.webhookId }], { once: true }).catch(() => {
    throw queueDown();
  });
  return { delivery: deliveryResource(delivery) };
}

/** Every failed delivery of the webhook created in [since, until] gets one more attempt. */
export async function recoverDeliveries(deps: Pick<ApiDeps, 'db' | 'queue'>, accountId: string, webhookId: string, input: RecoverInput) {
  const since = new Date(input.since);
  const until = input.until ? new Date(input.until) : new Date();
  if (since > until) {
    throw new AppError('INVALID_PAYLOAD', 'since: must not be later than until (until defaults to now).', [{ path: 'since', message: 'must not be later than until' }]);
  }
  await getWebhookRow(deps, accountId, webhookId);
  let requeued = 0;
  let afterId: string | undefined;
  // In id order by batches, so a large window never loads every row at once.
  for (;;) {
    const batch = await deps.db.prisma.delivery.findMany({
      where: { webhookId, status: 'failed', createdAt: { gte: since, lte: until }, ...(afterId ? { id: { gt: afterId } } : {}) },
      orderBy: { id: 'asc' },
      select: { id: true },
      take: RECOVER_BATCH,
    });
    if (batch.length === 0) break;
    await enqueueWithin(deps, batch.map((d) => ({ id: d.id, webhookId })), { once: true }).catch(() => {
      throw queueDown();
    });
    requeued += batch.length;
    afterId = batch[batch.length - 1].id;
    if (batch.length < RECOVER_BATCH) break;
  }
  return { requeued };
}
