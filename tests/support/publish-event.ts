import { writeEvent, type PrismaClient, type UnkeyedEvent, type WrittenEvent } from '@hookline/db';

// An event and its deliveries written straight into the outbox (no API, no
// queue), for tests that need rows the worker or the relay must find.

/** writeEvent in a transaction of its own. */
export function publishEvent(prisma: PrismaClient, input: UnkeyedEvent): Promise<WrittenEvent> {
  return prisma.$transaction((tx) => writeEvent(tx, input));
}
