import { newId } from '@hookline/domain';
import type { Prisma } from './client';

// The outbox (step 1 of "One delivery, from request to callback" in ARCHITECTURE.md): an event and one delivery
// row per matching webhook are written in the caller's transaction. Jobs are
// enqueued only after commit; a delivery whose job never reached Redis stays
// `pending` and the worker's relay enqueues it later.

export type Tx = Prisma.TransactionClient;

export type NewEvent = {
  accountId: string;
  event: string;
  parserId: string | null;
  data: Prisma.InputJsonValue;
  test?: boolean;
  /** Deliver to this webhook only (test sends), whatever its subscriptions. */
  onlyWebhookId?: string;
};

export type WrittenEvent = { eventId: string; createdAt: Date; deliveryIds: string[] };

/**
 * Webhooks that receive `event`: subscribed, in scope, active, not disabled or deleted.
 * outbox-batch.ts says the same in SQL; packages/db/test/outbox-batch.test.ts keeps the two in step.
 */
export function matchingWebhooksWhere(input: Pick<NewEvent, 'accountId' | 'event' | 'parserId'>): Prisma.WebhookWhereInput {
  return {
    accountId: input.accountId,
    deletedAt: null,
    isActive: true,
    disabledReason: null,
    events: { has: input.event },
    // A scoped webhook gets only its parser's events; account-level events (no parser) reach every scope.
    ...(input.parserId ? { OR: [{ parserId: null }, { parserId: input.parserId }] } : {}),
  };
}

export async function writeEvent(tx: Tx, input: NewEvent): Promise<WrittenEvent> {
  const webhooks = input.onlyWebhookId
    ? [{ id: input.onlyWebhookId }]
    : await tx.webhook.findMany({ where: matchingWebhooksWhere(input), select: { id: true } });
  const eventId = newId('event');
  const createdAt = new Date();
  await tx.event.create({
    data: { id: eventId, accountId: input.accountId, event: input.event, parserId: input.parserId, data: input.data, test: input.test ?? false, createdAt },
  });
  const deliveryIds = webhooks.map(() => newId('delivery'));
  if (deliveryIds.length) {
    await tx.delivery.createMany({
      data: webhooks.map((webhook, i) => ({
        id: deliveryIds[i],
        accountId: input.accountId,
        webhookId: webhook.id,
        eventId,
        event: input.event,
        status: 'pending',
        nextAttemptAt: createdAt,
        createdAt,
      })),
    });
  }
  return { eventId, createdAt, deliveryIds };
}

// The batched, raw-SQL write of the ingest hot path.
export * from './outbox-batch';
