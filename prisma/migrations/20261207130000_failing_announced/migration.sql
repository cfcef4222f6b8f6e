-- webhook.failing is announced once per failing spell, whichever delivery
-- began it: failing_since says the webhook is failing, failing_announced that
-- its webhook.failing was written. An operational event's delivery may set
-- failing_since (the state still changes) but never announces; the next
-- ordinary failure then does.
ALTER TABLE "webhooks" ADD COLUMN "failing_announced" BOOLEAN NOT NULL DEFAULT false;
-- Spells already under way were announced by the code before this one (or,
-- begun by an operational delivery, never will be): no late announcement.
UPDATE "webhooks" SET "failing_announced" = true WHERE "failing_since" IS NOT NULL;
