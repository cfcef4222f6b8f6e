import request from 'supertest';
import { createLogger } from '@hookline/config';
import { publishEvent } from '../../../tests/support/publish-event';
import { createMetrics } from '@hookline/metrics';
import { enqueueDeliveries } from '@hookline/queue';
import { DUE_SQL, WAITING_SQL } from '../src/delivery-store';
import { startRelay, type RelayDeps } from '../src/relay';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';

// The relay scans overdue deliveries a batch at a time. Under a backlog larger
// than a batch, a lost job must not hide behind healthy ones that sort first.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h.close());

/** A relay on the harness that ticks only when the test says (runOnce). */
const relayWith = (opts: Partial<RelayDeps> & { graceMs: number }) => startRelay({
  db: h.database.db,
  queues: h.queues,
  logger: createLogger({ level: 'error', service: 'relay-test', silent: true }),
  metrics: createMetrics({ app: 'relay-test', defaultMetrics: false }),
  intervalMs: 3_600_000,
  ...opts,
});

it('finds lost jobs behind a full batch of healthy ones within a few ticks', async () => {
  const { accountId, auth } = await h.integrator();
  for (let i = 0; i < 5; i++) {
    expect((await request(h.app).post('/v1/webhooks').set(auth).send({ url: `https://example.com/relay/${i}`, events: ['quota.warning'] })).status).toBe(201);
  }
  const { deliveryIds } = await publishEvent(h.database.db.prisma, { accountId, event: 'quota.warning', parserId: null, data: {} });
  expect(deliveryIds).toHaveLength(5);
  // All overdue, in a known order; the two oldest still have their (delayed) jobs in Redis.
  for (const [i, id] of deliveryIds.entries()) {
    await h.database.db.sql.query(`UPDATE deliveries SET next_attempt_at = now() - interval '10 minutes' + ($2 || ' seconds')::interval WHERE id = $1`, [id, String(i)]);
  }
  const [healthy, lost] = [deliveryIds.slice(0, 2), deliveryIds.slice(2)];
  await enqueueDeliveries(h.queue, healthy, { delayMs: 3_600_000 });

  const relay = relayWith({ graceMs: 0, batchSize: 2 });
  try {
    let relayed = 0;
    for (let tick = 0; tick < 4; tick++) relayed += (await relay.runOnce()) ?? 0;
    expect(relayed).toBe(3);
    for (const id of lost) expect(await h.queue.getJobState(id)).toBe('prioritized');
    for (const id of healthy) expect(await h.queue.getJobState(id)).toBe('delayed');
  } finally {
    await relay.stop();
  }
});

it('scans the waiting set on its index, in scan order', async () => {
  const plan = await h.database.db.sql.withSession(async (sql) => {
    // On the test's near-empty table any plan is cheap: these ask whether the index serves the scan in its order.
    await sql.exec('SET enable_seqscan = off; SET enable_bitmapscan = off');
    try {
      const rows = await sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${DUE_SQL}`, [0, 100, null, null]);
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      await sql.exec('RESET enable_seqscan; RESET enable_bitmapscan');
    }
  });
  expect(plan).toMatch(/Index Scan using waiting_deliveries_next_attempt_at_id_idx on waiting_deliveries/);
  expect(plan).not.toMatch(/Seq Scan/);
  expect(plan).not.toMatch(/(^|->\s+)Sort\b/m);
  expect(plan).not.toMatch(/\bdeliveries_/);
});

it('refills an emptied queue: every waiting delivery whose job is gone, due or not, in batches, while RELAY_GRACE would still wait', async () => {
  const { accountId, auth } = await h.integrator();
  for (let i = 0; i < 7; i++) {
    expect((await request(h.app).post('/v1/webhooks').set(auth).send({ url: `https://example.com/refill/${i}`, events: ['quota.warning'] })).status).toBe(201);
  }
  const { deliveryIds } = await publishEvent(h.database.db.prisma, { accountId, event: 'quota.warning', parserId: null, data: {} });
  expect(deliveryIds).toHaveLength(7);
  // Just due, or retries due in an hour: none is RELAY_GRACE overdue. Two still have their jobs.
  for (const [i, id] of deliveryIds.entries()) {
    await h.database.db.sql.query(
      i % 2 ? `UPDATE deliveries SET status = 'pending_retry', attempt_count = 1, next_attempt_at = now() + interval '1 hour' WHERE id = $1` : `UPDATE deliveries SET next_attempt_at = now() WHERE id = $1`,
      [id],
    );
  }
  const [kept, lost] = [deliveryIds.slice(0, 2), deliveryIds.slice(2)];
  await enqueueDeliveries(h.queue, kept, { delayMs: 3_600_000 });

  const relay = relayWith({ graceMs: 30_000, refillBatchSize: 2 });
  try {
    expect(await relay.runOnce()).toBe(0);
    expect(await relay.refill()).toBe(lost.length);
    for (const id of lost) expect(['prioritized', 'waiting']).toContain(await h.queue.getJobState(id));
    for (const id of kept) expect(await h.queue.getJobState(id)).toBe('delayed');
    // A second refill finds every job in place.
    expect(await relay.refill()).toBe(0);
  } finally {
    await relay.stop();
  }
});

it('refills through the same index, in scan order', async () => {
  const plan = await h.database.db.sql.withSession(async (sql) => {
    // On the test's near-empty table any plan is cheap: these ask whether the index serves the scan in its order.
    await sql.exec('SET enable_seqscan = off; SET enable_bitmapscan = off');
    try {
      const rows = await sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${WAITING_SQL}`, [100, null, null]);
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      await sql.exec('RESET enable_seqscan; RESET enable_bitmapscan');
    }
  });
  expect(plan).toMatch(/Index Scan using waiting_deliveries_next_attempt_at_id_idx on waiting_deliveries/);
  expect(plan).not.toMatch(/Seq Scan/);
  expect(plan).not.toMatch(/(^|->\s+)Sort\b/m);
});

it('vacuums the waiting set while it holds the lock: the rows of ended deliveries are given back', async () => {
  // Autovacuum off for the table: it must not tidy first, nor hold the table when the relay's vacuum (SKIP_LOCKED) comes.
  await h.database.db.sql.exec('ALTER TABLE waiting_deliveries SET (autovacuum_enabled = false)');
  const { accountId, auth } = await h.integrator();
  expect((await request(h.app).post('/v1/webhooks').set(auth).send({ url: 'https://example.com/tidy', events: ['quota.warning'] })).status).toBe(201);
  const ids: string[] = [];
  for (let i = 0; i < 300; i++) ids.push(...(await publishEvent(h.database.db.prisma, { accountId, event: 'quota.warning', parserId: null, data: { i } })).deliveryIds);
  await h.database.db.sql.query(`UPDATE deliveries SET status = 'succeeded', next_attempt_at = NULL WHERE id = ANY($1::text[])`, [ids]);
  // Every other test's deliveries end too: what is left of the table is dead rows only.
  await h.database.db.sql.query(`UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL WHERE status IN ('pending', 'pending_retry')`);
  const size = async () => Number((await h.database.db.sql.query<{ n: string }>(`SELECT pg_relation_size('waiting_deliveries') AS n`))[0].n);
  expect(await size()).toBeGreaterThan(8_192);

  const relay = (tidyEveryMs: number) => relayWith({ graceMs: 0, tidyEveryMs });
  const notYet = relay(3_600_000);
  try {
    await notYet.runOnce();
    expect(await size()).toBeGreaterThan(8_192);
  } finally {
    await notYet.stop();
  }
  const due = relay(0);
  try {
    await due.runOnce();
    expect(await size()).toBe(0);
  } finally {
    await due.stop();
  }
});
