import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { call as callOnce } from './http';
import { createStack, type Stack } from './stack';

// Issue #23, point 3: can one account's webhook filters slow another account's
// publishing? Publishes of every account share one batch and one match
// statement (apps/api/src/services/event-publisher.ts), so the cost of matching
// one account's events against its filters lands on everyone in the batch.
//
// Run: npx tsx scripts/bench/filter-cost.ts   (the API as its production process,
// on this machine's PostgreSQL and Redis; no worker: nothing here is delivered)
//
// - "light": an account with one webhook and no filter, publishing one event at
//   a time; its latency is what is measured.
// - "heavy": an account with 100 webhooks whose filters hold as many values as
//   MAX_FILTER_VALUES_PER_ACCOUNT allows (2,000: 20 entries of 1 value each, the
//   most paths to look up), and 40 clients publishing events whose data matches
//   19 of the 20 paths and lacks the last, so every entry of every webhook is
//   compared and no delivery is written: pure matching cost.
// - "uncapped": the same, with filters the cap now refuses, written into the
//   database directly: 100 webhooks × 20 entries × 100 values (200,000), the data
//   matching each entry's last value (the security pass's case).
// And the match statement alone for one heavy event, before (the array expanded
// row by row) and after (containment), from psql's EXPLAIN ANALYZE timing.

/** A keep-alive socket the server closed under a request is retried once (a publish sent twice costs nothing here). */
const call: typeof callOnce = (...args) => callOnce(...args).catch((err: NodeJS.ErrnoException) => {
  if (err.code !== 'ECONNRESET') throw err;
  return callOnce(...args);
});

const HEAVY_CLIENTS = Number(process.env.HEAVY_CLIENTS ?? 40);
const SAMPLES = Number(process.env.SAMPLES ?? 200);
const WEBHOOKS = 100;
const ENTRIES = 20;

type Stats = { median: number; p95: number; mean: number; n: number };
const stats = (values: number[]): Stats => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { median: at(0.5), p95: at(0.95), mean: values.reduce((a, b) => a + b, 0) / values.length, n: values.length };
};
const ms = (v: number) => `${v.toFixed(1)} ms`;

async function platform(stack: Stack, path: string, body: unknown) {
  const res = await call(stack.port, 'POST', path, body, stack.token);
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function integrator(stack: Stack, name: string): Promise<{ accountId: string; key: string }> {
  const { account } = await platform(stack, '/internal/v1/accounts', { name, plan: 'pro' });
  const { api_key } = await platform(stack, `/internal/v1/accounts/${account.id}/api-keys`, { mode: 'test' });
  return { accountId: account.id, key: api_key.key };
}

async function createWebhook(stack: Stack, key: string, i: number, filter: Record<string, unknown> | null): Promise<void> {
  const res = await call(stack.port, 'POST', '/v1/webhooks', { url: `https://hooks.example.com/${i}`, events: ['quota.warning'], filter }, key);
  if (res.status !== 201) throw new Error(`webhook ${i}: ${res.status} ${JSON.stringify(res.body)}`);
}

const path = (e: number) => `p${String(e).padStart(2, '0')}`;

async function publish(stack: Stack, accountId: string, data: Record<string, unknown>): Promise<number> {
  const started = performance.now();
  const res = await call(stack.port, 'POST', '/internal/v1/events', { account_id: accountId, event: 'quota.warning', data }, stack.token);
  if (res.status !== 202) throw new Error(`publish: ${res.status} ${JSON.stringify(res.body)}`);
  return performance.now() - started;
}

async function measureLight(stack: Stack, light: string, samples = SAMPLES): Promise<Stats> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) times.push(await publish(stack, light, { usage: 8000, limit: 10000, seq: i }));
  return stats(times);
}

/** The light account's latency while HEAVY_CLIENTS publish the heavy account's events without pause. */
async function underLoad(stack: Stack, light: string, heavy: string, heavyData: Record<string, unknown>, samples = SAMPLES): Promise<{ light: Stats; heavy: Stats }> {
  let running = true;
  const heavyTimes: number[] = [];
  const loops = Array.from({ length: HEAVY_CLIENTS }, async () => {
    while (running) heavyTimes.push(await publish(stack, heavy, heavyData));
  });
  await new Promise((r) => setTimeout(r, 2_000));
  heavyTimes.length = 0;
  const lightStats = await measureLight(stack, light, samples);
  running = false;
  await Promise.all(loops);
  return { light: lightStats, heavy: stats(heavyTimes) };
}

// The match statement's filter clause before and after this change, for one item.
const FILTER_BEFORE = `NOT EXISTS (SELECT 1 FROM jsonb_each(w.filter) f WHERE NOT EXISTS (
  SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(f.value) = 'array' THEN f.value ELSE jsonb_build_array(f.value) END) v
   WHERE v.value = jsonb_extract_path($2::jsonb, VARIADIC string_to_array(f.key, '.'))))`;
const FILTER_AFTER = `NOT EXISTS (SELECT 1 FROM jsonb_each(w.filter) f
  CROSS JOIN LATERAL (SELECT jsonb_extract_path($2::jsonb, VARIADIC string_to_array(f.key, '.')) AS value) d
  WHERE d.value IS NULL OR NOT (CASE WHEN jsonb_typeof(f.value) = 'array' THEN f.value ELSE jsonb_build_array(f.value) END) @> jsonb_build_array(d.value))`;

async function statementMs(db: Client, accountId: string, data: Record<string, unknown>, clause: string): Promise<number> {
  const sql = `SELECT count(*) FROM webhooks w WHERE w.account_id = $1 AND w.deleted_at IS NULL AND ${clause}`;
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const started = performance.now();
    await db.query(sql, [accountId, JSON.stringify(data)]);
    times.push(performance.now() - started);
  }
  return stats(times).median;
}

async function main(): Promise<void> {
  const stack = await createStack({
    concurrency: 1, env: { RATE_LIMIT_PER_MINUTE: '100000000' }, reasons: { RATE_LIMIT_PER_MINUTE: 'the heavy account\'s 2,000 filter values are set up through one API key' },
  });
  const db = new Client({ connectionString: stack.env.DATABASE_URL });
  try {
    await stack.startApi();
    await db.connect();
    const light = await integrator(stack, 'light');
    await createWebhook(stack, light.key, 0, null);
    const heavy = await integrator(stack, 'heavy');

    // At the cap, through the API (which is what enforces it): 100 × 20 entries × 1 value.
    const cappedFilter = Object.fromEntries(Array.from({ length: ENTRIES }, (_, e) => [path(e), [`v${e}`]]));
    for (let i = 0; i < WEBHOOKS; i++) await createWebhook(stack, heavy.key, i, cappedFilter);
    const over = await call(stack.port, 'POST', '/v1/webhooks', { url: 'https://hooks.example.com/over', events: ['quota.warning'], filter: { x: 1 } }, heavy.key);
    process.stdout.write(`heavy account at 2,000 filter values; one more: ${over.status} ${over.body?.error?.code ?? ''}\n`);
    const cappedData = { usage: 1, limit: 2, ...Object.fromEntries(Array.from({ length: ENTRIES - 1 }, (_, e) => [path(e), `v${e}`])) };

    // What the cap refuses, written directly: 100 × 20 entries × 100 values.
    const uncapped = await integrator(stack, 'uncapped');
    for (let i = 0; i < WEBHOOKS; i++) await createWebhook(stack, uncapped.key, i, null);
    const bigFilter = Object.fromEntries(Array.from({ length: ENTRIES }, (_, e) => [path(e), Array.from({ length: 100 }, (_, v) => `v${e}-${v}`)]));
    await db.query('UPDATE webhooks SET filter = $2::jsonb WHERE account_id = $1', [uncapped.accountId, JSON.stringify(bigFilter)]);
    const uncappedData = { usage: 1, limit: 2, ...Object.fromEntries(Array.from({ length: ENTRIES - 1 }, (_, e) => [path(e), `v${e}-99`])) };

    // Sanity: heavy events match nothing (pure matching cost).
    const probe = await call(stack.port, 'POST', '/internal/v1/events', { account_id: heavy.accountId, event: 'quota.warning', data: cappedData }, stack.token);
    if (probe.body?.event?.deliveries !== 0) throw new Error(`heavy events must match no webhook: ${JSON.stringify(probe.body)}`);

    process.stdout.write('\nthe match statement alone, one event against the account\'s 100 webhooks (median of 7):\n');
    for (const [label, account, data] of [['2,000 values (the cap)', heavy.accountId, cappedData], ['200,000 values (uncapped)', uncapped.accountId, uncappedData]] as const) {
      const before = await statementMs(db, account, data, FILTER_BEFORE);
      const after = await statementMs(db, account, data, FILTER_AFTER);
      process.stdout.write(`  ${label.padEnd(26)} before ${ms(before).padStart(10)}   after ${ms(after).padStart(10)}\n`);
    }

    await measureLight(stack, light.accountId); // warm-up
    const baseline = await measureLight(stack, light.accountId);
    const capped = await underLoad(stack, light.accountId, heavy.accountId, cappedData);
    // Fewer samples: each may take seconds here.
    const unbounded = await underLoad(stack, light.accountId, uncapped.accountId, uncappedData, Math.min(SAMPLES, 40));
    const after = await measureLight(stack, light.accountId);

    process.stdout.write(`\nanother account's publish latency (sequential publishes; ${HEAVY_CLIENTS} clients publishing the heavy account's events meanwhile):\n`);
    const row = (label: string, s: Stats, extra = '') =>
      process.stdout.write(`  ${label.padEnd(40)} n ${String(s.n).padStart(3)}  median ${ms(s.median).padStart(9)}  p95 ${ms(s.p95).padStart(9)}  ×${(s.median / baseline.median).toFixed(2)} of baseline${extra}\n`);
    row('baseline (no other load)', baseline);
    row('heavy account at the cap (2,000 values)', capped.light, `   (heavy publishes: median ${ms(capped.heavy.median)}, ${capped.heavy.n} in the window)`);
    row('uncapped filters (200,000 values)', unbounded.light, `   (heavy publishes: median ${ms(unbounded.heavy.median)}, ${unbounded.heavy.n} in the window)`);
    row('baseline again, after', after);
    const ratio = capped.light.median / baseline.median;
    process.stdout.write(`\nverdict: at the cap, another account's median publish is ×${ratio.toFixed(2)} of its baseline (target: within ×2): ${ratio <= 2 ? 'met' : 'NOT met'}\n`);
  } finally {
    await db.end().catch(() => undefined);
    await stack.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`filter-cost: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
