-- Endpoint isolation: per-webhook in-flight cap, rate limit and circuit breaker.
ALTER TABLE "webhooks" ADD COLUMN "max_in_flight" INTEGER,
ADD COLUMN "rate_limit_per_second" INTEGER,
ADD COLUMN "circuit" TEXT NOT NULL DEFAULT 'closed',
ADD COLUMN "circuit_retry_at" TIMESTAMPTZ(3),
ADD COLUMN "circuit_cooldown_ms" INTEGER;
