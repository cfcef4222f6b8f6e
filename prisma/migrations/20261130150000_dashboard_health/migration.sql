-- Hand-written (Prisma's schema cannot express a partial index): each webhook's
-- latest failed attempt, for the dashboard's "Last error". Without it the lookup
-- walks attempts_webhook_id_created_at_idx backwards through every succeeded
-- attempt of a healthy webhook. Failed attempts only, so it stays small.
CREATE INDEX "attempts_webhook_id_failed_created_at_idx" ON "attempts" ("webhook_id", "created_at" DESC) WHERE "status" = 'failed';
