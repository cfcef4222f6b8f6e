import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration, parseEncryptionKey, parseSchedule, partitionIntervalProblem } from '@hookline/domain';

// One small schema per app, validated once at start-up. Each app's main.ts passes process.env
// here once; a bad value ends the process with one line naming the variable.

/**
 * One entry of TRUST_PROXY as Express's 'trust proxy' (proxy-addr) takes it: a
 * name, an address, or an address with a prefix length or an IPv4 netmask.
 * Checked here so a typo stops the API with the variable's name, not Express's
 * bare "invalid IP address".
 */
function trustedProxyOk(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address, range, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (range === undefined) return true;
  if (/^\d+$/.test(range)) return Number(range) <= (family === 4 ? 32 : 128);
  if (family !== 4 || isIP(range) !== 4) return false;
  // A netmask's ones come first: its inverse plus one is a power of two.
  const inverse = ~range.split('.').reduce((n, octet) => n * 256 + Number(octet), 0) >>> 0;
  return (inverse & (inverse + 1)) === 0;
}

/** A duration variable with its default written as docs/configuration.md writes it; parsed to milliseconds. */
const duration = (defaultText: string) =>
  z
    .string()
    .default(defaultText)
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === null || ms <= 0) {
        ctx.addIssue({ code: 'custom', message: `must be a duration like 500ms, 30s, 5m, 2h or 3d (got "${text}")` });
        return z.NEVER;
      }
      return ms;
    });

const boolFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number({ error: 'must be a port number' }).int('must be a port number').min(0, 'must be a port number').max(65535, 'must be a port number');

/** An integer variable within [min, max], with one message naming the range. */
const intRange = (min: number, max: number) => {
  const message = `must be an integer from ${min} to ${max}`;
  return z.coerce.number({ error: message }).int(message).min(min, message).max(max, message);
};

const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL');

const redisUrl = z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL');

// `host:port` (IPv6 in brackets), or a redis:// / rediss:// URL with credentials; never echoed (it may hold a password).
const NODE_ENTRY = /^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$|^rediss?:\/\/(?:[^@/\s]*@)?(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?\/?$/;
const nodeList = z.string().refine(
  (text) => text.split(',').every((entry) => NODE_ENTRY.test(entry.trim())),
  'must be host:port,host:port,… (each entry host:port, or a redis:// or rediss:// URL)',
);

const encryptionKey = z.string().refine((v) => parseEncryptionKey(v) !== null, 'must be 32 bytes, base64-encoded (generate one with: openssl rand -base64 32)');

const common = {
  NODE_ENV: z.enum(['development', 'production', 'test'], { error: 'must be development, production or test' }).default('development'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'], { error: 'must be a winston level: error, warn, info, http, verbose, debug or silly' }).default('info'),
  DATABASE_URL: postgresUrl.optional(),
  // One Redis topology: REDIS_URL, a cluster, or Sentinel (redisTopologyProblem); the default applies when none is named.
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: nodeList.optional(),
  REDIS_SENTINELS: nodeList.optional(),
  REDIS_SENTINEL_MASTER: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be the master\'s name as the sentinels know it (letters, digits, . _ -)').optional(),
  // Delivery queues, each webhook's deliveries in one of them; default 1 on one server, 16 on a cluster.
  DELIVERY_QUEUE_SHARDS: intRange(1, 256).optional(),
  ENCRYPTION_KEY: encryptionKey.optional(),
  // Names the callback headers X-<brand>-*; the API refuses custom headers of that name, so both apps read it.
  WEBHOOK_BRAND: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,39}$/, 'must be letters, digits and dashes (it becomes part of header names)').default('PerfectParser'),
  // Prefix of every BullMQ key; tests give each file its own.
  QUEUE_PREFIX: z.string().min(1).max(64).regex(/^[A-Za-z0-9_:-]+$/, 'may contain only letters, digits, _ : -').default('hookline'),
  // The compact history (docs/operations.md, "Rolling upgrades and the compact history"): on only once every
  // API and worker process runs a version that reads it; the versions before it cannot.
  COMPACT_HISTORY: boolFlag.default(false),
  // The range of one partition of events, deliveries and attempts (packages/db/src/partitions.ts); the API makes
  // partitions at start and on a missing one, the workers ahead of time, so both read it.
  PARTITION_INTERVAL: duration('1d').superRefine((ms, ctx) => {
    const problem = partitionIntervalProblem(ms);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  // Development only: the folder for generated secrets, the embedded database and a local redis-server's data.
  HOOKLINE_DATA_DIR: z.string().min(1).default('.data'),
  // OpenTelemetry traces (packages/telemetry), by the standard OTEL_* names; off unless an endpoint is set.
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ error: 'must be an http(s) URL' }).optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ error: 'must be an http(s) URL' }).optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/protobuf', 'http/json'], { error: 'must be http/protobuf or http/json (grpc is not supported)' }).optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.enum(['http/protobuf', 'http/json'], { error: 'must be http/protobuf or http/json (grpc is not supported)' }).optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'], {
      error: 'must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio',
    })
    .optional(),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number({ error: 'must be a ratio between 0 and 1' }).min(0, 'must be a ratio between 0 and 1').max(1, 'must be a ratio between 0 and 1').optional(),
};

const apiOnly = {
  PORT: port.default(3000),
  PLATFORM_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  ADMIN_PASSWORD: z.string().min(8, 'must be at least 8 characters').optional(),
  RATE_LIMIT_PER_MINUTE: z.coerce.number({ error: 'must be a positive integer' }).int().min(1, 'must be a positive integer').default(600),
  // Webhooks (not deleted) one account may have.
  MAX_WEBHOOKS_PER_ACCOUNT: intRange(1, 100000).default(100),
  // Filter values (a scalar entry is one) across one account's webhooks: bounds what one publish costs to match.
  MAX_FILTER_VALUES_PER_ACCOUNT: intRange(0, 1_000_000).default(2000),
  // HTTP connections the API holds open at once; more are closed as they arrive.
  MAX_CONNECTIONS: intRange(1, 1_000_000).default(10000),
  // The API refuses webhook URLs whose host is a non-public IP literal or localhost unless this is true (as the worker's own guard).
  ALLOW_PRIVATE_TARGETS: boolFlag.default(false),
  // How long an Idempotency-Key stays claimed by a request that never answered (its process died) before a retry may take it over.
  IDEMPOTENCY_LEASE: duration('60s'),
  SESSION_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  // `hookline listen` (docs/listen.md): whether live-mode keys may open sessions (test keys always may),
  // and how long a session outlives its tool's connection before it is removed.
  LISTEN_ALLOW_LIVE_KEYS: boolFlag.default(false),
  LISTEN_SESSION_GRACE: duration('2m'),
  // Which proxies' X-Forwarded-* headers to believe (client address for the failed-credential
  // limits, https): Express's 'trust proxy' — true, a hop count, or addresses/subnets. Default:
  // none, since a trusted proxy that passes a client's own X-Forwarded-For lets it pick its address.
  TRUST_PROXY: z
    .string()
    .default('false')
    .refine((v) => v === 'true' || v === 'false' || /^\d+$/.test(v) || v.split(',').every((entry) => trustedProxyOk(entry.trim())),
      'must be false, true, a hop count, or comma-separated proxy addresses and subnets (10.0.0.0/8), or loopback, linklocal, uniquelocal')
    .transform((v): boolean | number | string => (v === 'true' ? true : v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v)),
};

const workerOnly = {
  RETRY_SCHEDULE: z
    .string()
    .default('5m,10m,20m,40m,80m')
    .transform((text, ctx) => {
      const schedule = parseSchedule(text);
      if (!schedule) {
        ctx.addIssue({ code: 'custom', message: `must be comma-separated durations like 5m,10m,20m (got "${text}")` });
        return z.NEVER;
      }
      return schedule;
    }),
  DELIVERY_TIMEOUT: duration('10s'),
  ALLOW_PRIVATE_TARGETS: boolFlag.default(false),
  AUTO_DISABLE_AFTER: duration('3d'),
  WORKER_CONCURRENCY: intRange(1, 5000).default(200),
  WORKER_HEALTH_PORT: port.optional(),
  // The address the health port listens on. Default loopback: a worker on a host
  // serves its unauthenticated /metrics to the machine only. The image sets
  // 0.0.0.0, since in a container the kubelet's probes and Prometheus come over
  // the pod's own IP.
  WORKER_HEALTH_HOST: z
    .string()
    .refine((v) => isIP(v) !== 0, 'must be an IP address to listen on, e.g. 127.0.0.1, 0.0.0.0 or ::')
    .default('127.0.0.1'),
  // How long a due delivery may sit unqueued (Redis was down, or lost its data) before the relay re-enqueues it.
  RELAY_GRACE: duration('30s'),
  // Endpoint isolation: each webhook's share of the workers, and when to stop trying it for a while.
  ENDPOINT_CONCURRENCY: intRange(1, 1000).default(10),
  CIRCUIT_BREAKER_THRESHOLD: intRange(1, 1000).default(5),
  CIRCUIT_BREAKER_COOLDOWN: duration('30s'),
  // Each scheduled retry moves by a random amount within ± this share of its delay.
  RETRY_JITTER: z
    .string()
    .default('10%')
    .transform((text, ctx) => {
      const match = /^(\d{1,2}(?:\.\d+)?)%$/.exec(text.trim());
      const share = match ? Number(match[1]) / 100 : NaN;
      if (!(share >= 0 && share <= 0.5)) {
        ctx.addIssue({ code: 'custom', message: `must be a percentage from 0% to 50%, like 10% (got "${text}")` });
        return z.NEVER;
      }
      return share;
    }),
  // Egress proxy (docs/operations.md, "Egress proxy"): every callback goes through this http(s) proxy by CONNECT, but to the hosts of DELIVERY_NO_PROXY.
  DELIVERY_PROXY_URL: z
    .string()
    .optional()
    .refine((text) => {
      if (text === undefined) return true;
      try {
        const url = new URL(text);
        return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && (url.pathname === '/' || url.pathname === '');
      } catch {
        return false;
      }
    }, 'must be an http:// or https:// proxy URL, e.g. http://proxy.internal:3128 (credentials as http://user:password@host:port)'),
  // Hosts reached directly, not through the proxy: comma-separated names (each also covers its subdomains), .suffixes, IP addresses, or * for all.
  DELIVERY_NO_PROXY: z
    .string()
    .default('')
    .transform((text) => text.split(',').map((entry) => entry.trim().toLowerCase()).filter((entry) => entry !== '')),
  // A delivery whose attempt failed at the proxy (not at the endpoint) comes back after this long, without using up a retry.
  DELIVERY_PROXY_RETRY: duration('30s'),
  // Events, deliveries, attempts, document results and expired idempotency records older than this are deleted by the worker.
  RETENTION: duration('30d'),
  // BullMQ lock of a running job, renewed five times per duration: a worker that dies mid-delivery leaves
  // its jobs to others after this long; a live worker stalled for up to four fifths of it keeps them
  // (the trade-off, measured: docs/reliability.md).
  WORKER_LOCK_DURATION: duration('5s'),
  // How often a worker looks for jobs whose worker died (BullMQ's stalled check).
  WORKER_STALLED_INTERVAL: duration('1s'),
  // Endpoint slots owned by a live worker (liveness.ts): off by default, see docs/reliability.md.
  WORKER_SLOT_LIVENESS: boolFlag.default(true),
  // While PostgreSQL or Redis is unreachable the worker takes no jobs; this is how often it probes them to resume.
  OUTAGE_PROBE_INTERVAL: duration('1s'),
};

export const apiEnvSchema = z.object({ ...common, ...apiOnly });
export const workerEnvSchema = z.object({ ...common, ...workerOnly });
/** `npm start` runs both apps in one process. */
export const standaloneEnvSchema = z.object({
  ...common,
  ...apiOnly,
  ...workerOnly,
  // The address `npm start` listens on: loopback only in development (it prints its secrets), every interface in production.
  HOST: z.string().min(1).optional(),
});
/** `npm run db:migrate`: only where the database is. */
export const migrateEnvSchema = z.object({ NODE_ENV: common.NODE_ENV, DATABASE_URL: common.DATABASE_URL, HOOKLINE_DATA_DIR: common.HOOKLINE_DATA_DIR });

/**
 * One Redis topology, named completely, as the operator set it (REDIS_URL's
 * default must not count as set): a bad combination is one line naming the
 * variable to fix, or null.
 */
function redisTopologyProblem(env: Record<string, string | undefined>): string | null {
  const named = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'].filter((name) => env[name] !== undefined);
  if (named.length > 1) return `${named[1]}: set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS (got ${named.join(' and ')})`;
  if (env.REDIS_SENTINELS && !env.REDIS_SENTINEL_MASTER) return 'REDIS_SENTINEL_MASTER: must be set with REDIS_SENTINELS (the name of the master the sentinels watch)';
  if (env.REDIS_SENTINEL_MASTER && !env.REDIS_SENTINELS) return 'REDIS_SENTINELS: must be set with REDIS_SENTINEL_MASTER (host:port,… of the sentinels)';
  return null;
}

export type ApiEnv = z.infer<typeof apiEnvSchema>;
export type WorkerEnv = z.infer<typeof workerEnvSchema>;
export type StandaloneEnv = z.infer<typeof standaloneEnvSchema>;

/** Where Redis is: any one of these names it (`a|b|c`: one of them must be set). */
const REDIS_REQUIRED = 'REDIS_URL|REDIS_CLUSTER_NODES|REDIS_SENTINELS';

/** Variables production refuses to run without (dev generates them into ./.data). */
export const PRODUCTION_REQUIRED = {
  api: ['DATABASE_URL', REDIS_REQUIRED, 'PLATFORM_TOKEN', 'ENCRYPTION_KEY'],
  worker: ['DATABASE_URL', REDIS_REQUIRED, 'ENCRYPTION_KEY'],
  migrate: ['DATABASE_URL'],
  // `npm start` in production starts no database and no Redis of its own: it uses only what it is given.
  standalone: ['DATABASE_URL', REDIS_REQUIRED, 'PLATFORM_TOKEN', 'ENCRYPTION_KEY'],
} as const;

/**
 * Guessable secrets need more length in production (development keeps the
 * schema's minimums); checked only for variables the app's schema has.
 */
export const PRODUCTION_MIN_LENGTH = { PLATFORM_TOKEN: 32, ADMIN_PASSWORD: 12 } as const;

export type ParseResult<T> = { ok: true; config: T } | { ok: false; message: string };

export function parseEnv<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>, required: readonly string[] = []): ParseResult<z.infer<S>> {
  // An empty variable means "unset", as in most shells' `FOO= cmd`.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  if (cleaned.NODE_ENV === 'production') {
    const missing = required.filter((names) => !names.split('|').some((name) => cleaned[name]));
    if (missing.length) {
      const list = missing.map((names) => names.split('|').map((name, i) => (i === 0 ? name : i === 1 ? ` (or ${name}` : `, or ${name}`)).join('') + (names.includes('|') ? ')' : ''));
      return { ok: false, message: `${list.join(', ')} must be set when NODE_ENV=production` };
    }
    const known = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
    for (const [name, min] of Object.entries(PRODUCTION_MIN_LENGTH)) {
      const value = cleaned[name];
      if (known.includes(name) && value !== undefined && value.length < min) {
        return { ok: false, message: `${name}: must be at least ${min} characters when NODE_ENV=production` };
      }
    }
  }
  const result = schema.safeParse(cleaned);
  const topology = result.success ? redisTopologyProblem(cleaned) : null;
  if (topology) return { ok: false, message: topology };
  if (result.success) return { ok: true, config: result.data };
  const issue = result.error.issues[0];
  return { ok: false, message: `${String(issue.path[0] ?? 'environment')}: ${issue.message}` };
}

/** For main.ts only: parse or print one line and exit. */
export function loadEnvOrExit<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>, required: readonly string[] = []): z.infer<S> {
  const result = parseEnv(schema, env, required);
  if (result.ok) return result.config;
  process.stderr.write(`hookline: invalid configuration: ${result.message}\n`);
  process.exit(1);
}
