import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { PRODUCTION_REQUIRED, apiEnvSchema, parseEnv, standaloneEnvSchema, workerEnvSchema } from '../src/env';

// Environment parsing (docs/configuration.md): defaults as the reference writes
// them, and one line naming the variable when a value is bad.

const KEY = Buffer.alloc(32, 7).toString('base64');

describe('parseEnv(workerEnvSchema)', () => {
  it('fills every default', () => {
    const result = parseEnv(workerEnvSchema, {});
    // toMatchObject: other variables may be added; these defaults are the contract's.
    expect(result).toMatchObject({
      ok: true,
      config: {
        NODE_ENV: 'development',
        LOG_LEVEL: 'info',
        REDIS_URL: 'redis://127.0.0.1:6379',
        QUEUE_PREFIX: 'hookline',
        WEBHOOK_BRAND: 'PerfectParser',
        RETRY_SCHEDULE: [300_000, 600_000, 1_200_000, 2_400_000, 4_800_000],
        DELIVERY_TIMEOUT: 10_000,
        ALLOW_PRIVATE_TARGETS: false,
        AUTO_DISABLE_AFTER: 3 * 86_400_000,
        WORKER_CONCURRENCY: 200,
        RELAY_GRACE: 30_000,
        ENDPOINT_CONCURRENCY: 10,
        CIRCUIT_BREAKER_THRESHOLD: 5,
        CIRCUIT_BREAKER_COOLDOWN: 30_000,
        RETRY_JITTER: 0.1,
        // A dead worker's jobs run again within these two (docs/reliability.md).
        WORKER_LOCK_DURATION: 5_000,
        WORKER_STALLED_INTERVAL: 1_000,
      },
    });
  });

  it('parses the endpoint isolation settings and names a bad one', () => {
    const result = parseEnv(workerEnvSchema, { ENDPOINT_CONCURRENCY: '3', CIRCUIT_BREAKER_THRESHOLD: '2', CIRCUIT_BREAKER_COOLDOWN: '2s', RETRY_JITTER: '0%' });
    if (!result.ok) throw new Error(result.message);
    expect(result.config).toMatchObject({ ENDPOINT_CONCURRENCY: 3, CIRCUIT_BREAKER_THRESHOLD: 2, CIRCUIT_BREAKER_COOLDOWN: 2_000, RETRY_JITTER: 0 });
    expect(parseEnv(workerEnvSchema, { RETRY_JITTER: '25.5%' })).toMatchObject({ ok: true, config: { RETRY_JITTER: 0.255 } });
    expect(parseEnv(workerEnvSchema, { RETRY_JITTER: '60%' })).toEqual({ ok: false, message: expect.stringMatching(/^RETRY_JITTER: must be a percentage from 0% to 50%/) });
    expect(parseEnv(workerEnvSchema, { RETRY_JITTER: '0.1' })).toEqual({ ok: false, message: expect.stringMatching(/^RETRY_JITTER: /) });
    expect(parseEnv(workerEnvSchema, { ENDPOINT_CONCURRENCY: '0' })).toEqual({ ok: false, message: 'ENDPOINT_CONCURRENCY: must be an integer from 1 to 1000' });
    expect(parseEnv(workerEnvSchema, { CIRCUIT_BREAKER_THRESHOLD: 'many' })).toEqual({ ok: false, message: 'CIRCUIT_BREAKER_THRESHOLD: must be an integer from 1 to 1000' });
    expect(parseEnv(workerEnvSchema, { CIRCUIT_BREAKER_COOLDOWN: 'soon' })).toEqual({ ok: false, message: expect.stringMatching(/^CIRCUIT_BREAKER_COOLDOWN: must be a duration/) });
  });

  it('parses durations, schedules and flags', () => {
    const result = parseEnv(workerEnvSchema, {
      RETRY_SCHEDULE: '500ms,2s,1m', DELIVERY_TIMEOUT: '1.5s', AUTO_DISABLE_AFTER: '2h', ALLOW_PRIVATE_TARGETS: 'true', WORKER_CONCURRENCY: '50',
      WEBHOOK_BRAND: 'Acme-Docs', DATABASE_URL: 'postgresql://u@db:5432/h', REDIS_URL: 'rediss://cache:6380', ENCRYPTION_KEY: KEY,
    });
    if (!result.ok) throw new Error(result.message);
    expect(result.config).toMatchObject({
      RETRY_SCHEDULE: [500, 2_000, 60_000], DELIVERY_TIMEOUT: 1_500, AUTO_DISABLE_AFTER: 7_200_000, ALLOW_PRIVATE_TARGETS: true, WORKER_CONCURRENCY: 50,
      WEBHOOK_BRAND: 'Acme-Docs', DATABASE_URL: 'postgresql://u@db:5432/h', REDIS_URL: 'rediss://cache:6380', ENCRYPTION_KEY: KEY,
    });
    for (const [text, value] of [['1', true], ['yes', true], ['false', false], ['0', false], ['no', false]] as const) {
      const flag = parseEnv(workerEnvSchema, { ALLOW_PRIVATE_TARGETS: text });
      expect(flag.ok && flag.config.ALLOW_PRIVATE_TARGETS).toBe(value);
    }
  });

  it('treats an empty variable as unset', () => {
    const result = parseEnv(workerEnvSchema, { DELIVERY_TIMEOUT: '', RETRY_SCHEDULE: undefined });
    expect(result.ok && result.config.DELIVERY_TIMEOUT).toBe(10_000);
  });

  it.each([
    ['RETRY_SCHEDULE', '5m,,10m'],
    ['RETRY_SCHEDULE', '5 minutes'],
    ['DELIVERY_TIMEOUT', '10'],
    ['DELIVERY_TIMEOUT', '0s'],
    ['AUTO_DISABLE_AFTER', 'soon'],
    ['ALLOW_PRIVATE_TARGETS', 'maybe'],
    ['WORKER_CONCURRENCY', '0'],
    ['WORKER_CONCURRENCY', '5001'],
    ['WORKER_CONCURRENCY', 'many'],
    ['WEBHOOK_BRAND', 'Perfect Parser'],
    ['DATABASE_URL', 'mysql://db/x'],
    ['REDIS_URL', 'http://cache'],
    ['ENCRYPTION_KEY', 'c2hvcnQ='],
    ['LOG_LEVEL', 'loud'],
    ['NODE_ENV', 'staging'],
    ['QUEUE_PREFIX', 'has space'],
  ])('%s=%s fails with one line naming the variable', (name, value) => {
    const result = parseEnv(workerEnvSchema, { [name]: value });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.message.startsWith(`${name}: `)).toBe(true);
    expect(result.message).not.toContain('\n');
    expect(result.message.length).toBeGreaterThan(name.length + 5);
  });

  it('the message says what a good value looks like', () => {
    const result = parseEnv(workerEnvSchema, { RETRY_SCHEDULE: 'often' });
    expect(result).toEqual({ ok: false, message: 'RETRY_SCHEDULE: must be comma-separated durations like 5m,10m,20m (got "often")' });
  });
});

describe('parseEnv(apiEnvSchema)', () => {
  it('fills the API defaults', () => {
    const result = parseEnv(apiEnvSchema, {});
    expect(result.ok && result.config).toMatchObject({ PORT: 3000, RATE_LIMIT_PER_MINUTE: 600, REDIS_URL: 'redis://127.0.0.1:6379', NODE_ENV: 'development' });
  });

  it.each([
    ['PORT', '70000'],
    ['PORT', 'http'],
    ['PLATFORM_TOKEN', 'short'],
    ['ADMIN_PASSWORD', 'abc'],
    ['RATE_LIMIT_PER_MINUTE', '0'],
  ])('%s=%s fails naming the variable', (name, value) => {
    const result = parseEnv(apiEnvSchema, { [name]: value });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(new RegExp(`^${name}: [^\\n]+$`));
  });

  it('NODE_ENV=production without the required variables fails with the list', () => {
    const result = parseEnv(apiEnvSchema, { NODE_ENV: 'production' }, PRODUCTION_REQUIRED.api);
    expect(result).toEqual({ ok: false, message: 'DATABASE_URL, REDIS_URL (or REDIS_CLUSTER_NODES, or REDIS_SENTINELS), PLATFORM_TOKEN, ENCRYPTION_KEY must be set when NODE_ENV=production' });
    const partial = parseEnv(apiEnvSchema, { NODE_ENV: 'production', DATABASE_URL: 'postgresql://db/h', REDIS_URL: 'redis://r:6379' }, PRODUCTION_REQUIRED.api);
    expect(partial).toEqual({ ok: false, message: 'PLATFORM_TOKEN, ENCRYPTION_KEY must be set when NODE_ENV=production' });
    const worker = parseEnv(workerEnvSchema, { NODE_ENV: 'production', ENCRYPTION_KEY: '' }, PRODUCTION_REQUIRED.worker);
    expect(worker.ok).toBe(false);
    if (!worker.ok) expect(worker.message).toBe('DATABASE_URL, REDIS_URL (or REDIS_CLUSTER_NODES, or REDIS_SENTINELS), ENCRYPTION_KEY must be set when NODE_ENV=production');
  });

  it('NODE_ENV=production with everything set parses', () => {
    const result = parseEnv(
      apiEnvSchema,
      { NODE_ENV: 'production', DATABASE_URL: 'postgres://db/h', REDIS_URL: 'redis://r:6379', PLATFORM_TOKEN: 'p'.repeat(32), ENCRYPTION_KEY: KEY },
      PRODUCTION_REQUIRED.api,
    );
    expect(result.ok).toBe(true);
  });

  it('NODE_ENV=production refuses a short PLATFORM_TOKEN or ADMIN_PASSWORD with one line', () => {
    const base = { NODE_ENV: 'production', DATABASE_URL: 'postgres://db/h', REDIS_URL: 'redis://r:6379', PLATFORM_TOKEN: 'p'.repeat(32), ENCRYPTION_KEY: KEY };
    expect(parseEnv(apiEnvSchema, { ...base, PLATFORM_TOKEN: 'p'.repeat(31) }, PRODUCTION_REQUIRED.api)).toEqual({
      ok: false, message: 'PLATFORM_TOKEN: must be at least 32 characters when NODE_ENV=production',
    });
    expect(parseEnv(apiEnvSchema, { ...base, ADMIN_PASSWORD: 'a'.repeat(11) }, PRODUCTION_REQUIRED.api)).toEqual({
      ok: false, message: 'ADMIN_PASSWORD: must be at least 12 characters when NODE_ENV=production',
    });
    expect(parseEnv(apiEnvSchema, { ...base, ADMIN_PASSWORD: 'a'.repeat(12) }, PRODUCTION_REQUIRED.api).ok).toBe(true);
    // ADMIN_PASSWORD stays optional: unset (or empty) means no admin view.
    expect(parseEnv(apiEnvSchema, { ...base, ADMIN_PASSWORD: '' }, PRODUCTION_REQUIRED.api).ok).toBe(true);
    // The worker has no platform token: a shared environment's short one is not its business.
    expect(parseEnv(workerEnvSchema, { ...base, PLATFORM_TOKEN: 'short-token-16ch' }, PRODUCTION_REQUIRED.worker).ok).toBe(true);
  });

  it('development keeps the shorter minimums', () => {
    const dev = parseEnv(apiEnvSchema, { PLATFORM_TOKEN: 'p'.repeat(16), ADMIN_PASSWORD: 'a'.repeat(8) });
    expect(dev.ok).toBe(true);
    expect(parseEnv(apiEnvSchema, { PLATFORM_TOKEN: 'p'.repeat(15) })).toEqual({ ok: false, message: 'PLATFORM_TOKEN: must be at least 16 characters' });
  });

  it('the API process refuses to start in production with a short token: exit 1, one line, no stack trace', () => {
    const root = resolve(__dirname, '../../..');
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'apps/api/src/main.ts'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production',
        DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/unused', REDIS_URL: 'redis://127.0.0.1:6379', ENCRYPTION_KEY: KEY,
        PLATFORM_TOKEN: 'only-twenty-chars-xx',
      },
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('hookline: invalid configuration: PLATFORM_TOKEN: must be at least 32 characters when NODE_ENV=production\n');
    expect(run.stdout).toBe('');
  });

  it('outside production the required list is not enforced', () => {
    expect(parseEnv(apiEnvSchema, { NODE_ENV: 'test' }, PRODUCTION_REQUIRED.api).ok).toBe(true);
  });
});

describe('parseEnv(standaloneEnvSchema)', () => {
  it('has both apps\' variables', () => {
    const result = parseEnv(standaloneEnvSchema, {});
    expect(result.ok && result.config).toMatchObject({ PORT: 3000, RETRY_SCHEDULE: [300_000, 600_000, 1_200_000, 2_400_000, 4_800_000], DELIVERY_TIMEOUT: 10_000 });
  });
});

describe('WORKER_HEALTH_HOST', () => {
  it('defaults to loopback, takes any IP address to listen on, and refuses a name', () => {
    expect(parseEnv(workerEnvSchema, {})).toMatchObject({ ok: true, config: { WORKER_HEALTH_HOST: '127.0.0.1' } });
    for (const host of ['0.0.0.0', '::', '10.1.2.3']) expect(parseEnv(workerEnvSchema, { WORKER_HEALTH_HOST: host })).toMatchObject({ ok: true, config: { WORKER_HEALTH_HOST: host } });
    expect(parseEnv(workerEnvSchema, { WORKER_HEALTH_HOST: 'everywhere' })).toEqual({ ok: false, message: 'WORKER_HEALTH_HOST: must be an IP address to listen on, e.g. 127.0.0.1, 0.0.0.0 or ::' });
  });
});

describe('TRUST_PROXY', () => {
  it.each([
    [undefined, false],
    ['true', true],
    ['false', false],
    ['2', 2],
    ['10.0.0.0/8, 127.0.0.1', '10.0.0.0/8, 127.0.0.1'],
    ['loopback, fd00::/8, 10.0.0.0/255.0.0.0', 'loopback, fd00::/8, 10.0.0.0/255.0.0.0'],
  ])('%s → %p', (value, expected) => {
    const result = parseEnv(apiEnvSchema, value === undefined ? {} : { TRUST_PROXY: value });
    expect(result).toMatchObject({ ok: true, config: { TRUST_PROXY: expected } });
  });

  // What Express would refuse at start-up with a bare "invalid IP address" is refused here, naming the variable.
  it.each(['nonsense', '10.0.0.0/33', '10.0.0.0/255.0.255.0', '10.0.0.1, ingress', 'fd00::/129'])('refuses %p', (value) => {
    expect(parseEnv(apiEnvSchema, { TRUST_PROXY: value })).toEqual({
      ok: false,
      message: 'TRUST_PROXY: must be false, true, a hop count, or comma-separated proxy addresses and subnets (10.0.0.0/8), or loopback, linklocal, uniquelocal',
    });
  });
});

describe('Redis topology variables', () => {
  const prod = { NODE_ENV: 'production', DATABASE_URL: 'postgresql://db/h', ENCRYPTION_KEY: KEY };

  it('takes a cluster, or Sentinel, instead of REDIS_URL (production too), and a shard count', () => {
    const cluster = parseEnv(workerEnvSchema, { ...prod, REDIS_CLUSTER_NODES: 'r1:6379, r2:6379,10.0.0.3:7000,[::1]:7001', DELIVERY_QUEUE_SHARDS: '32' }, PRODUCTION_REQUIRED.worker);
    expect(cluster.ok && cluster.config).toMatchObject({ REDIS_CLUSTER_NODES: 'r1:6379, r2:6379,10.0.0.3:7000,[::1]:7001', DELIVERY_QUEUE_SHARDS: 32 });
    const tls = parseEnv(workerEnvSchema, { REDIS_CLUSTER_NODES: 'rediss://default:s3cret@cache.example.com:6380,cache-2.example.com:6380' });
    expect(tls.ok).toBe(true);
    const sentinel = parseEnv(workerEnvSchema, { ...prod, REDIS_SENTINELS: 's1:26379,s2:26379,s3:26379', REDIS_SENTINEL_MASTER: 'mymaster' }, PRODUCTION_REQUIRED.worker);
    expect(sentinel.ok && sentinel.config).toMatchObject({ REDIS_SENTINEL_MASTER: 'mymaster' });
    const none = parseEnv(workerEnvSchema, {});
    expect(none.ok && none.config.DELIVERY_QUEUE_SHARDS).toBeUndefined();
  });

  it.each([
    [{ REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'r1:6379' }, 'REDIS_CLUSTER_NODES: set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS (got REDIS_URL and REDIS_CLUSTER_NODES)'],
    [{ REDIS_URL: 'redis://r:6379', REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS: set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS (got REDIS_URL and REDIS_SENTINELS)'],
    [{ REDIS_CLUSTER_NODES: 'r1:6379', REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS: set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS (got REDIS_CLUSTER_NODES and REDIS_SENTINELS)'],
    [{ REDIS_SENTINELS: 's:26379' }, 'REDIS_SENTINEL_MASTER: must be set with REDIS_SENTINELS (the name of the master the sentinels watch)'],
    [{ REDIS_SENTINEL_MASTER: 'mymaster' }, 'REDIS_SENTINELS: must be set with REDIS_SENTINEL_MASTER (host:port,… of the sentinels)'],
    [{ REDIS_CLUSTER_NODES: 'r1' }, 'REDIS_CLUSTER_NODES: must be host:port,host:port,… (each entry host:port, or a redis:// or rediss:// URL)'],
    [{ REDIS_CLUSTER_NODES: 'r1:6379,,r2:6379' }, 'REDIS_CLUSTER_NODES: must be host:port,host:port,… (each entry host:port, or a redis:// or rediss:// URL)'],
    [{ REDIS_SENTINELS: 'http://s:26379', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS: must be host:port,host:port,… (each entry host:port, or a redis:// or rediss:// URL)'],
    [{ DELIVERY_QUEUE_SHARDS: '0' }, 'DELIVERY_QUEUE_SHARDS: must be an integer from 1 to 256'],
    [{ DELIVERY_QUEUE_SHARDS: '257' }, 'DELIVERY_QUEUE_SHARDS: must be an integer from 1 to 256'],
  ])('a bad combination or value is one line: %o', (env, message) => {
    for (const schema of [workerEnvSchema, apiEnvSchema]) expect(parseEnv(schema, env)).toEqual({ ok: false, message });
  });

  it('never echoes a node entry (it may hold a password)', () => {
    const result = parseEnv(workerEnvSchema, { REDIS_CLUSTER_NODES: 'rediss://u:hunter2@host:6380/0/extra' });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).not.toContain('hunter2');
  });
});
