-- Hand-written (Prisma's schema cannot express an expression index): an
-- extraction's events by its id, for the rule that its extraction.job_completed
-- reaches a webhook only after every extraction.document_completed delivery of
-- it to that webhook has ended (apps/worker/src/delivery-store.ts: the held job
-- callback looks for waiting document deliveries; a document delivery that ends
-- looks for a held job callback to wake). The extraction id is read from the
-- event's data, where every writer already puts it: no new column, no rewrite
-- of the events table, and only the two extraction events are indexed.
CREATE INDEX "events_extraction_id_event_idx" ON "events" (("data" ->> 'extraction_id'), "event")
  WHERE "event" IN ('extraction.document_completed', 'extraction.job_completed');
