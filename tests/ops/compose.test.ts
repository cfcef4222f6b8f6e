import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { apiEnvSchema, migrateEnvSchema, parseEnv, PRODUCTION_REQUIRED, workerEnvSchema } from '@hookline/config';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { cleanPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/api-harness';
import { createRedis, DEFAULT_SHARDS } from '@hookline/queue';
import { ensureBuilt, killChildren } from '../support/build';

// No Docker engine runs here, so the container files are checked for what can
// be checked: the compose file against the apps' env schemas, the Dockerfile's
// shape, and the image's entrypoint and healthcheck run for real as processes.

const ROOT = resolve(__dirname, '../..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

type Service = {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  deploy?: { replicas?: number };
  restart?: string;
};

const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const { services } = compose;

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}; an unset required variable fails like `docker compose up` does. */
function interpolate(value: string, shell: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}/g, (_m, name: string, op: string | undefined, arg: string | undefined) => {
    const set = shell[name];
    if (set) return set;
    if (op === ':?') throw new Error(`required variable ${name} is missing a value: ${arg}`);
    return op === ':-' ? (arg ?? '') : '';
  });
}

const operatorShell = {
  PLATFORM_TOKEN: randomBytes(24).toString('hex'),
  ENCRYPTION_KEY: randomBytes(32).toString('base64'),
};
const envOf = (service: string, shell: Record<string, string> = operatorShell) =>
  Object.fromEntries(Object.entries(services[service].environment ?? {}).map(([k, v]) => [k, interpolate(String(v), shell)]));

describe('docker-compose.yml', () => {
  it('runs postgres, redis, one-shot secrets and migrate, the API and the workers', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis', 'secrets', 'worker']);
    for (const name of ['secrets', 'migrate', 'api', 'worker']) {
      expect(services[name].build).toBe('.');
      expect(services[name].image).toBe(services.api.image);
    }
  });

  it('postgres 16 with a volume and a pg_isready healthcheck', () => {
    const pg = services.postgres;
    expect(pg.image).toMatch(/^postgres:16/);
    expect(pg.volumes).toEqual(expect.arrayContaining([expect.stringMatching(/^pgdata:\/var\/lib\/postgresql\/data$/)]));
    expect(pg.healthcheck!.test.join(' ')).toMatch(/pg_isready/);
    expect(compose.volumes).toHaveProperty('pgdata');
  });

  it('redis 7 with append-only persistence, noeviction, a volume and a ping healthcheck', () => {
    const redis = services.redis;
    expect(redis.image).toMatch(/^redis:7/);
    expect(redis.command!.join(' ')).toMatch(/--appendonly yes/);
    expect(redis.command!.join(' ')).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.volumes).toEqual(['redisdata:/data']);
    expect(redis.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(compose.volumes).toHaveProperty('redisdata');
  });

  it('migrate runs once, after postgres is healthy', () => {
    expect(services.migrate.command).toEqual(['migrate']);
    expect(services.migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(services.migrate.restart).toBe('no');
    expect(envOf('migrate').DATABASE_URL).toMatch(/^postgresql:\/\/hookline:[^@]+@postgres:5432\/hookline$/);
  });

  it.each(['api', 'worker'])('%s waits for healthy postgres and redis and completed migrate and secrets, and is health-checked on /readyz', (name) => {
    const service = services[name];
    expect(service.command).toEqual([name]);
    expect(service.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
      secrets: { condition: 'service_completed_successfully' },
    });
    expect(service.healthcheck!.test).toEqual(['CMD', 'node', 'docker/healthcheck.mjs', '/readyz']);
  });

  it('the API publishes its PORT', () => {
    const env = envOf('api');
    expect(services.api.ports).toHaveLength(1);
    const [host, container] = interpolate(services.api.ports![0], {}).split(':');
    expect(container).toBe(env.PORT);
    expect(host).toBe('3000');
  });

  it('the worker runs two replicas with a health port and publishes no host port (so it scales)', () => {
    expect(services.worker.deploy!.replicas).toBeGreaterThanOrEqual(2);
    expect(services.worker.ports).toBeUndefined();
    expect(envOf('worker').WORKER_HEALTH_PORT).toMatch(/^\d+$/);
    expect(envOf('worker').ALLOW_PRIVATE_TARGETS).toBe('false');
  });

  it.each([
    ['api', apiEnvSchema, PRODUCTION_REQUIRED.api],
    ['worker', workerEnvSchema, PRODUCTION_REQUIRED.worker],
  ] as const)('%s: every variable is one its env schema knows, production requirements are met, and it parses', (name, schema, required) => {
    const env = envOf(name);
    const known = Object.keys(schema.shape);
    expect(Object.keys(env).filter((key) => !known.includes(key))).toEqual([]);
    expect(env.NODE_ENV).toBe('production');
    // `A|B|C`: one of them names where Redis is.
    for (const key of required) expect({ key, set: key.split('|').some((name) => Boolean(env[name])) }).toEqual({ key, set: true });
    const parsed = parseEnv(schema, env, required);
    expect(parsed).toEqual({ ok: true, config: expect.any(Object) });
  });

  it('API and workers share the database, Redis, queue prefix and encryption key', () => {
    const api = envOf('api');
    const worker = envOf('worker');
    for (const key of ['DATABASE_URL', 'REDIS_URL', 'QUEUE_PREFIX', 'ENCRYPTION_KEY']) expect(worker[key]).toBe(api[key]);
    expect(envOf('migrate').DATABASE_URL).toBe(api.DATABASE_URL);
  });

  it('writes no secret into the file: unset ones come from the one-shot secrets service, through a volume', () => {
    const text = read('docker-compose.yml');
    expect(text).toMatch(/PLATFORM_TOKEN: \$\{PLATFORM_TOKEN:-\}/);
    expect(text).toMatch(/ENCRYPTION_KEY: \$\{ENCRYPTION_KEY:-\}/);
    expect(envOf('api', {}).PLATFORM_TOKEN).toBe('');
    expect(envOf('worker', {}).ENCRYPTION_KEY).toBe('');
    expect(services.secrets.command).toEqual(['init-secrets']);
    expect(services.secrets.volumes).toEqual(['secrets:/secrets']);
    for (const name of ['api', 'worker']) {
      expect(services[name].volumes).toEqual(['secrets:/secrets:ro']);
      expect(services[name].depends_on!.secrets).toEqual({ condition: 'service_completed_successfully' });
    }
    expect(Object.keys(compose.volumes)).toContain('secrets');
  });

  it('leaves the admin view off unless ADMIN_PASSWORD is given', () => {
    const off = parseEnv(apiEnvSchema, envOf('api'), PRODUCTION_REQUIRED.api);
    expect(off.ok && off.config.ADMIN_PASSWORD).toBeUndefined();
    const on = parseEnv(apiEnvSchema, envOf('api', { ...operatorShell, ADMIN_PASSWORD: 'a-long-admin-password' }), PRODUCTION_REQUIRED.api);
    expect(on.ok && on.config.ADMIN_PASSWORD).toBe('a-long-admin-password');
  });
});

describe('docker-compose.cluster.yml (the workers on a Redis Cluster)', () => {
  const cluster = parse(read('docker-compose.cluster.yml'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const cs = cluster.services;
  const nodes = Object.keys(cs).filter((name) => name.startsWith('redis-node-'));
  const clusterEnvOf = (service: string, shell: Record<string, string> = operatorShell) =>
    Object.fromEntries(Object.entries(cs[service].environment ?? {}).map(([k, v]) => [k, interpolate(String(v), shell)]));

  it('runs the same services as docker-compose.yml, with six cluster nodes and a one-shot init in place of redis', () => {
    expect(Object.keys(cs).sort()).toEqual(['api', 'migrate', 'postgres', 'redis-cluster-init', ...nodes, 'secrets', 'worker'].sort());
    expect(nodes.sort()).toEqual(['redis-node-1', 'redis-node-2', 'redis-node-3', 'redis-node-4', 'redis-node-5', 'redis-node-6']);
    for (const name of ['postgres', 'secrets', 'migrate']) expect(cs[name]).toEqual(services[name]);
    for (const name of ['api', 'worker']) {
      const { environment: _e, depends_on: _d, ...rest } = cs[name];
      const { environment: _be, depends_on: _bd, ...baseRest } = services[name];
      expect(rest).toEqual(baseRest);
    }
  });

  it.each(['redis-node-1', 'redis-node-6'])('%s is a persistent cluster node, announced by its service name, health-checked', (name) => {
    const node = cs[name];
    const command = node.command!.join(' ');
    expect(node.image).toMatch(/^redis:7/);
    expect(command).toMatch(/--cluster-enabled yes/);
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    expect(command).toContain(`--cluster-announce-hostname ${name}`);
    expect(node.volumes).toEqual([`${name}:/data`]);
    expect(cluster.volumes).toHaveProperty(name);
    expect(node.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('redis-cluster-init waits for every node, creates three masters with a replica each, once', () => {
    const init = cs['redis-cluster-init'];
    expect(Object.keys(init.depends_on!).sort()).toEqual([...nodes].sort());
    for (const dep of Object.values(init.depends_on!)) expect(dep).toEqual({ condition: 'service_healthy' });
    const script = init.command!.join(' ');
    expect(script).toMatch(/redis-cli --cluster create \$\$nodes --cluster-replicas 1 --cluster-yes/);
    expect(script).toMatch(/for n in 1 2 3 4 5 6;/);
    expect(script).toMatch(/cluster_state:ok.*exit 0/);
    expect(init.restart).toBe('no');
  });

  it.each([
    ['api', apiEnvSchema, PRODUCTION_REQUIRED.api],
    ['worker', workerEnvSchema, PRODUCTION_REQUIRED.worker],
  ] as const)('%s reaches the cluster (no REDIS_URL), waits for its init, and its environment parses', (name, schema, required) => {
    const env = clusterEnvOf(name);
    expect(env.REDIS_URL).toBeUndefined();
    const named = env.REDIS_CLUSTER_NODES.split(',').map((entry) => entry.split(':')[0]);
    expect(named.length).toBeGreaterThanOrEqual(3);
    for (const host of named) expect(nodes).toContain(host);
    // Unset: the cluster's default shard count comes from packages/queue, not from this file.
    expect(env.DELIVERY_QUEUE_SHARDS).toBe('');
    expect(cs[name].depends_on!['redis-cluster-init']).toEqual({ condition: 'service_completed_successfully' });
    expect(cs[name].depends_on).not.toHaveProperty('redis');
    expect(Object.keys(env).filter((key) => !Object.keys(schema.shape).includes(key))).toEqual([]);
    expect(parseEnv(schema, env, required)).toEqual({ ok: true, config: expect.objectContaining({ REDIS_CLUSTER_NODES: env.REDIS_CLUSTER_NODES }) });
    expect(parseEnv(schema, { ...env, DELIVERY_QUEUE_SHARDS: String(DEFAULT_SHARDS.cluster) }, required)).toMatchObject({ ok: true });
    // Everything else as in docker-compose.yml.
    const { REDIS_CLUSTER_NODES: _n, DELIVERY_QUEUE_SHARDS: _s, ...rest } = env;
    const { REDIS_URL: _u, ...baseRest } = envOf(name);
    expect(rest).toEqual(baseRest);
  });

  it('API and workers share the cluster, the shard count and the queue prefix', () => {
    for (const key of ['REDIS_CLUSTER_NODES', 'DELIVERY_QUEUE_SHARDS', 'QUEUE_PREFIX', 'DATABASE_URL', 'ENCRYPTION_KEY']) {
      expect(clusterEnvOf('worker')[key]).toBe(clusterEnvOf('api')[key]);
    }
  });
});

describe('each default is written once, in packages/config (the compose files pass variables through)', () => {
  // Fixed on purpose, whatever the schema's default: the published port mapping names PORT's
  // container side, and a production worker must never reach private addresses.
  const PINNED: Record<string, string> = { PORT: 'api', ALLOW_PRIVATE_TARGETS: 'worker' };
  const schemas = { api: apiEnvSchema, worker: workerEnvSchema, migrate: migrateEnvSchema } as const;
  type Name = keyof typeof schemas;

  /** The variables of a service's environment that repeat a default its env schema defines. */
  function copiedDefaults(service: Name, environment: Record<string, string>): string[] {
    const shape = schemas[service].shape as Record<string, z.ZodType>;
    return Object.entries(environment).flatMap(([name, value]) => {
      const field = shape[name];
      if (!field) return [];
      const passed = /^\$\{([A-Z0-9_]+):-(.*)\}$/.exec(value);
      // Passed through: its own name and no fallback (empty is unset for parseEnv, so the schema's default applies).
      if (passed) return passed[1] === name && passed[2] === '' ? [] : [`${name}: ${value}`];
      const unset = field.safeParse(undefined);
      if (!unset.success || unset.data === undefined || PINNED[name] === service || value.includes('${')) return [];
      const fixed = field.safeParse(value);
      return fixed.success && JSON.stringify(fixed.data) === JSON.stringify(unset.data) ? [`${name}: ${value}`] : [];
    });
  }

  it.each(['docker-compose.yml', 'docker-compose.cluster.yml'].flatMap((file) => (Object.keys(schemas) as Name[]).map((service) => [file, service] as const)))(
    '%s, %s: no default of the env schema is repeated',
    (file, service) => {
      const environment = (parse(read(file), { merge: true }) as { services: Record<string, Service> }).services[service].environment ?? {};
      expect(copiedDefaults(service, Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, String(v)])))).toEqual([]);
    },
  );

  it('finds a copied default: a fallback, another name, or a fixed value the schema would default to', () => {
    const environment = {
      RETRY_SCHEDULE: '${RETRY_SCHEDULE:-5m,10m,20m,40m,80m}',
      WEBHOOK_BRAND: '${BRAND:-}',
      WORKER_CONCURRENCY: '200',
      DELIVERY_TIMEOUT: '10000ms',
      LOG_LEVEL: '${LOG_LEVEL:-}',
      WORKER_HEALTH_PORT: '9090',
      ALLOW_PRIVATE_TARGETS: 'false',
      AUTO_DISABLE_AFTER: '1d',
    };
    expect(copiedDefaults('worker', environment)).toEqual([
      'RETRY_SCHEDULE: ${RETRY_SCHEDULE:-5m,10m,20m,40m,80m}',
      'WEBHOOK_BRAND: ${BRAND:-}',
      'WORKER_CONCURRENCY: 200',
      'DELIVERY_TIMEOUT: 10000ms',
    ]);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const lines = dockerfile.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const froms = lines.filter((l) => /^FROM\s/i.test(l));
  const stageOf = (index: number) => {
    let current = '';
    lines.slice(0, index + 1).forEach((l) => {
      const m = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(l);
      if (m) current = m[1] ?? '';
    });
    return current;
  };

  it('is multi-stage on node:20-bookworm-slim', () => {
    expect(froms.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    for (const from of froms) expect(from).toMatch(/^FROM (\$\{NODE_IMAGE\}|manifests) AS [a-z-]+$/);
  });

  it('installs everything, generates the Prisma client and compiles every workspace in the build stage', () => {
    const ci = lines.findIndex((l) => /^RUN npm ci(?!.*--omit)/.test(l));
    const build = lines.findIndex((l) => l === 'RUN npm run -s build');
    expect(stageOf(ci)).toBe('build');
    expect(stageOf(build)).toBe('build');
    // npm run build generates the client before it compiles.
    expect(JSON.parse(read('package.json')).scripts.build).toMatch(/^npm run -s prisma:generate && tsc -b tsconfig\.build\.json/);
  });

  it('the runtime stage copies compiled code, never TypeScript sources (but the dashboard\'s two assets)', () => {
    const runtime = lines.slice(lines.lastIndexOf(froms[froms.length - 1]));
    const copies = runtime.filter((l) => /^COPY --from=build/.test(l));
    expect(copies).toEqual(expect.arrayContaining(['COPY --from=build /out ./', 'COPY --from=build /app/prisma/migrations ./prisma/migrations', 'COPY --from=build /app/prisma/contract ./prisma/contract']));
    expect(copies.filter((l) => /\/app\/(apps|packages)\b/.test(l))).toEqual([]);
    const assemble = dockerfile.replace(/\\\n/g, ' ').split('\n').find((l) => /^RUN for ws in apps\/\* packages\/\*/.test(l))!;
    expect(assemble).toMatch(/cp -R "\$ws\/package\.json" "\$ws\/dist"/);
    expect(assemble).toMatch(/cp -R apps\/api\/src\/dashboard\/static/);
  });

  it('ships production dependencies only in the runtime stage', () => {
    const prodInstall = lines.findIndex((l) => /^RUN npm ci .*--omit=dev/.test(l));
    expect(prodInstall).toBeGreaterThan(-1);
    const stage = stageOf(prodInstall);
    expect(lines).toContain(`COPY --from=${stage} /app/node_modules ./node_modules`);
    expect(lines.filter((l) => /node_modules/.test(l) && /COPY --from=build/.test(l))).toEqual([]);
    // --omit=dev alone keeps devOptional packages: prisma and typescript (and their ~130 dependencies),
    // dev tools that are also optional peers of @prisma/client.
    expect(lines[prodInstall]).toMatch(/--omit=optional/);
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { devOptional?: boolean }> };
    expect(['prisma', 'typescript'].map((name) => lock.packages[`node_modules/${name}`]?.devOptional)).toEqual([true, true]);
    // The image runs compiled JavaScript with plain node: tsx and TypeScript are for development only.
    const { dependencies, devDependencies } = JSON.parse(read('package.json'));
    for (const tool of ['tsx', 'typescript', 'prisma']) {
      expect(dependencies).not.toHaveProperty(tool);
      expect(devDependencies).toHaveProperty(tool);
    }
  });

  it('every package the apps import at run time is a production dependency (the image omits dev and optional ones)', () => {
    const { dependencies } = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const lockfile = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }> };
    // A production dependency's own dependencies are installed with it (e.g. @bull-board/ui under @bull-board/api).
    const installedWith = new Set(Object.keys(dependencies).flatMap((dep) => Object.keys((JSON.parse(read(`node_modules/${dep}/package.json`)) as { dependencies?: object }).dependencies ?? {})));
    const sources: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.(ts|mjs|js)$/.test(entry.name) && !/\.d\.ts$/.test(entry.name)) sources.push(path);
      }
    };
    for (const base of ['apps', 'packages']) {
      for (const ws of readdirSync(join(ROOT, base))) if (existsSync(join(ROOT, base, ws, 'src'))) walk(join(ROOT, base, ws, 'src'));
    }
    walk(join(ROOT, 'docker'));
    const missing = new Set<string>();
    for (const file of sources) {
      const text = readFileSync(file, 'utf8');
      const specifiers = [
        ...[...text.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^'";]*?from\s+'([^']+)'/gm)].map((m) => m[1]),
        ...[...text.matchAll(/^\s*import\s+'([^']+)'/gm)].map((m) => m[1]),
        ...[...text.matchAll(/\b(?:require|import)\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]),
        ...[...text.matchAll(/require\.resolve\(\s*'([^']+)'/g)].map((m) => m[1]),
      ];
      for (const spec of specifiers) {
        if (spec.startsWith('.') || spec.startsWith('node:') || spec.startsWith('@hookline/')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!(name in dependencies) && !installedWith.has(name)) missing.add(`${name} (${file.slice(ROOT.length + 1)})`);
        // The runtime install omits dev and optional packages (--omit=dev --omit=optional): none of those may be imported.
        const locked = lockfile.packages[`node_modules/${name}`];
        if (!locked || locked.dev || locked.devOptional || locked.optional) missing.add(`${name} (${file.slice(ROOT.length + 1)}: not installed by --omit=dev --omit=optional)`);
      }
    }
    expect([...missing]).toEqual([]);
  });

  it('copies every workspace manifest, so a new workspace cannot be forgotten', () => {
    const workspaces = (JSON.parse(read('package.json')).workspaces as string[]).flatMap((pattern) => {
      const dir = pattern.replace(/\/\*$/, '');
      return readdirSync(join(ROOT, dir)).filter((name) => existsSync(join(ROOT, dir, name, 'package.json'))).map((name) => `${dir}/${name}`);
    });
    expect(workspaces.length).toBeGreaterThanOrEqual(8);
    for (const ws of workspaces) expect(lines).toContain(`COPY ${ws}/package.json ${ws}/`);
  });

  it('runs as the non-root node user (numeric, for Kubernetes\' runAsNonRoot), with a HEALTHCHECK and the entrypoint', () => {
    const runtimeStart = lines.lastIndexOf(froms[froms.length - 1]);
    const runtime = lines.slice(runtimeStart);
    const users = runtime.filter((l) => /^USER\s/i.test(l));
    // uid 1000 is the node user of the official node images.
    expect(users).toEqual(['USER 1000:1000']);
    expect(runtime.some((l) => /^HEALTHCHECK .*CMD \["node", "docker\/healthcheck\.mjs"\]$/.test(l))).toBe(true);
    expect(runtime).toContain('ENTRYPOINT ["docker/entrypoint.sh"]');
    expect(runtime).toContain('CMD ["api"]');
  });

  it('.dockerignore keeps local state and dependencies out of the build context', () => {
    const ignore = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const entry of ['**/node_modules', '.git', '.data', 'packages/db/src/generated', '.env']) expect(ignore).toContain(entry);
  });
});

describe('docker/entrypoint.sh and docker/healthcheck.mjs, run as processes', () => {
  const entrypoint = join(ROOT, 'docker/entrypoint.sh');
  let database: TestDatabase;
  const prefix = uniquePrefix('entry');
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    // The entrypoint runs the compiled processes (node apps/*/dist/main.js).
    ensureBuilt();
    database = await createTestDatabase();
    // The entrypoint's migrate must find the database empty.
    await database.db.sql.exec('DROP SCHEMA public CASCADE; CREATE SCHEMA public;');
  }, 180_000);
  afterAll(async () => {
    // Every child gone before the prefix is cleaned, or a late BullMQ write would outlive the cleanup.
    await killChildren(children);
    const redis = createRedis(TEST_REDIS_URL, 'producer');
    await cleanPrefix(redis, prefix);
    redis.disconnect();
    await database.drop();
  });

  const baseEnv = () => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    NODE_ENV: 'production',
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: prefix,
    ENCRYPTION_KEY: operatorShell.ENCRYPTION_KEY,
    LOG_LEVEL: 'info',
  });

  /** Starts the entrypoint with a role; resolves with the port it logs once listening. */
  function start(role: string, env: Record<string, string>, listening: RegExp): Promise<{ child: ChildProcess; port: number }> {
    const child = spawn('sh', [entrypoint, role], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    return new Promise((resolvePort, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`${role} did not start in time:\n${output}`)), 30_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = listening.exec(output);
        if (match) {
          clearTimeout(timer);
          resolvePort({ child, port: Number(match[1]) });
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${role} exited with ${code}:\n${output}`));
      });
    });
  }

  /** argv of a running child (Linux /proc); node as its absolute path. */
  const cmdlineOf = (child: ChildProcess) =>
    readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).map((arg, i) => (i === 0 && arg === 'node' ? process.execPath : arg));
  const exitOf = (child: ChildProcess) => new Promise<number | null>((done) => (child.exitCode !== null ? done(child.exitCode) : child.once('exit', (code) => done(code))));
  const healthcheck = (env: Record<string, string>) => spawnSync(process.execPath, [join(ROOT, 'docker/healthcheck.mjs'), '/readyz'], { env: { ...env, PATH: process.env.PATH ?? '' }, encoding: 'utf8', timeout: 10_000 });

  it('refuses an unknown command with a usage line and exit code 64', () => {
    const result = spawnSync('sh', [entrypoint, 'serve'], { encoding: 'utf8' });
    expect(result.status).toBe(64);
    expect(result.stderr).toMatch(/use one of: api, worker, migrate, init-secrets/);
  });

  it('init-secrets creates the platform token and encryption key once (mode 600) and never replaces them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookline-secrets-'));
    try {
      const env = { PATH: process.env.PATH ?? '', HOOKLINE_SECRETS_DIR: dir };
      expect(spawnSync('sh', [entrypoint, 'init-secrets'], { env, encoding: 'utf8' }).status).toBe(0);
      const token = readFileSync(join(dir, 'platform_token'), 'utf8');
      const key = readFileSync(join(dir, 'encryption_key'), 'utf8');
      expect(token).toMatch(/^[0-9a-f]{48}$/);
      expect(Buffer.from(key, 'base64')).toHaveLength(32);
      for (const file of ['platform_token', 'encryption_key']) expect(statSync(join(dir, file)).mode & 0o077).toBe(0);
      const again = spawnSync('sh', [entrypoint, 'init-secrets'], { env, encoding: 'utf8' });
      expect(again.status).toBe(0);
      expect(again.stdout).not.toContain(token);
      expect(readFileSync(join(dir, 'platform_token'), 'utf8')).toBe(token);
      expect(readFileSync(join(dir, 'encryption_key'), 'utf8')).toBe(key);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('migrate applies the migrations to an empty database and exits 0', async () => {
    const result = spawnSync('sh', [entrypoint, 'migrate'], { env: baseEnv(), encoding: 'utf8', timeout: 60_000 });
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    expect(result.stdout).toMatch(/applied \d+ migration/);
    const rows = await database.db.sql.query<{ migration_name: string }>('SELECT migration_name FROM "_prisma_migrations"');
    expect(rows.length).toBeGreaterThan(0);
    const again = spawnSync('sh', [entrypoint, 'migrate'], { env: baseEnv(), encoding: 'utf8', timeout: 60_000 });
    expect(again.stdout).toMatch(/up to date/);
  });

  it('api starts with the generated secrets, passes the image healthcheck, and exits 0 on SIGTERM', async () => {
    // No PLATFORM_TOKEN or ENCRYPTION_KEY in the environment: the entrypoint reads the volume's.
    const dir = mkdtempSync(join(tmpdir(), 'hookline-secrets-'));
    writeFileSync(join(dir, 'platform_token'), operatorShell.PLATFORM_TOKEN);
    writeFileSync(join(dir, 'encryption_key'), operatorShell.ENCRYPTION_KEY);
    const { ENCRYPTION_KEY: _unset, ...withoutKey } = baseEnv();
    const env = { ...withoutKey, PORT: '0', HOOKLINE_SECRETS_DIR: dir };
    const { child, port } = await start('api', env, /api listening.*?127\.0\.0\.1:(\d+)/);
    // The shell replaced itself (exec) by plain node on the compiled code: no tsx loader.
    expect(cmdlineOf(child)).toEqual([process.execPath, 'apps/api/dist/main.js']);
    const health = healthcheck({ HOOKLINE_ROLE: 'api', PORT: String(port) });
    expect({ status: health.status, stderr: health.stderr }).toEqual({ status: 0, stderr: '' });
    // It took the token from the file: the platform API accepts it.
    const created = await fetch(`http://127.0.0.1:${port}/internal/v1/accounts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorShell.PLATFORM_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'From the secrets volume' }),
    });
    expect(created.status).toBe(201);
    rmSync(dir, { recursive: true, force: true });
    child.kill('SIGTERM');
    expect(await exitOf(child)).toBe(0);
    // Nothing listens any more: the healthcheck reports it.
    expect(healthcheck({ HOOKLINE_ROLE: 'api', PORT: String(port) }).status).toBe(1);
  });

  it('worker starts with its health port, passes the image healthcheck, and exits 0 on SIGTERM', async () => {
    const env = { ...baseEnv(), WORKER_HEALTH_PORT: '0', ALLOW_PRIVATE_TARGETS: 'false' };
    const { child, port } = await start('worker', env, /health server listening.*?"port":(\d+)/);
    expect(cmdlineOf(child)).toEqual([process.execPath, 'apps/worker/dist/main.js']);
    const health = healthcheck({ HOOKLINE_ROLE: 'worker', WORKER_HEALTH_PORT: String(port) });
    expect({ status: health.status, stderr: health.stderr }).toEqual({ status: 0, stderr: '' });
    child.kill('SIGTERM');
    expect(await exitOf(child)).toBe(0);
  });

  it('the healthcheck passes for migrate and fails for a worker without a health port', () => {
    expect(healthcheck({ HOOKLINE_ROLE: 'migrate' }).status).toBe(0);
    const noPort = healthcheck({ HOOKLINE_ROLE: 'worker' });
    expect(noPort.status).toBe(1);
    expect(noPort.stderr).toMatch(/WORKER_HEALTH_PORT/);
  });
});
