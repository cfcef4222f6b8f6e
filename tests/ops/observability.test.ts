import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { parse } from 'yaml';
import { startHealthServer, type HealthServer } from '@hookline/worker';
import { startStack, type Stack } from '../delivery/stack';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';

// deploy/grafana/hookline.json and deploy/prometheus/alerts.yml query only
// metrics that exist: every metric name in their PromQL is served by /metrics
// of the API or of the worker's health port.

const ROOT = resolve(__dirname, '../..');
const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/hookline.json'), 'utf8'));
const alerts = parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: Array<{ name: string; rules: Array<{ alert: string; expr: string; for?: string; labels?: Record<string, string> }> }> };

const dashboardExprs: string[] = dashboard.panels.flatMap((p: any) => p.targets.map((t: any) => t.expr as string));
const alertExprs = alerts.groups.flatMap((g) => g.rules.map((r) => r.expr));

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression reads: identifiers that are not functions, keywords, labels or durations. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals (label values)
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range and subquery windows
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ''); // label lists
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const after = stripped.slice(match.index + word.length).trimStart();
    if (after.startsWith('(') || PROMQL_WORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** A histogram's series are its name plus _bucket, _sum, _count; `# TYPE` names the base. */
const baseName = (name: string, histograms: Set<string>) => {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return histograms.has(base) ? base : name;
};

describe('metricNames (PromQL)', () => {
  it('finds the metrics, not functions, keywords, labels or windows', () => {
    expect(metricNames('sum by (outcome) (rate(hookline_attempts_total{outcome="failed", x=~"a|b"}[5m])) / on(app) group_left sum(rate(other_total[1h:1m])) > 0.2 and absent(gone)')).toEqual(['hookline_attempts_total', 'other_total', 'gone']);
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[5m])))')).toEqual(['x_seconds_bucket']);
  });
});

describe('deploy/grafana and deploy/prometheus', () => {
  let stack: Stack;
  let worker: WorkerHarness;
  let health: HealthServer;
  const served = { api: new Set<string>(), worker: new Set<string>() };
  const histograms = new Set<string>();

  const collect = (text: string, into: Set<string>) => {
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      into.add(name);
      if (type === 'histogram') histograms.add(name);
    }
  };

  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
    worker = await startWorkerHarness({ databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey });
    health = await startHealthServer({
      port: 0, host: '127.0.0.1', db: worker.db, redis: worker.connection, metrics: worker.metrics,
      queues: worker.delivery.queues.shards, slots: () => worker.delivery.slots(), logger: worker.logger,
    });
    collect((await request(stack.api.app).get('/metrics').expect(200)).text, served.api);
    collect(await (await fetch(`http://127.0.0.1:${health.port}/metrics`)).text(), served.worker);
  });
  afterAll(async () => {
    await health?.close();
    await worker?.close();
    await stack?.close();
  });

  it('the dashboard has the panels operators need, each with a query', () => {
    expect(dashboard.uid).toBe('hookline');
    const titles = dashboard.panels.map((p: any) => p.title as string);
    for (const title of ['Throughput', 'Attempts by outcome', 'Delivery lag', 'Accepted → delivered', 'Open circuits', 'Held deliveries', 'Retention']) {
      expect(titles.some((t: string) => t.startsWith(title))).toBe(true);
    }
    for (const panel of dashboard.panels) {
      expect(panel.targets.length).toBeGreaterThan(0);
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
    expect(dashboardExprs.join('\n')).toMatch(/histogram_quantile\(0\.99, sum by \(le\) \(rate\(hookline_event_to_delivery_seconds_bucket/);
  });

  it('the alert rules cover the lag, the failing ratio and a stuck relay', () => {
    const rules = alerts.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining(['HooklineDeliveryLagHigh', 'HooklineAttemptsFailingRatioHigh', 'HooklineRelayStuck']));
    for (const rule of rules) {
      expect(rule.for).toMatch(/^\d+m$/);
      expect(['info', 'warning', 'critical']).toContain(rule.labels?.severity);
    }
  });

  it.each([
    ['deploy/grafana/hookline.json', () => dashboardExprs],
    ['deploy/prometheus/alerts.yml', () => alertExprs],
  ])('every metric %s queries is served by /metrics of the API or the worker', (_file, exprs) => {
    const referenced = [...new Set(exprs().flatMap(metricNames))].map((name) => baseName(name, histograms));
    expect(referenced.length).toBeGreaterThanOrEqual(4);
    const missing = referenced.filter((name) => !served.api.has(name) && !served.worker.has(name));
    expect(missing).toEqual([]);
  });

  it('the autoscaling signals come from where they are computed: the lag from both, the busy slots from the worker only', () => {
    expect(served.api.has('hookline_delivery_lag_seconds') && served.worker.has('hookline_delivery_lag_seconds')).toBe(true);
    expect(served.worker.has('hookline_worker_slots_busy_ratio')).toBe(true);
    expect(served.api.has('hookline_worker_slots_busy_ratio')).toBe(false);
  });
});
