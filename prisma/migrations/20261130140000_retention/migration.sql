-- Data retention (apps/worker/src/retention.ts): the sweeper picks old rows by an
-- index range scan and finds an event's deliveries by index, never by a table scan.
-- attempts(delivery_id …) and extraction_documents(extraction_id …) are already
-- the leading columns of existing indexes; idempotency_records(expires_at) exists.

-- CreateIndex
CREATE INDEX "events_created_at_idx" ON "events"("created_at");

-- CreateIndex
CREATE INDEX "deliveries_event_id_idx" ON "deliveries"("event_id");

-- CreateIndex
CREATE INDEX "extractions_created_at_idx" ON "extractions"("created_at");
