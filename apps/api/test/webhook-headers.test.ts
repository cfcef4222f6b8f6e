import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { createWebhook, updateWebhook } from '../src/services/webhooks';

// Custom headers of a webhook (docs/api.md, "Custom headers") through the API
// and the dashboard's Edit form, on a real database: what is accepted, what is
// refused (naming the header), how it is stored (encrypted) and shown.

let h: ApiHarness;
let acme: Awaited<ReturnType<ApiHarness['integrator']>>;
let other: Awaited<ReturnType<ApiHarness['integrator']>>;
let n = 0;
const freshUrl = () => `https://hooks.example.com/headers/${++n}`;

beforeAll(async () => {
  h = await startApiHarness();
  acme = await h.integrator({ mode: 'test' });
  other = await h.integrator({ mode: 'test' });
});
afterAll(() => h.close());

const create = (body: Record<string, unknown>, auth = acme.auth) =>
  request(h.app).post('/v1/webhooks').set(auth).send({ url: freshUrl(), events: ['quota.warning'], ...body });
const patch = (id: string, body: Record<string, unknown>) => request(h.app).patch(`/v1/webhooks/${id}`).set(acme.auth).send(body);
const rawColumn = async (id: string) =>
  (await h.database.db.sql.query<{ custom_headers_enc: string | null }>('SELECT custom_headers_enc FROM webhooks WHERE id = $1', [id]))[0].custom_headers_enc;

describe('headers on create, read and patch', () => {
  it('are stored encrypted, and shown to the owner on create, get and list', async () => {
    const headers = { Authorization: 'Bearer tok_3f9c8a7b6e5d', 'X-Tenant': 'acme' };
    const res = await create({ headers });
    expect(res.status).toBe(201);
    expect(res.body.webhook.headers).toEqual(headers);
    const id: string = res.body.webhook.id;

    const stored = await rawColumn(id);
    expect(stored).toMatch(/^v1:/);
    expect(stored).not.toContain('tok_3f9c8a7b6e5d');
    expect(JSON.parse(h.deps.secretBox.decrypt(stored!))).toEqual(headers);

    expect((await request(h.app).get(`/v1/webhooks/${id}`).set(acme.auth)).body.webhook.headers).toEqual(headers);
    const list = await request(h.app).get('/v1/webhooks').set(acme.auth);
    expect(list.body.data.find((w: { id: string }) => w.id === id).headers).toEqual(headers);
    // Another account cannot read them: the webhook is not there at all.
    expect((await request(h.app).get(`/v1/webhooks/${id}`).set(other.auth)).status).toBe(404);
  });

  it('a webhook without headers shows {} and stores NULL', async () => {
    const res = await create({});
    expect(res.body.webhook.headers).toEqual({});
    expect(await rawColumn(res.body.webhook.id)).toBeNull();
    const empty = await create({ headers: {} });
    expect(empty.body.webhook.headers).toEqual({});
    expect(await rawColumn(empty.body.webhook.id)).toBeNull();
  });

  it('patch replaces the whole map; leaving headers out keeps it; null and {} remove it', async () => {
    const { id } = (await create({ headers: { 'X-One': '1', 'X-Two': '2' } })).body.webhook;
    const replaced = await patch(id, { headers: { 'X-Three': '3' } });
    expect(replaced.status).toBe(200);
    expect(replaced.body.webhook.headers).toEqual({ 'X-Three': '3' });
    expect((await patch(id, { description: 'kept' })).body.webhook.headers).toEqual({ 'X-Three': '3' });
    expect((await patch(id, { headers: null })).body.webhook.headers).toEqual({});
    expect(await rawColumn(id)).toBeNull();
    await patch(id, { headers: { 'X-Four': '4' } });
    expect((await patch(id, { headers: {} })).body.webhook.headers).toEqual({});
    expect(await rawColumn(id)).toBeNull();
  });

  it('accepts the bounds: 10 headers, a 64-character name, a 1024-character value with spaces and symbols', async () => {
    const ten = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`X-H${i}`, `v${i}`]));
    expect((await create({ headers: ten })).status).toBe(201);
    const res = await create({ headers: { ['X'.repeat(64)]: `${'a'.repeat(1000)} !"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~`.slice(0, 1024) } });
    expect(res.status).toBe(201);
    expect(res.body.webhook.headers['X'.repeat(64)]).toHaveLength(1024);
  });
});

describe('refused headers', () => {
  const RESERVED = [
    'Content-Type', 'content-length', 'Content-Encoding', 'User-Agent', 'Host', 'X-Webhook-Secret', 'Expect',
    'X-PerfectParser-Signature', 'x-perfectparser-event', 'X-PerfectParser-Delivery', 'X-PerfectParser-Anything',
    'webhook-id', 'Webhook-Timestamp', 'webhook-signature', 'webhook-other',
  ];
  const HOP_BY_HOP = ['Connection', 'Keep-Alive', 'Transfer-Encoding', 'TE', 'Trailer', 'Upgrade', 'Proxy-Authorization', 'proxy-connection'];

  it.each([...RESERVED, ...HOP_BY_HOP])('%s: 400 INVALID_PAYLOAD naming headers.<name>, on create and on patch, and nothing is written', async (name) => {
    const before = await h.database.db.prisma.webhook.count();
    const res = await create({ headers: { Authorization: 'Bearer ok', [name]: 'x' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    expect(res.body.error.details).toEqual([{ path: `headers.${name}`, message: expect.stringMatching(/reserved|Hookline|hop-by-hop/) }]);
    expect(res.body.error.message).toContain(`headers.${name}`);
    expect(await h.database.db.prisma.webhook.count()).toBe(before);

    const { id } = (await create({ headers: { 'X-Kept': 'yes' } })).body.webhook;
    const patched = await patch(id, { headers: { [name]: 'x' } });
    expect(patched.status).toBe(400);
    expect(patched.body.error.details[0].path).toBe(`headers.${name}`);
    expect((await request(h.app).get(`/v1/webhooks/${id}`).set(acme.auth)).body.webhook.headers).toEqual({ 'X-Kept': 'yes' });
  });

  it.each([
    ['a value with CR LF', { 'X-Bad': 'a\r\nInjected: 1' }, 'headers.X-Bad', /printable/],
    ['a value with LF', { 'X-Bad': 'a\nb' }, 'headers.X-Bad', /printable/],
    ['a value with NUL', { 'X-Bad': 'a\u0000b' }, 'headers.X-Bad', /NUL|printable/],
    ['a value with a tab', { 'X-Bad': 'a\tb' }, 'headers.X-Bad', /printable/],
    ['a non-ASCII value', { 'X-Bad': 'ünï' }, 'headers.X-Bad', /printable/],
    ['a value over 1024 characters', { 'X-Bad': 'a'.repeat(1025) }, 'headers.X-Bad', /1024/],
    ['a value that is not a string', { 'X-Bad': 42 }, 'headers.X-Bad', /string/],
    ['a name with a space', { 'X Bad': 'v' }, 'headers', /header name/],
    ['a name with a colon', { 'X:Bad': 'v' }, 'headers', /header name/],
    ['a name with CR LF', { 'X\r\nBad': 'v' }, 'headers', /header name/],
    ['an empty name', { '': 'v' }, 'headers', /header name/],
    ['a name over 64 characters', { ['X'.repeat(65)]: 'v' }, 'headers', /header name/],
    ['a name given twice in two cases', { 'X-Dup': '1', 'x-dup': '2' }, 'headers.x-dup', /twice/],
    ['11 headers', Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`X-H${i}`, 'v'])), 'headers', /at most 10/],
    ['an array', ['X-A', 'v'], 'headers', /JSON object/],
    ['a string', 'X-A: v', 'headers', /JSON object/],
  ])('%s', async (_label, headers, path, message) => {
    const res = await create({ headers });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    expect(res.body.error.details).toContainEqual({ path, message: expect.stringMatching(message) });
  });

  it('X-<WEBHOOK_BRAND>-* follows the configured brand, in the service functions the dashboard calls too', async () => {
    const acmeBrand = { ...h.deps, config: { ...h.deps.config, WEBHOOK_BRAND: 'Acme' } };
    const auth = { accountId: acme.accountId, mode: 'test' as const };
    await expect(createWebhook(acmeBrand, auth, { url: freshUrl(), events: ['quota.warning'], headers: { 'X-Acme-Event': 'x' } })).rejects.toMatchObject({
      code: 'INVALID_PAYLOAD', details: [{ path: 'headers.X-Acme-Event', message: expect.stringContaining('X-Acme-*') }],
    });
    // Under that brand, the default brand's prefix is an ordinary name.
    const { webhook } = await createWebhook(acmeBrand, auth, { url: freshUrl(), events: ['quota.warning'], headers: { 'X-PerfectParser-Note': 'x' } });
    expect(webhook.headers).toEqual({ 'X-PerfectParser-Note': 'x' });
    await expect(updateWebhook(acmeBrand, auth, webhook.id, { headers: { 'x-acme-delivery': 'x' } })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
    await expect(updateWebhook(h.deps, auth, webhook.id, { headers: { 'Connection': 'close' } })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
  });
});

describe('the dashboard Edit form', () => {
  const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)![1];

  it('shows the headers one per line, saves edits through PATCH\'s rules, and shows a refused name next to the field', async () => {
    const { id } = (await create({ headers: { Authorization: 'Bearer tok_dash', 'X-Tenant': 'acme' } })).body.webhook;
    const agent = request.agent(h.app);
    const form = await agent.get('/dashboard');
    expect((await agent.post('/dashboard/sign-in').type('form').send({ _csrf: csrfOf(form.text), api_key: acme.key })).status).toBe(303);

    const edit = await agent.get(`/dashboard/integrations/webhooks/${id}/edit`);
    expect(edit.status).toBe(200);
    expect(edit.text).toMatch(/<textarea id="field-headers" name="headers"[^>]*>Authorization: Bearer tok_dash\nX-Tenant: acme<\/textarea>/);
    const csrf = csrfOf(edit.text);
    const fields = { _csrf: csrf, url: freshUrl(), parser_id: '', events: 'quota.warning', filter: '' };

    const saved = await agent.post(`/dashboard/integrations/webhooks/${id}/edit`).type('form').send({ ...fields, headers: 'X-Tenant: globex\r\nX-Region:  eu ' });
    expect(saved.status).toBe(303);
    expect((await request(h.app).get(`/v1/webhooks/${id}`).set(acme.auth)).body.webhook.headers).toEqual({ 'X-Tenant': 'globex', 'X-Region': 'eu' });

    const refused = await agent.post(`/dashboard/integrations/webhooks/${id}/edit`).type('form').send({ ...fields, headers: 'Transfer-Encoding: chunked' });
    expect(refused.status).toBe(400);
    expect(refused.text).toMatch(/<p class="field-error" id="field-headers-error">Transfer-Encoding: is a hop-by-hop header/);
    const malformed = await agent.post(`/dashboard/integrations/webhooks/${id}/edit`).type('form').send({ ...fields, headers: 'no colon here' });
    expect(malformed.status).toBe(400);
    expect(malformed.text).toContain('line 1: must be Name: value');
    expect((await request(h.app).get(`/v1/webhooks/${id}`).set(acme.auth)).body.webhook.headers).toEqual({ 'X-Tenant': 'globex', 'X-Region': 'eu' });

    // Blank removes them all.
    expect((await agent.post(`/dashboard/integrations/webhooks/${id}/edit`).type('form').send({ ...fields, headers: '' })).status).toBe(303);
    expect((await request(h.app).get(`/v1/webhooks/${id}`).set(acme.auth)).body.webhook.headers).toEqual({});
  });
});
