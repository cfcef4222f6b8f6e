import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { apiEnvSchema, parseEnv, PRODUCTION_REQUIRED, workerEnvSchema } from '@hookline/config';
import { parseDuration } from '@hookline/domain';
import { createRedis } from '@hookline/queue';
import { ensureBuilt, killChildren } from '../support/build';
import { freePort } from '../support/local-services';
import { cleanPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/api-harness';
import { createTestDatabase, type TestDatabase } from '../support/test-database';

// deploy/kubernetes: a kustomize base, two overlays and the migration Job (docs/kubernetes.md).
// No cluster here, so each variant is rendered (always by a plain merge of the
// files, and by `kubectl kustomize` too where kubectl is installed: both must
// agree), validated against the Kubernetes and KEDA schemas, checked against
// the apps' env schemas; and the API and two workers are started as the
// compiled processes with the manifests' environment and answer the manifests'
// probes.

const ROOT = resolve(__dirname, '../..');
const BASE = join(ROOT, 'deploy/kubernetes');
const VARIANTS = { base: BASE, 'redis-cluster': join(BASE, 'overlays/redis-cluster'), sentinel: join(BASE, 'overlays/sentinel') } as const;
type Variant = keyof typeof VARIANTS;

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string }; [key: string]: any };
type Kustomization = { resources?: string[]; patches?: Array<{ target: { kind: string; name: string }; patch: string }> };

const readYaml = (text: string) => parseAllDocuments(text, { merge: true }).map((doc) => doc.toJSON() as K8sObject).filter(Boolean);

/** JSON Patch (RFC 6902) add / remove / replace, as kustomize applies a patch given as a list of operations. */
function applyJsonPatch(object: K8sObject, ops: Array<{ op: string; path: string; value?: unknown }>): void {
  for (const { op, path, value } of ops) {
    const keys = path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop()!;
    const parent = keys.reduce((node: any, key) => node[key], object);
    if (op === 'remove') {
      if (!(last in parent)) throw new Error(`remove: ${path} is not there`);
      delete parent[last];
    } else if (op === 'add' || op === 'replace') parent[last] = value;
    else throw new Error(`unsupported patch op ${op}`);
  }
}

/** A kustomization rendered by merging its files: its resources (files or directories), then its patches. */
function plainRender(dir: string): K8sObject[] {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  const objects = (k.resources ?? []).flatMap((entry) => {
    const path = resolve(dir, entry);
    return statSync(path).isDirectory() ? plainRender(path) : readYaml(readFileSync(path, 'utf8'));
  });
  for (const { target, patch } of k.patches ?? []) {
    const matches = objects.filter((o) => o.kind === target.kind && o.metadata.name === target.name);
    if (matches.length !== 1) throw new Error(`patch target ${target.kind}/${target.name} matched ${matches.length} objects`);
    applyJsonPatch(matches[0], parse(patch) as never);
  }
  return objects;
}

const byKindAndName = (objects: K8sObject[]) => [...objects].sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));

const kubectl = spawnSync('kubectl', ['kustomize', '--help'], { encoding: 'utf8' }).status === 0;
const rendered: Record<Variant, K8sObject[]> = Object.fromEntries(Object.entries(VARIANTS).map(([name, dir]) => [name, byKindAndName(plainRender(dir))])) as never;

const find = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};

/** The secrets an operator puts in hookline-secrets (here: test values). */
type Secrets = Record<string, string>;

/** The environment a container gets: its envFrom ConfigMaps (in order), then its env entries; optional refs may be absent. */
function containerEnv(objects: K8sObject[], container: any, secrets: Secrets): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, find(objects, 'ConfigMap', from.configMapRef.name).data);
    else if (from.secretRef && !from.secretRef.optional) throw new Error(`required secretRef ${from.secretRef.name}`);
  }
  for (const entry of container.env ?? []) {
    if ('value' in entry) env[entry.name] = String(entry.value);
    else if (entry.valueFrom?.secretKeyRef) {
      const { name, key, optional } = entry.valueFrom.secretKeyRef;
      expect(name).toBe('hookline-secrets');
      if (secrets[key] !== undefined) env[entry.name] = secrets[key];
      else if (!optional) throw new Error(`secret key ${key} missing`);
    } else throw new Error(`unexpected env entry ${entry.name}`);
  }
  return env;
}

const podOf = (objects: K8sObject[], name: string) => find(objects, 'Deployment', name).spec.template.spec;
const containerOf = (objects: K8sObject[], name: string, container: string) => podOf(objects, name).containers.find((c: any) => c.name === container);

const testSecrets = (): Secrets => ({
  DATABASE_URL: 'postgresql://hookline:x@postgres:5432/hookline',
  PLATFORM_TOKEN: randomBytes(24).toString('hex'),
  ENCRYPTION_KEY: randomBytes(32).toString('base64'),
});

describe.each(Object.keys(VARIANTS) as Variant[])('deploy/kubernetes (%s)', (variant) => {
  const objects = rendered[variant];

  it('renders the same with kubectl kustomize as by merging the files (where kubectl is installed)', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ConfigMap/hookline-api', 'ConfigMap/hookline-common', 'ConfigMap/hookline-worker',
      'Deployment/hookline-api', 'Deployment/hookline-worker',
      'HorizontalPodAutoscaler/hookline-api',
      'PodDisruptionBudget/hookline-api', 'PodDisruptionBudget/hookline-worker',
      'ScaledObject/hookline-worker',
      'Service/hookline-api', 'Service/hookline-worker-metrics',
    ]);
    if (!kubectl) return;
    const out = spawnSync('kubectl', ['kustomize', VARIANTS[variant]], { encoding: 'utf8', timeout: 30_000 });
    expect(out.stderr).toBe('');
    expect(byKindAndName(readYaml(out.stdout))).toEqual(objects);
  });

  it('every object validates against the Kubernetes (and KEDA) schemas', () => {
    const out = spawnSync(process.execPath, [join(ROOT, 'tests/support/k8s-validate.mjs')], { input: JSON.stringify(objects), encoding: 'utf8', timeout: 30_000 });
    expect(out.stderr).toBe('');
    const results = JSON.parse(out.stdout) as Array<{ kind: string; name: string; error: string | null }>;
    expect(results).toHaveLength(objects.length);
    expect(results.filter((r) => r.error)).toEqual([]);
  });

  it.each([
    ['hookline-api', 'api', apiEnvSchema, PRODUCTION_REQUIRED.api],
    ['hookline-worker', 'worker', workerEnvSchema, PRODUCTION_REQUIRED.worker],
  ] as const)('%s: every variable is one its env schema knows, and with the operator\'s secrets it parses for production', (deployment, container, schema, required) => {
    const env = containerEnv(objects, containerOf(objects, deployment, container), testSecrets());
    expect(Object.keys(env).filter((key) => !Object.keys(schema.shape).includes(key))).toEqual([]);
    expect(env.NODE_ENV).toBe('production');
    expect(parseEnv(schema, env, required)).toEqual({ ok: true, config: expect.any(Object) });
  });

  it('the API and the workers agree on Redis, the queue prefix and the shard count (one ConfigMap)', () => {
    const api = containerEnv(objects, containerOf(objects, 'hookline-api', 'api'), testSecrets());
    const worker = containerEnv(objects, containerOf(objects, 'hookline-worker', 'worker'), testSecrets());
    for (const key of ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER', 'QUEUE_PREFIX', 'DELIVERY_QUEUE_SHARDS']) expect(worker[key]).toBe(api[key]);
    const topology = { base: 'REDIS_URL', 'redis-cluster': 'REDIS_CLUSTER_NODES', sentinel: 'REDIS_SENTINELS' }[variant];
    expect(['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'].filter((key) => api[key] !== undefined)).toEqual([topology]);
    if (variant === 'redis-cluster') expect(api.DELIVERY_QUEUE_SHARDS).toBe('16');
  });
});

describe('deploy/kubernetes: the base in detail', () => {
  const objects = rendered.base;
  const api = podOf(objects, 'hookline-api');
  const worker = podOf(objects, 'hookline-worker');
  const apiEnv = containerEnv(objects, containerOf(objects, 'hookline-api', 'api'), testSecrets());
  const workerEnv = containerEnv(objects, containerOf(objects, 'hookline-worker', 'worker'), testSecrets());

  it('holds nothing secret: no Secret object, secrets only by reference to hookline-secrets', () => {
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    const text = JSON.stringify(objects);
    for (const key of ['PLATFORM_TOKEN', 'ENCRYPTION_KEY', 'DATABASE_URL', 'ADMIN_PASSWORD', 'SESSION_SECRET']) {
      for (const cm of objects.filter((o) => o.kind === 'ConfigMap')) expect(Object.keys(cm.data)).not.toContain(key);
    }
    expect(text).not.toMatch(/postgres(ql)?:\/\/[^"]*@/);
  });

  it.each([['api', api], ['worker', worker]])('%s pods run as non-root on a read-only root filesystem, /tmp an emptyDir, no capabilities', (_name, pod) => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const c of [...pod.initContainers, ...pod.containers]) {
      expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      expect(c.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
      expect(c.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
      expect(c.resources.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    }
    expect(pod.volumes).toEqual([{ name: 'tmp', emptyDir: { sizeLimit: expect.any(String) } }]);
    expect(pod.topologySpreadConstraints.map((t: any) => t.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
  });

  it.each([['api', api], ['worker', worker]])('%s pods apply pending migrations first (an init container running the image\'s migrate)', (_name, pod) => {
    expect(pod.initContainers).toHaveLength(1);
    const [migrate] = pod.initContainers;
    expect(migrate.args).toEqual(['migrate']);
    expect(migrate.image).toBe(pod.containers[0].image);
    expect(containerEnv(objects, migrate, testSecrets())).toEqual({ NODE_ENV: 'production', DATABASE_URL: testSecrets().DATABASE_URL });
  });

  it('probes: the API on PORT, the worker on WORKER_HEALTH_PORT; liveness /healthz, readiness /readyz', () => {
    const probes = (c: any) => ({ startup: c.startupProbe.httpGet.path, liveness: c.livenessProbe.httpGet.path, readiness: c.readinessProbe.httpGet.path });
    const portOf = (c: any, name: string) => c.ports.find((p: any) => p.name === name).containerPort;
    const apiC = api.containers[0];
    const workerC = worker.containers[0];
    expect(probes(apiC)).toEqual({ startup: '/healthz', liveness: '/healthz', readiness: '/readyz' });
    expect(probes(workerC)).toEqual({ startup: '/healthz', liveness: '/healthz', readiness: '/readyz' });
    for (const p of [apiC.startupProbe, apiC.livenessProbe, apiC.readinessProbe]) expect(p.httpGet.port).toBe('http');
    for (const p of [workerC.startupProbe, workerC.livenessProbe, workerC.readinessProbe]) expect(p.httpGet.port).toBe('health');
    expect(String(portOf(apiC, 'http'))).toBe(apiEnv.PORT);
    expect(String(portOf(workerC, 'health'))).toBe(workerEnv.WORKER_HEALTH_PORT);
    expect(find(objects, 'Service', 'hookline-api').spec.ports[0].targetPort).toBe('http');
  });

  it('the worker\'s grace period covers its preStop, DELIVERY_TIMEOUT and the 15 s drain margin (docs/reliability.md)', () => {
    const preStop = Number(worker.containers[0].lifecycle.preStop.exec.command[1]);
    const timeoutS = parseDuration(workerEnv.DELIVERY_TIMEOUT)! / 1000;
    expect(worker.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + timeoutS + 15);
    // The API stops taking connections after its preStop, and answers what is in flight (at most 30 s per request).
    expect(api.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(Number(api.containers[0].lifecycle.preStop.exec.command[1]) + 30);
  });

  it('PodDisruptionBudgets, Services and autoscalers select and target their Deployments', () => {
    for (const name of ['hookline-api', 'hookline-worker']) {
      const labels = find(objects, 'Deployment', name).spec.template.metadata.labels;
      expect(find(objects, 'PodDisruptionBudget', name).spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: labels } });
    }
    expect(find(objects, 'Service', 'hookline-api').spec.selector).toEqual(find(objects, 'Deployment', 'hookline-api').spec.template.metadata.labels);
    expect(find(objects, 'Service', 'hookline-worker-metrics').spec.selector).toEqual(find(objects, 'Deployment', 'hookline-worker').spec.template.metadata.labels);
    // The autoscalers own the replica counts: a Deployment's own replicas would be set back on every apply.
    for (const name of ['hookline-api', 'hookline-worker']) expect(find(objects, 'Deployment', name).spec).not.toHaveProperty('replicas');
    const hpa = find(objects, 'HorizontalPodAutoscaler', 'hookline-api').spec;
    expect(hpa.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'hookline-api' });
    expect(hpa.metrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: expect.any(Number) } } }]);
  });

  it('KEDA scales the workers on the delivery lag (2 s) and the busy slots, from Prometheus', () => {
    const scaled = find(objects, 'ScaledObject', 'hookline-worker').spec;
    expect(scaled.scaleTargetRef).toEqual({ name: 'hookline-worker' });
    expect(scaled.minReplicaCount).toBeGreaterThanOrEqual(2);
    const triggers = Object.fromEntries(scaled.triggers.map((t: any) => [t.name, t]));
    expect(triggers['delivery-lag']).toMatchObject({ type: 'prometheus', metricType: 'Value', metadata: { threshold: '2' } });
    expect(triggers['delivery-lag'].metadata.query).toMatch(/\bhookline_delivery_lag_seconds\b/);
    expect(triggers['slots-busy'].metadata.query).toMatch(/\bhookline_worker_slots_busy_ratio\b/);
  });
});

describe('deploy/kubernetes/migrate: the migration Job applied before a rollout', () => {
  const dir = join(BASE, 'migrate');
  const objects = byKindAndName(plainRender(dir));

  it('renders one Job, the same with kubectl kustomize (where installed), valid against the Kubernetes schema', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Job/hookline-migrate']);
    if (kubectl) {
      const out = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 30_000 });
      expect(out.stderr).toBe('');
      expect(byKindAndName(readYaml(out.stdout))).toEqual(objects);
    }
    const out = spawnSync(process.execPath, [join(ROOT, 'tests/support/k8s-validate.mjs')], { input: JSON.stringify(objects), encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(out.stdout)).toEqual([{ kind: 'Job', name: 'hookline-migrate', error: null }]);
  });

  it('runs the Deployments\' migrate container once (no restart in place, bounded retries and time), in their pods\' security context', () => {
    const job = objects[0].spec;
    expect(job.template.spec.restartPolicy).toBe('Never');
    expect(job.backoffLimit).toBeGreaterThanOrEqual(1);
    expect(job.activeDeadlineSeconds).toBeGreaterThan(0);
    expect(job.template.spec.automountServiceAccountToken).toBe(false);
    // Not in any variant the Deployments are applied with: a Job's template is immutable, so it is deleted and created per release.
    for (const variant of Object.keys(VARIANTS) as Variant[]) expect(rendered[variant].filter((o) => o.kind === 'Job')).toEqual([]);
    for (const deployment of ['hookline-api', 'hookline-worker']) {
      const pod = podOf(rendered.base, deployment);
      expect(job.template.spec.containers).toEqual(pod.initContainers);
      expect(job.template.spec.securityContext).toEqual(pod.securityContext);
      expect(job.template.spec.volumes).toEqual(pod.volumes);
    }
  });
});

describe('deploy/kubernetes/contract: the contract Job applied once a rollout has finished', () => {
  const dir = join(BASE, 'contract');
  const objects = byKindAndName(plainRender(dir));
  const migrateJob = byKindAndName(plainRender(join(BASE, 'migrate')))[0];

  it('renders one Job, the same with kubectl kustomize (where installed), valid against the Kubernetes schema', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Job/hookline-contract']);
    if (kubectl) {
      const out = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 30_000 });
      expect(out.stderr).toBe('');
      expect(byKindAndName(readYaml(out.stdout))).toEqual(objects);
    }
    const out = spawnSync(process.execPath, [join(ROOT, 'tests/support/k8s-validate.mjs')], { input: JSON.stringify(objects), encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(out.stdout)).toEqual([{ kind: 'Job', name: 'hookline-contract', error: null }]);
  });

  it('is the migration Job with `migrate --contract`, and that command applies the contract steps to a database mid-rollout', async () => {
    const job = objects[0];
    const [container] = job.spec.template.spec.containers;
    expect(container.args).toEqual(['migrate', '--contract']);
    expect({ ...container, args: migrateJob.spec.template.spec.containers[0].args }).toEqual(migrateJob.spec.template.spec.containers[0]);
    expect((job.metadata as { labels?: Record<string, string> }).labels?.['app.kubernetes.io/component']).toBe('contract');
    expect(job.spec.template.metadata.labels['app.kubernetes.io/component']).toBe('contract');

    ensureBuilt();
    const mid = await createTestDatabase({ contract: false });
    try {
      const secrets = { ...testSecrets(), DATABASE_URL: mid.url };
      const run = spawnSync('sh', [join(ROOT, 'docker/entrypoint.sh'), ...container.args], { cwd: ROOT, env: { ...containerEnv(objects, container, secrets), PATH: process.env.PATH ?? '' }, encoding: 'utf8', timeout: 60_000 });
      expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
      expect(run.stdout).toMatch(/^applied \d+ migration\(s\): .*20261208020000_hot_ending_update/);
      const [index] = await mid.db.sql.query<{ n: string }>(`SELECT count(*) AS n FROM pg_indexes WHERE indexname = 'deliveries_waiting_next_attempt_at_id_idx'`);
      expect(Number(index.n)).toBe(0);
    } finally {
      await mid.drop();
    }
  }, 300_000);
});

describe('deploy/kubernetes: the API and two workers, started with the manifests\' environment, answer their probes', () => {
  const objects = rendered.base;
  const children: ChildProcess[] = [];
  const prefix = uniquePrefix('k8s');
  let database: TestDatabase;

  beforeAll(async () => {
    ensureBuilt();
    database = await createTestDatabase();
  }, 180_000);
  afterAll(async () => {
    await killChildren(children);
    const redis = createRedis(TEST_REDIS_URL, 'producer');
    await cleanPrefix(redis, prefix);
    redis.disconnect();
    await database?.drop();
  });


  /** GETs path until it answers 200 (or the time is up); resolves to the last status. */
  async function probe(port: number, path: string, timeoutMs = 60_000): Promise<number> {
    const until = Date.now() + timeoutMs;
    let status = 0;
    while (Date.now() < until) {
      status = await fetch(`http://127.0.0.1:${port}${path}`).then((res) => res.status, () => 0);
      if (status === 200) return status;
      await new Promise((done) => setTimeout(done, 200));
    }
    return status;
  }

  it('each container\'s command, environment and probe paths, on this machine', async () => {
    const secrets = { ...testSecrets(), DATABASE_URL: database.url };
    // Only what cannot be the cluster's here: Redis's address, a prefix of this test's own, and
    // free ports (three processes share one host; each pod has its own network in a cluster,
    // and the test above ties the manifests' ports to PORT and WORKER_HEALTH_PORT).
    const local = (env: Record<string, string>, portKey: string, port: number) => ({ ...env, REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, [portKey]: String(port), PATH: process.env.PATH ?? '/usr/bin:/bin' });
    const entry = (c: any) => ({ api: 'apps/api/dist/main.js', worker: 'apps/worker/dist/main.js' })[c.args[0] as 'api' | 'worker'];
    const start = (c: any, env: Record<string, string>) => {
      // The image's entrypoint with the container's args (docker/entrypoint.sh execs node on dist/).
      const child = spawn('sh', [join(ROOT, 'docker/entrypoint.sh'), ...c.args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('exit', (code) => { if (code) process.stderr.write(`${c.args[0]} exited ${code}: ${stderr}\n`); });
      children.push(child);
      expect(entry(c)).toBeDefined();
      return child;
    };

    // Migrations first, as the migration Job and the init containers (the same container) do.
    const migrate = podOf(objects, 'hookline-api').initContainers[0];
    const migrated = spawnSync('sh', [join(ROOT, 'docker/entrypoint.sh'), ...migrate.args], { cwd: ROOT, env: { ...containerEnv(objects, migrate, secrets), PATH: process.env.PATH ?? '' }, encoding: 'utf8', timeout: 60_000 });
    expect({ status: migrated.status, stderr: migrated.stderr }).toEqual({ status: 0, stderr: '' });

    const apiC = containerOf(objects, 'hookline-api', 'api');
    const workerC = containerOf(objects, 'hookline-worker', 'worker');
    const apiPort = await freePort();
    const workerPorts = [await freePort(), await freePort()];
    start(apiC, local(containerEnv(objects, apiC, secrets), 'PORT', apiPort));
    for (const port of workerPorts) start(workerC, local(containerEnv(objects, workerC, secrets), 'WORKER_HEALTH_PORT', port));

    const paths = (c: any) => [c.startupProbe, c.livenessProbe, c.readinessProbe].map((p: any) => p.httpGet.path as string);
    for (const path of paths(apiC)) expect({ path, status: await probe(apiPort, path) }).toEqual({ path, status: 200 });
    for (const port of workerPorts) {
      for (const path of paths(workerC)) expect({ port, path, status: await probe(port, path) }).toEqual({ port, path, status: 200 });
    }
    // The lag gauge the ScaledObject queries is served by every worker.
    for (const port of workerPorts) expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(/^hookline_delivery_lag_seconds\{shard="0",app="worker"\} 0$/m);
  }, 180_000);
});
