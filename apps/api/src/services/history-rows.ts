import { createdAtWhereAll, createdRange, type Db } from '@hookline/db';
import type { AttemptRow, DeliveryRow } from '@hookline/domain';

// Rows of the delivery log in either shape (docs/operations.md, "Rolling
// upgrades and the compact history"): in the compact history a delivery leaves
// its copies of the event's name and its webhook's account NULL, and an attempt
// its copies of its delivery's event id and name. These read them where they
// always are (the event, the delivery), whichever shape a row has.

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

/**
 * A page of deliveries with their event's name, read where they have no copy of
 * their own (every row of the compact history) in one query bounded by the
 * events' ids' times (createdAtWhereAll): the read keeps to the partitions the
 * page spans, where Prisma's include would look each id up in every partition.
 * An event id that carries no time (issued before ids did) leaves the read
 * unbounded, as before.
 */
export async function withEventNames<T extends { eventId: string; event: string | null }>(
  db: Pick<Db, 'prisma'>,
  rows: readonly T[],
): Promise<(T & { eventRecord: { event: string } })[]> {
  const ids = [...new Set(rows.filter((row) => row.event === null).map((row) => row.eventId))];
  const names = new Map<string, string>();
  if (ids.length > 0) {
    const events = await db.prisma.event.findMany({ where: { id: { in: ids }, ...createdAtWhereAll(ids) }, select: { id: true, event: true } });
    for (const e of events) names.set(e.id, e.event);
  }
  return rows.map((row) => {
    const event = row.event ?? names.get(row.eventId);
    // The outbox writes an event with its deliveries and retention removes them together: never missing.
    if (event === undefined) throw new Error(`the event ${row.eventId} of a delivery is missing`);
    return { ...row, eventRecord: { event } };
  });
}
