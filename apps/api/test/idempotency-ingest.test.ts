import { createHash } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import type { SqlRunner } from '@hookline/db';
import { createEventPublisher } from '../src/services/event-publisher';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { waitUntil } from '../../../tests/support/wait-until';

// Idempotency-Key on the platform's hot paths (docs/api.md#pagination-and-idempotency):
// POST /internal/v1/events records the key inside the outbox's own statements
// (no statement of its own), a document report inside its own transaction; the
// first answer is replayed, another body is a 409, and racing requests with one
// key write one event. Every other route claims its key for IDEMPOTENCY_LEASE.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h.close());

const QUOTA = 'quota.warning';
const quota = (accountId: string, usage = 80) => ({ account_id: accountId, event: QUOTA, data: { usage, limit: 100 } });
const publish = (body: object, key?: string) => {
  const req = h.platform.post('/internal/v1/events', body);
  return key === undefined ? req : req.set('Idempotency-Key', key);
};

async function accountWithHook(): Promise<string> {
  const { accountId, auth } = await h.integrator();
  const created = await request(h.app).post('/v1/webhooks').set(auth).send({ url: 'https://example.com/hook', events: [QUOTA] });
  expect(created.status).toBe(201);
  return accountId;
}

const eventsOf = (accountId: string) => h.database.db.prisma.event.count({ where: { accountId } });
// By the webhook's account: a delivery's own copy is NULL in the compact history.
const deliveriesOf = (accountId: string) => h.database.db.prisma.delivery.count({ where: { webhook: { accountId } } });
const recordOf = async (key: string) =>
  (await h.database.db.sql.query<{ status: number; expires: Date; created: Date }>(
    `SELECT response_status AS status, expires_at AS expires, created_at AS created FROM idempotency_records WHERE scope = $1`,
    [`platform:POST /internal/v1/events:${key}`],
  ))[0];

/** The statements a publisher sends, counted on the way to the real database. */
function countingSql(sql: SqlRunner): SqlRunner & { count: number } {
  const counting = {
    count: 0,
    query: <T>(text: string, params?: unknown[]) => {
      counting.count++;
      return sql.query<T>(text, params);
    },
    exec: (text: string) => sql.exec(text),
    withSession: <T>(fn: (s: SqlRunner) => Promise<T>) => sql.withSession(fn),
  };
  return counting;
}

describe('POST /internal/v1/events with Idempotency-Key', () => {
  it('stores the answer as it is (no secret in it, a third of the sealed size) and still replays one a previous version sealed', async () => {
    const accountId = await accountWithHook();
    const first = await publish(quota(accountId), 'evt-plain');
    expect(first.status).toBe(202);
    const [stored] = await h.database.db.sql.query<{ body: unknown }>(
      'SELECT response_body AS body FROM idempotency_records WHERE scope = $1', ['platform:POST /internal/v1/events:evt-plain']);
    expect(stored.body).toEqual(first.body);

    // The previous version sealed every stored answer: such a row replays the same.
    const sealedKey = 'evt-sealed-by-previous-version';
    const sent = await publish(quota(accountId, 81), sealedKey);
    await h.database.db.sql.query(
      `UPDATE idempotency_records SET response_body = $2::jsonb WHERE scope = $1`,
      [`platform:POST /internal/v1/events:${sealedKey}`, JSON.stringify({ sealed: h.deps.secretBox.encrypt(JSON.stringify(sent.body)) })],
    );
    const replayed = await publish(quota(accountId, 81), sealedKey);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.body).toEqual(sent.body);
  });

  it('writes the event and its answer together; the same key and body replays it; another body is a 409', async () => {
    const accountId = await accountWithHook();
    const first = await publish(quota(accountId), 'evt-key-1');
    expect(first.status).toBe(202);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(first.body).toEqual({ event: { id: expect.stringMatching(/^evt_/), event: QUOTA, deliveries: 1 } });

    // The row holds the answer from the start (no placeholder), kept for 24 h.
    const row = await recordOf('evt-key-1');
    expect(row.status).toBe(202);
    expect(row.expires.getTime() - row.created.getTime()).toBe(24 * 3_600_000);

    const again = await publish(quota(accountId), 'evt-key-1');
    expect(again.status).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);

    const other = await publish(quota(accountId, 99), 'evt-key-1');
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(other.body.error.message).toMatch(/different request body/);

    expect(await eventsOf(accountId)).toBe(1);
    expect(await deliveriesOf(accountId)).toBe(1);
  });

  it('concurrent requests with one key write one event: every answer for the same body is that event', async () => {
    const accountId = await accountWithHook();
    const results = await Promise.all(Array.from({ length: 12 }, () => publish(quota(accountId), 'evt-race')));
    for (const res of results) expect(res.status).toBe(202);
    expect(new Set(results.map((r) => r.body.event.id)).size).toBe(1);
    expect(results.filter((r) => r.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
    expect(await eventsOf(accountId)).toBe(1);

    // Racing with different bodies: one wins, the others are refused.
    const mixed = await Promise.all([1, 2, 3, 4, 5, 6].map((usage) => publish(quota(accountId, usage), 'evt-race-2')));
    expect(mixed.filter((r) => r.status === 202)).toHaveLength(1);
    for (const res of mixed.filter((r) => r.status !== 202)) expect(res.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(await eventsOf(accountId)).toBe(2);
  });

  it('keys are per principal and route: the same key on another route or with no key at all is independent', async () => {
    const accountId = await accountWithHook();
    expect((await publish(quota(accountId), 'shared')).status).toBe(202);
    const account = await h.platform.post('/internal/v1/accounts', { name: 'Other' }).set('Idempotency-Key', 'shared');
    expect(account.status).toBe(201);
    expect((await publish(quota(accountId))).status).toBe(202);
    expect((await publish(quota(accountId))).status).toBe(202);
    expect(await eventsOf(accountId)).toBe(3);
  });

  it('an expired key is taken over in place: the request runs again, with no sweep needed first', async () => {
    const accountId = await accountWithHook();
    const first = await publish(quota(accountId), 'evt-expired');
    await h.database.db.sql.query(`UPDATE idempotency_records SET expires_at = now() - interval '1 second' WHERE scope = $1`, ['platform:POST /internal/v1/events:evt-expired']);
    const second = await publish(quota(accountId, 1), 'evt-expired');
    expect(second.status).toBe(202);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(second.body.event.id).not.toBe(first.body.event.id);
    expect(await eventsOf(accountId)).toBe(2);
    expect((await recordOf('evt-expired')).status).toBe(202);
  });

  it('an unknown account with a key stores nothing: the key is free once the account exists', async () => {
    const res = await publish(quota('acct_nobody'), 'evt-no-account');
    expect(res.status).toBe(404);
    expect(await recordOf('evt-no-account')).toBeUndefined();
  });

  it('a key costs no statement of its own: two statements per publish (once the lane is known), one for a replay', async () => {
    const accountId = await accountWithHook();
    const sql = countingSql(h.deps.db.sql);
    const publisher = createEventPublisher({ ...h.deps, db: { ...h.deps.db, sql } }, { maxInFlight: 1 });
    const event = { accountId, event: QUOTA, parserId: null, data: { usage: 1, limit: 2 } } as const;

    // The account's first publish also reads its filter cost (which lane it publishes in), cached after.
    await publisher.publish(event);
    expect(sql.count).toBe(3);
    sql.count = 0;
    await publisher.publish(event);
    expect(sql.count).toBe(2);
    sql.count = 0;
    const key = { scope: `test:count:${accountId}`, requestHash: 'h1' };
    const written = await publisher.publish({ ...event, key });
    expect(written.keyTaken).toBeUndefined();
    expect(sql.count).toBe(2);
    sql.count = 0;
    const replayed = await publisher.publish({ ...event, key });
    expect(replayed.keyTaken).toEqual(expect.objectContaining({ requestHash: 'h1', responseStatus: 202 }));
    expect(sql.count).toBe(1);
  });

  it('a racing request that commits the key between the two statements wins: this one writes nothing and answers its row', async () => {
    const accountId = await accountWithHook();
    const scope = `platform:POST /internal/v1/events:evt-between`;
    const body = quota(accountId);
    const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    // Another API process's statement, caught mid-transaction: its row is not committed yet.
    const other = new Client({ connectionString: h.database.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO idempotency_records (scope, request_hash, response_status, response_body, expires_at) VALUES ($1, $2, 202, $3, now() + interval '1 hour')`,
        [scope, hash, JSON.stringify({ event: { id: 'evt_fromtheotherone', event: QUOTA, deliveries: 1 } })],
      );
      const pending = publish(body, 'evt-between').then((res) => res);
      // This request read no row, and now waits on the other's uncommitted one.
      await waitForLockWait(h.database.url);
      await other.query('COMMIT');
      const res = await pending;
      expect(res.status).toBe(202);
      expect(res.headers['idempotent-replayed']).toBe('true');
      expect(res.body.event.id).toBe('evt_fromtheotherone');
      expect(await eventsOf(accountId)).toBe(0);
      expect(await deliveriesOf(accountId)).toBe(0);
    } finally {
      await other.end();
    }
  });
});

/** Until some backend of this database waits on a lock (the publish blocked on the uncommitted key). */
async function waitForLockWait(url: string): Promise<void> {
  const probe = new Client({ connectionString: url });
  await probe.connect();
  try {
    await waitUntil(async () => {
      const [row] = (await probe.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows;
      return row.n > 0;
    }, 'the publish waiting on the uncommitted key', { timeoutMs: 5_000 });
  } finally {
    await probe.end();
  }
}

describe('document reports with Idempotency-Key', () => {
  async function extraction(accountId: string, documentCount = 2): Promise<string> {
    const res = await h.platform.post('/internal/v1/extractions', { account_id: accountId, document_count: documentCount });
    expect(res.status).toBe(201);
    return res.body.extraction.extraction_id as string;
  }
  const reportDoc = (ext: string, doc: string, key: string, body: object = { status: 'completed', result: { ok: true } }) =>
    h.platform.post(`/internal/v1/extractions/${ext}/documents/${doc}`, body).set('Idempotency-Key', key);

  it('records the key in the report transaction: a replay answers the first report, another body is a 409', async () => {
    const accountId = await accountWithHook();
    const ext = await extraction(accountId);
    const first = await reportDoc(ext, 'doc-1', 'rep-1');
    expect(first.status).toBe(202);
    expect(first.body.duplicate).toBe(false);
    const [row] = await h.database.db.sql.query<{ status: number }>(`SELECT response_status AS status FROM idempotency_records WHERE scope LIKE $1`, [`platform:POST /internal/v1/extractions/${ext}/documents/doc-1:rep-1`]);
    expect(row.status).toBe(202);

    const again = await reportDoc(ext, 'doc-1', 'rep-1');
    expect(again.status).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);

    const other = await reportDoc(ext, 'doc-1', 'rep-1', { status: 'failed', error: 'nope' });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(await h.database.db.prisma.event.count({ where: { accountId, event: 'extraction.document_completed' } })).toBe(1);
  });

  it('racing reports with one key emit once, and all get the first answer', async () => {
    const accountId = await accountWithHook();
    const ext = await extraction(accountId, 1);
    const results = await Promise.all(Array.from({ length: 6 }, () => reportDoc(ext, 'only', 'rep-race')));
    for (const res of results) expect(res.status).toBe(202);
    const fresh = results.filter((r) => r.headers['idempotent-replayed'] !== 'true');
    expect(fresh).toHaveLength(1);
    for (const res of results) expect(res.body).toEqual(fresh[0].body);
    expect(await h.database.db.prisma.event.count({ where: { accountId } })).toBe(3);
  });

  it('a report that fails (unknown extraction) stores nothing: the key can be used once the extraction exists', async () => {
    const accountId = await accountWithHook();
    const missing = await reportDoc('ext_notyetthere', 'd', 'rep-later');
    expect(missing.status).toBe(404);
    expect((await h.database.db.sql.query(`SELECT 1 FROM idempotency_records WHERE scope LIKE '%:rep-later'`)).length).toBe(0);
    const created = await h.platform.post('/internal/v1/extractions', { account_id: accountId, extraction_id: 'ext_notyetthere', document_count: 1 });
    expect(created.status).toBe(201);
    expect((await reportDoc('ext_notyetthere', 'd', 'rep-later')).status).toBe(202);
  });
});

describe('the lease of a claimed key (every other POST)', () => {
  const scope = (key: string) => `platform:POST /internal/v1/accounts:${key}`;
  const createAccount = (key: string, name = 'Leased') => h.platform.post('/internal/v1/accounts', { name }).set('Idempotency-Key', key);

  it('a claim whose request never answered blocks its key with 409 until the lease ends, then the retry runs', async () => {
    const body = { name: 'Leased' };
    const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    // What a request that died between claim and answer leaves behind.
    await h.database.db.sql.query(`INSERT INTO idempotency_records (scope, request_hash, response_status, expires_at) VALUES ($1, $2, 0, now() + interval '1 hour')`, [scope('died'), hash]);
    const blocked = await createAccount('died');
    expect(blocked.status).toBe(409);
    expect(blocked.body.error.message).toMatch(/still being processed/);

    await h.database.db.sql.query(`UPDATE idempotency_records SET expires_at = now() - interval '1 millisecond' WHERE scope = $1`, [scope('died')]);
    const retried = await createAccount('died');
    expect(retried.status).toBe(201);
    const [row] = await h.database.db.sql.query<{ status: number; ttl: number }>(
      `SELECT response_status AS status, extract(epoch FROM expires_at - now())::int AS ttl FROM idempotency_records WHERE scope = $1`,
      [scope('died')],
    );
    expect(row.status).toBe(201);
    expect(row.ttl).toBeGreaterThan(23 * 3600);
  });

  it('a claim lasts IDEMPOTENCY_LEASE while its request runs, and the answer then keeps it 24 h', async () => {
    const leased = await startApiHarness({ config: { IDEMPOTENCY_LEASE: 5_000 } });
    try {
      // The claim's lease is what expires_at says while the request is in flight: catch it from a trigger-free angle —
      // hold the request on the accounts table's lock, read the row, then let it go.
      const locker = new Client({ connectionString: leased.database.url });
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE');
      const pending = leased.platform.post('/internal/v1/accounts', { name: 'Slow' }).set('Idempotency-Key', 'slow').then((r) => r);
      const { ms: lease } = await waitUntil(async () => (await leased.database.db.sql.query<{ ms: number }>(
        `SELECT (extract(epoch FROM expires_at - created_at) * 1000)::int AS ms FROM idempotency_records WHERE scope = $1 AND response_status = 0`,
        [scope('slow')],
      ))[0], 'the slow request\'s claim written', { timeoutMs: 5_000 });
      await locker.query('COMMIT');
      await locker.end();
      expect(lease).toBe(5_000);
      expect((await pending).status).toBe(201);
    } finally {
      await leased.close();
    }
  });
});
