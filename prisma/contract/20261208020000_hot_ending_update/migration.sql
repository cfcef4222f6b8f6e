-- Contract step of the waiting set (issue #25, "Half the bytes"), after
-- prisma/migrations/20261208010000_waiting_set. Run by `npm run db:contract` once
-- no process of an earlier version runs (docs/operations.md, "The waiting set
-- and the contract step"): those versions' queries use what it drops.
--
-- The relay's partial index: the waiting set is read from waiting_deliveries
-- now. With it gone, no index of deliveries covers a column that the update
-- ending a delivery changes (status, attempt_count, next_attempt_at,
-- last_attempt_at, completed_at, updated_at), so that update is HOT: its new
-- version goes on the same page (fillfactor 90 keeps room) and no index gets an
-- entry.
DROP INDEX "deliveries_waiting_next_attempt_at_id_idx";

-- attempts keyed by (delivery_id, attempt_number, created_at) alone: this
-- version looks an attempt up among its delivery's, never by its id (ids are
-- unique by construction, packages/domain/src/ids.ts). The previous versions'
-- check whether an attempt committed looked it up by id.
ALTER TABLE "attempts" DROP CONSTRAINT "attempts_pkey";
