import type { ApiEnv } from '@hookline/config';
import type { Logger } from '@hookline/config';
import type { Db } from '@hookline/db';
import type { SecretBox } from '@hookline/domain';
import type { Metrics } from '@hookline/metrics';
import type { DeliveryQueues, RedisClient } from '@hookline/queue';

/** Everything the API needs, built by a composition root (main.ts, standalone, or a test). */
export type ApiDeps = {
  db: Db;
  /** Producer connection: fails fast while Redis is down. */
  redis: RedisClient;
  /** The delivery queue shards (DELIVERY_QUEUE_SHARDS); a delivery goes to its webhook's. */
  queue: DeliveryQueues;
  logger: Logger;
  metrics: Metrics;
  secretBox: SecretBox;
  config: Pick<ApiEnv, 'PLATFORM_TOKEN' | 'ADMIN_PASSWORD' | 'RATE_LIMIT_PER_MINUTE' | 'QUEUE_PREFIX' | 'NODE_ENV' | 'SESSION_SECRET'> & {
    PLATFORM_TOKEN: string;
    /** Express 'trust proxy'; default false (no proxy trusted). */
    TRUST_PROXY?: ApiEnv['TRUST_PROXY'];
    /** Default 100. */
    MAX_WEBHOOKS_PER_ACCOUNT?: number;
    /** Default 2,000: filter values across the account's webhooks (not deleted). */
    MAX_FILTER_VALUES_PER_ACCOUNT?: number;
    /** Default false: webhook URLs on localhost or a non-public IP literal are refused. */
    ALLOW_PRIVATE_TARGETS?: boolean;
    /** Default PerfectParser: custom headers named X-<brand>-* are refused. */
    WEBHOOK_BRAND?: string;
    /** Default false: only test-mode keys may open `hookline listen` sessions. */
    LISTEN_ALLOW_LIVE_KEYS?: boolean;
    /** Default 2 min: how long a listen session outlives its tool's connection. */
    LISTEN_SESSION_GRACE?: number;
    /** Default 60 s: how long a claimed Idempotency-Key waits for its request's answer. */
    IDEMPOTENCY_LEASE?: number;
  };
};
