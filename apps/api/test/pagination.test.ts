import request from 'supertest';
import { encodeCursor, newId } from '@hookline/domain';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';

// GET /v1/webhooks: limit 1–100 (default 20), opaque keyset cursor on
// (created_at desc, id desc): no duplicates and no gaps while rows are inserted.

type Page = { data: { id: string; created_at: string }[]; has_more: boolean; next_cursor: string | null };

let h: ApiHarness;
let n = 0;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h.close());

async function createWebhooks(auth: { Authorization: string }, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await request(h.app).post('/v1/webhooks').set(auth).send({ url: `https://example.com/p/${++n}`, events: ['quota.warning'] });
    expect(res.status).toBe(201);
    ids.push(res.body.webhook.id);
  }
  return ids;
}

async function page(auth: { Authorization: string }, query: string): Promise<Page> {
  const res = await request(h.app).get(`/v1/webhooks${query}`).set(auth);
  expect(res.status).toBe(200);
  return res.body;
}

/** Every page until next_cursor is null; `between` runs after each page. */
async function pageAll(auth: { Authorization: string }, limit: number, between?: () => Promise<void>): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const current: Page = await page(auth, `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    pages.push(current);
    cursor = current.next_cursor;
    if (between) await between();
  } while (cursor);
  return pages;
}

const newestFirst = (a: { created_at: string; id: string }, b: { created_at: string; id: string }) =>
  b.created_at.localeCompare(a.created_at) || (b.id < a.id ? -1 : b.id > a.id ? 1 : 0);

describe('GET /v1/webhooks pagination', () => {
  it('45 webhooks come as pages of 20, 20 and 5, newest first, no duplicates', async () => {
    const account = await h.integrator();
    const created = await createWebhooks(account.auth, 45);
    const pages = await pageAll(account.auth, 20);
    expect(pages.map((p) => p.data.length)).toEqual([20, 20, 5]);
    expect(pages.map((p) => p.has_more)).toEqual([true, true, false]);
    expect(pages[2].next_cursor).toBeNull();
    const ids = pages.flatMap((p) => p.data.map((w) => w.id));
    expect(new Set(ids).size).toBe(45);
    expect(ids).toEqual([...created].reverse());
    const all = pages.flatMap((p) => p.data);
    expect([...all].sort(newestFirst)).toEqual(all);
  });

  it('defaults to 20; limit 1 and 100 work; an exact fit has no next page', async () => {
    const account = await h.integrator();
    await createWebhooks(account.auth, 21);
    const first = await page(account.auth, '');
    expect(first.data).toHaveLength(20);
    expect(first.has_more).toBe(true);
    expect(typeof first.next_cursor).toBe('string');
    const one = await page(account.auth, '?limit=1');
    expect(one.data).toHaveLength(1);
    const all = await page(account.auth, '?limit=100');
    expect(all).toMatchObject({ has_more: false, next_cursor: null });
    expect(all.data).toHaveLength(21);
    const exact = await page(account.auth, '?limit=21');
    expect(exact).toMatchObject({ has_more: false, next_cursor: null });
  });

  it('an account with no webhooks gets an empty page', async () => {
    const account = await h.integrator();
    expect(await page(account.auth, '')).toEqual({ data: [], has_more: false, next_cursor: null });
  });

  it('rows inserted while paging cause no duplicates and no gaps among the rows that existed at the start', async () => {
    const account = await h.integrator();
    const initial = await createWebhooks(account.auth, 30);
    const inserted: string[] = [];
    const pages = await pageAll(account.auth, 7, async () => {
      inserted.push(...(await createWebhooks(account.auth, 3)));
    });
    const seen = pages.flatMap((p) => p.data.map((w) => w.id));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => initial.includes(id))).toEqual([...initial].reverse());
    // Rows newer than the first page belong to a fresh listing, not to this walk.
    expect(seen.filter((id) => inserted.includes(id))).toEqual([]);
    const fresh = await page(account.auth, '?limit=100');
    expect(fresh.data.map((w) => w.id)).toEqual([...initial, ...inserted].reverse());
  });

  it('rows sharing one created_at are ordered by id and none is skipped at a page boundary', async () => {
    const account = await h.integrator();
    const at = new Date('2026-01-01T00:00:00.000Z');
    const ids = Array.from({ length: 25 }, () => newId('webhook'));
    await h.database.db.prisma.webhook.createMany({
      data: ids.map((id, i) => ({ id, accountId: account.accountId, url: `https://example.com/same/${i}`, events: ['quota.warning'], signingSecretEnc: h.deps.secretBox.encrypt('whsec_x'), createdAt: at })),
    });
    const pages = await pageAll(account.auth, 10);
    expect(pages.map((p) => p.data.length)).toEqual([10, 10, 5]);
    expect(pages.flatMap((p) => p.data.map((w) => w.id))).toEqual([...ids].sort().reverse());
  });

  it('leaves deleted webhooks out, also from later pages', async () => {
    const account = await h.integrator();
    const ids = await createWebhooks(account.auth, 6);
    const first = await page(account.auth, '?limit=3');
    for (const id of [ids[0], ids[4]]) expect((await request(h.app).delete(`/v1/webhooks/${id}`).set(account.auth)).status).toBe(204);
    const second = await page(account.auth, `?limit=3&cursor=${first.next_cursor}`);
    expect(first.data.map((w) => w.id)).toEqual([ids[5], ids[4], ids[3]]);
    expect(second.data.map((w) => w.id)).toEqual([ids[2], ids[1]]);
    expect(second.has_more).toBe(false);
  });

  it('another account\'s cursor only positions; it never reveals their rows', async () => {
    const a = await h.integrator();
    const b = await h.integrator();
    await createWebhooks(a.auth, 3);
    const bIds = await createWebhooks(b.auth, 2);
    const aPage = await page(a.auth, '?limit=1');
    const bPage = await page(b.auth, `?limit=100&cursor=${aPage.next_cursor}`);
    for (const w of bPage.data) expect(bIds).toContain(w.id);
  });
});

describe('GET /v1/webhooks query validation', () => {
  let account: Awaited<ReturnType<ApiHarness['integrator']>>;
  beforeAll(async () => {
    account = await h.integrator();
  });

  it.each(['0', '101', 'abc', '-1', '1.5', '', '1e2', '20&limit=30', ' 5'])('limit=%s → 400 INVALID_PAYLOAD', async (limit) => {
    const res = await request(h.app).get(`/v1/webhooks?limit=${limit}`).set(account.auth);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    expect(res.body.error.details[0].path).toBe('limit');
  });

  const badCursors = [
    'garbage',
    Buffer.from('2026-01-01T00:00:00.000Z').toString('base64url'),
    Buffer.from('not-a-date|wh_abc').toString('base64url'),
    Buffer.from('2026-01-01T00:00:00.000Z|DROP TABLE').toString('base64url'),
    Buffer.from('2026-01-01T00:00:00.000Z|wh_a|x').toString('base64url'),
    'x'.repeat(600),
    '%00',
  ];
  it.each(badCursors)('cursor=%s → 400 INVALID_PAYLOAD', async (cursor) => {
    const res = await request(h.app).get(`/v1/webhooks?cursor=${cursor}`).set(account.auth);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    expect(res.body.error.details[0].path).toBe('cursor');
  });

  it('a well-formed cursor is accepted', async () => {
    const cursor = encodeCursor({ createdAt: new Date(), id: newId('webhook') });
    const res = await request(h.app).get(`/v1/webhooks?cursor=${cursor}`).set(account.auth);
    expect(res.status).toBe(200);
  });
});
