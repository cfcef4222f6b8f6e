import type request from 'supertest';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { insertWebhook, listen } from './support/pipeline-fixtures';

// POST /internal/v1/events under concurrency, over the real app, PostgreSQL and
// Redis: concurrent requests share statements, yet each answer is its own
// (202 with its event and delivery count, 404 for an unknown account, 400 for
// text PostgreSQL cannot store) and matches what was committed and enqueued.

let h: ApiHarness;
const inserts: number[] = [];

beforeAll(async () => {
  h = await startApiHarness();
  // A pass-through that records how many events each INSERT statement carried.
  const sql = h.deps.db.sql;
  const query = sql.query.bind(sql);
  sql.query = ((text: string, params?: unknown[]) => {
    if (/INSERT INTO events/.test(text)) inserts.push((JSON.parse(params![0] as string) as unknown[]).length);
    return query(text, params);
  });
});

afterAll(async () => {
  await h?.close();
});

type Send = { kind: 'ok' | 'unknown' | 'nul'; accountId: string; parserId: string | null; expected: number };

async function fixtures() {
  const a = await h.integrator();
  const b = await h.integrator();
  await insertWebhook(h, a.accountId, { events: ['quota.warning'] });
  await insertWebhook(h, a.accountId, { events: ['quota.warning'], parserId: 'p1' });
  await insertWebhook(h, b.accountId, { events: ['quota.warning', 'quota.exceeded'] });
  await insertWebhook(h, b.accountId, { events: ['quota.warning'], isActive: false });
  return { a: a.accountId, b: b.accountId };
}

/** Sends every request at once over one live server, then checks each answer against what was committed and enqueued. */
async function raceAndCheck(sends: Send[]): Promise<void> {
  const accounts = [...new Set(sends.filter((s) => s.kind !== 'unknown').map((s) => s.accountId))];
  const acceptedBefore = (await h.deps.metrics.eventsAccepted.get()).values.find((v) => v.labels.event === 'quota.warning')?.value ?? 0;

  const live = await listen(h);
  let answers: request.Response[];
  try {
    answers = await Promise.all(
      sends.map((s, seq) =>
        live.agent
          .post('/internal/v1/events')
          .set({ Authorization: `Bearer ${h.platformToken}` })
          .send({ account_id: s.accountId, event: 'quota.warning', parser_id: s.parserId, data: s.kind === 'nul' ? { usage: seq, limit: 100, note: 'a\u0000b', seq } : { usage: seq, limit: 100, seq } }),
      ),
    );
  } finally {
    await live.close();
  }

  const ids = new Set<string>();
  for (const [i, s] of sends.entries()) {
    const res = answers[i];
    if (s.kind === 'unknown') {
      expect(res.status).toBe(404);
      expect(res.body.error).toEqual({ code: 'RESOURCE_NOT_FOUND', message: `No such account: ${s.accountId}. Create it first with POST /internal/v1/accounts.` });
      continue;
    }
    if (s.kind === 'nul') {
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_PAYLOAD');
      expect(res.body.error.message).toMatch(/NUL character.*send the event again/);
      continue;
    }
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ event: { id: expect.stringMatching(/^evt_/), event: 'quota.warning', deliveries: s.expected } });
    ids.add(res.body.event.id);
    // What the answer says is what was committed: its own event, with its own data and deliveries, each with its job.
    const event = await h.deps.db.prisma.event.findUniqueOrThrow({ where: { id: res.body.event.id }, include: { deliveries: true } });
    expect(event).toEqual(expect.objectContaining({ accountId: s.accountId, parserId: s.parserId, data: { usage: i, limit: 100, seq: i } }));
    expect(event.deliveries).toHaveLength(s.expected);
    for (const d of event.deliveries) expect((await h.queue.getJob(d.id))?.data).toEqual({ deliveryId: d.id });
  }
  const okCount = sends.filter((s) => s.kind === 'ok').length;
  expect(ids.size).toBe(okCount);

  // Refused requests left nothing behind.
  expect(await h.deps.db.prisma.event.count({ where: { accountId: { in: accounts } } })).toBe(okCount);
  expect(await h.deps.db.prisma.event.count({ where: { accountId: { startsWith: 'acct_missing' } } })).toBe(0);
  const acceptedAfter = (await h.deps.metrics.eventsAccepted.get()).values.find((v) => v.labels.event === 'quota.warning')?.value ?? 0;
  expect(acceptedAfter - acceptedBefore).toBe(okCount);
}

const good = (i: number, a: string, b: string): Send => {
  if (i % 3 === 0) return { kind: 'ok', accountId: a, parserId: null, expected: 2 };
  if (i % 3 === 1) return { kind: 'ok', accountId: a, parserId: 'p2', expected: 1 };
  return { kind: 'ok', accountId: b, parserId: null, expected: 1 };
};

it('answers 120 racing publishes each on its own, in shared statements', async () => {
  const { a, b } = await fixtures();
  const sends = Array.from({ length: 120 }, (_, i): Send => (i % 12 === 5 ? { kind: 'unknown', accountId: `acct_missing${i}`, parserId: null, expected: 0 } : good(i, a, b)));
  inserts.length = 0;

  await raceAndCheck(sends);

  // Requests shared statements: fewer INSERTs than requests, some carrying several events.
  expect(inserts.length).toBeLessThan(sends.length);
  expect(Math.max(...inserts)).toBeGreaterThan(1);
});

it('fails only the requests PostgreSQL cannot store when they race with others', async () => {
  const { a, b } = await fixtures();
  const sends = Array.from({ length: 60 }, (_, i): Send => (i % 6 === 1 ? { kind: 'nul', accountId: a, parserId: null, expected: 0 } : good(i, a, b)));
  await raceAndCheck(sends);
});

it('answers a lone request at once, without waiting for company', async () => {
  const { accountId } = await h.integrator();
  await insertWebhook(h, accountId, { events: ['quota.exceeded'] });
  const started = Date.now();
  const res = await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.exceeded', data: { usage: 101, limit: 100 } });
  expect(res.status).toBe(202);
  expect(res.body.event.deliveries).toBe(1);
  expect(Date.now() - started).toBeLessThan(1_000);
});
