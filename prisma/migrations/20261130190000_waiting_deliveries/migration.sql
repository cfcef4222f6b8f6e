-- Hand-written (Prisma's schema cannot express a partial index): the relay's
-- scan (apps/worker/src/delivery-store.ts, DUE_SQL) reads waiting deliveries
-- (pending, pending_retry) in (next_attempt_at, id) order, and nothing else
-- looks deliveries up by status alone. The index holds waiting deliveries only:
-- a delivery that ends (succeeded, failed, cancelled), nearly every row soon
-- after it is written, leaves it, so the update that ends a delivery writes one
-- index entry fewer, and the index stays the size of the backlog, not of the table.
DROP INDEX "deliveries_status_next_attempt_at_idx";
CREATE INDEX "deliveries_waiting_next_attempt_at_id_idx" ON "deliveries" ("next_attempt_at", "id") WHERE "status" IN ('pending', 'pending_retry');
