-- This database's identity: one row, written here once and never changed. A
-- worker marks its Redis queue prefix with it (<QUEUE_PREFIX>:installation), so
-- a second installation (another database) pointed at the same Redis and
-- QUEUE_PREFIX refuses to start instead of taking this one's jobs.
CREATE TABLE "installation" (
    "id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "installation_pkey" PRIMARY KEY ("id")
);

INSERT INTO "installation" ("id") VALUES ('inst_' || replace(gen_random_uuid()::text, '-', ''));
