-- Contract step of prisma/migrations/20261208030000_deliveries_event_index: an
-- event's deliveries are read on deliveries_event_id_created_at_idx; the unique
-- key (event_id, webhook_id, created_at), which earlier versions' queries walk,
-- goes. Run by `npm run db:contract` once no process of an earlier version runs.
DROP INDEX "deliveries_event_id_webhook_id_key";
