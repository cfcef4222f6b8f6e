import { writeEvent, type NewEvent, type PrismaClient, type WrittenEvent } from '@hookline/db';

// An event and its deliveries written straight into the outbox (no API, no
// queue), for tests that need rows the worker or the relay must find.

/** writeEvent in a transaction of its own. */
export function publishEvent(prisma: PrismaClient, input: NewEvent): Promise<WrittenEvent> {
  return prisma.$transaction((tx) => writeEvent(tx, input));
}
