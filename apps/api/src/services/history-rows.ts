import { createdRange } from '@hookline/db';
import type { AttemptRow, DeliveryRow } from '@hookline/domain';

// Rows of the delivery log in either shape (docs/operations.md, "Rolling
// upgrades and the compact history"): in the compact history a delivery leaves
// its copies of the event's name and its webhook's account NULL, and an attempt
// its copies of its delivery's event id and name. These read them where they
// always are (the event, the delivery), whichever shape a row has.

/** Prisma `include` for a delivery's event name. */
export const DELIVERY_EVENT = { eventRecord: { select: { event: true } } } as const;

/** Prisma `include` for an attempt's event id and name, through its delivery. */
export const ATTEMPT_EVENT = { delivery: { select: { eventId: true, event: true, eventRecord: { select: { event: true } } } } } as const;

type DeliveryWithEvent = Omit<DeliveryRow, 'event'> & { event: string | null; eventRecord: { event: string } };
type AttemptWithoutEvent = Omit<AttemptRow, 'event' | 'eventId'> & { event: string | null; eventId: string | null };
type AttemptWithEvent = AttemptWithoutEvent & { delivery: { eventId: string; event: string | null; eventRecord: { event: string } } };

export function deliveryRow(row: DeliveryWithEvent): DeliveryRow {
  return { ...row, event: row.event ?? row.eventRecord.event };
}

/** An attempt, with its delivery's event id and name where it has none of its own. */
export function attemptRow(row: AttemptWithoutEvent, of: { eventId: string; event: string }): AttemptRow {
  return { ...row, eventId: row.eventId ?? of.eventId, event: row.event ?? of.event };
}

/** An attempt read with ATTEMPT_EVENT. */
export function attemptRowOf(row: AttemptWithEvent): AttemptRow {
  const { delivery } = row;
  return attemptRow(row, { eventId: delivery.eventId, event: delivery.event ?? delivery.eventRecord.event });
}

/** Prisma `where` for a delivery's attempts: never older than the delivery, so the partitions before its own are left out. */
export function attemptsOfWhere(deliveryId: string): { deliveryId: string; createdAt?: { gte: Date } } {
  const { from } = createdRange(deliveryId);
  return from ? { deliveryId, createdAt: { gte: from } } : { deliveryId };
}
