import request from 'supertest';
import { apiEnvSchema, parseEnv, standaloneEnvSchema } from '@hookline/config';
import { DASHBOARD_EVENT_NAMES } from '@hookline/domain';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { createWebhook, updateWebhook } from '../src/services/webhooks';

// Abuse resistance of webhook creation (docs/api.md#the-webhook-object): the
// per-account cap MAX_WEBHOOKS_PER_ACCOUNT, and URLs on non-public addresses
// refused up front unless ALLOW_PRIVATE_TARGETS.

const DOC = 'extraction.document_completed';
let urlCounter = 0;
const freshUrl = () => `https://hooks.example.com/limits/${++urlCounter}`;

describe('the API environment', () => {
  it('has MAX_WEBHOOKS_PER_ACCOUNT (default 100) and ALLOW_PRIVATE_TARGETS (default false), and names a bad value', () => {
    expect(parseEnv(apiEnvSchema, {})).toMatchObject({ ok: true, config: { MAX_WEBHOOKS_PER_ACCOUNT: 100, ALLOW_PRIVATE_TARGETS: false } });
    expect(parseEnv(apiEnvSchema, { MAX_WEBHOOKS_PER_ACCOUNT: '3', ALLOW_PRIVATE_TARGETS: 'true' })).toMatchObject({ ok: true, config: { MAX_WEBHOOKS_PER_ACCOUNT: 3, ALLOW_PRIVATE_TARGETS: true } });
    expect(parseEnv(standaloneEnvSchema, { ALLOW_PRIVATE_TARGETS: 'true' })).toMatchObject({ ok: true, config: { ALLOW_PRIVATE_TARGETS: true } });
    expect(parseEnv(apiEnvSchema, { MAX_WEBHOOKS_PER_ACCOUNT: '0' })).toEqual({ ok: false, message: 'MAX_WEBHOOKS_PER_ACCOUNT: must be an integer from 1 to 100000' });
    expect(parseEnv(apiEnvSchema, { MAX_WEBHOOKS_PER_ACCOUNT: 'lots' })).toEqual({ ok: false, message: 'MAX_WEBHOOKS_PER_ACCOUNT: must be an integer from 1 to 100000' });
    expect(parseEnv(apiEnvSchema, { ALLOW_PRIVATE_TARGETS: 'maybe' })).toEqual({ ok: false, message: 'ALLOW_PRIVATE_TARGETS: must be true or false' });
  });
});

describe('MAX_WEBHOOKS_PER_ACCOUNT', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApiHarness({ config: { MAX_WEBHOOKS_PER_ACCOUNT: 3 } });
  });
  afterAll(() => h.close());

  const post = (auth: { Authorization: string }) => request(h.app).post('/v1/webhooks').set(auth).send({ url: freshUrl(), events: [DOC] });

  it('answers 409 LIMIT_REACHED naming the limit once the account has that many; deleted ones free a place', async () => {
    const account = await h.integrator();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(account.auth);
      expect(res.status).toBe(201);
      ids.push(res.body.webhook.id);
    }
    const refused = await post(account.auth);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('LIMIT_REACHED');
    expect(refused.body.error.message).toBe('This account already has 3 webhooks, the most allowed (MAX_WEBHOOKS_PER_ACCOUNT); delete one first.');

    // Another account is not affected.
    const other = await h.integrator();
    expect((await post(other.auth)).status).toBe(201);

    expect((await request(h.app).delete(`/v1/webhooks/${ids[0]}`).set(account.auth)).status).toBe(204);
    expect((await post(account.auth)).status).toBe(201);
    expect((await post(account.auth)).status).toBe(409);
    expect(await h.deps.db.prisma.webhook.count({ where: { accountId: account.accountId, deletedAt: null } })).toBe(3);
  });

  it('the dashboard service path is capped too', async () => {
    const account = await h.integrator();
    const auth = { accountId: account.accountId, mode: 'test' as const };
    for (let i = 0; i < 3; i++) await createWebhook(h.deps, auth, { url: freshUrl(), events: [...DASHBOARD_EVENT_NAMES] }, 'dashboard');
    await expect(createWebhook(h.deps, auth, { url: freshUrl(), events: [...DASHBOARD_EVENT_NAMES] }, 'dashboard')).rejects.toMatchObject({
      code: 'LIMIT_REACHED',
      status: 409,
      message: expect.stringContaining('MAX_WEBHOOKS_PER_ACCOUNT'),
    });
  });

  it('the dashboard\'s Add Webhook answers the limit inline, on the form', async () => {
    const account = await h.integrator();
    const agent = request.agent(h.app);
    const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
    const signInForm = await agent.get('/dashboard');
    expect((await agent.post('/dashboard/sign-in').type('form').send({ _csrf: csrfOf(signInForm.text), api_key: account.key })).status).toBe(303);
    const csrf = csrfOf((await agent.get('/dashboard/integrations/webhooks/new')).text);
    for (let i = 0; i < 3; i++) {
      expect((await agent.post('/dashboard/integrations/webhooks').type('form').send({ _csrf: csrf, url: freshUrl() })).status).toBe(303);
    }
    const url = freshUrl();
    const res = await agent.post('/dashboard/integrations/webhooks').type('form').send({ _csrf: csrf, url });
    expect(res.headers['content-type']).toMatch(/text\/html/);
    // The form again (as for a duplicate URL), with the reason on it: not an error page.
    expect(res.status).toBe(400);
    expect(res.text).toContain('<h1>Add Webhook</h1>');
    expect(res.text).toContain('This account already has 3 webhooks, the most allowed (MAX_WEBHOOKS_PER_ACCOUNT); delete one first.');
    expect(res.text).toContain(`value="${url}"`);
  });

  it('holds under concurrent creates: 20 at once with a limit of 5 leave exactly 5 webhooks', async () => {
    const raced = await startApiHarness({ config: { MAX_WEBHOOKS_PER_ACCOUNT: 5 } });
    try {
      const account = await raced.integrator();
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => request(raced.app).post('/v1/webhooks').set(account.auth).send({ url: `https://hooks.example.com/race/${i}`, events: [DOC] })),
      );
      const statuses = answers.map((res) => res.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(5);
      expect(statuses.filter((s) => s === 409)).toHaveLength(15);
      expect(answers.filter((res) => res.status === 409).every((res) => res.body.error.code === 'LIMIT_REACHED')).toBe(true);
      expect(await raced.deps.db.prisma.webhook.count({ where: { accountId: account.accountId } })).toBe(5);
    } finally {
      await raced.close();
    }
  });
});

describe('private targets refused at create and patch (ALLOW_PRIVATE_TARGETS off)', () => {
  let h: ApiHarness;
  let account: Awaited<ReturnType<ApiHarness['integrator']>>;
  beforeAll(async () => {
    h = await startApiHarness({ config: { ALLOW_PRIVATE_TARGETS: false } });
    account = await h.integrator({ mode: 'test' });
  });
  afterAll(() => h.close());

  const refusedUrls = [
    'http://127.0.0.1/hook', 'http://127.1/hook', 'http://0x7f000001/hook', 'http://2130706433/hook', 'http://[::1]/hook',
    'http://[::ffff:10.0.0.1]/hook', 'http://169.254.169.254/latest/meta-data', 'http://10.0.0.5:8080/hook',
    'http://192.168.1.20/hook', 'https://[fd00::1]/hook', 'http://localhost:3000/hook', 'http://api.localhost/hook',
  ];

  const expectRefused = (res: request.Response) => {
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    expect(res.body.error.message).toMatch(/^url: must be a public address: .*deliveries only go to public addresses \(ALLOW_PRIVATE_TARGETS=true allows private ones, for development\)$/);
    expect(res.body.error.details).toEqual([{ path: 'url', message: expect.stringMatching(/public address/) }]);
  };

  it.each(refusedUrls)('create refuses %s with 400 INVALID_PAYLOAD', async (url) => {
    expectRefused(await request(h.app).post('/v1/webhooks').set(account.auth).send({ url, events: [DOC] }));
  });

  it('patch refuses them too and leaves the webhook as it was', async () => {
    const created = await request(h.app).post('/v1/webhooks').set(account.auth).send({ url: freshUrl(), events: [DOC] });
    expect(created.status).toBe(201);
    for (const url of ['http://127.1/x', 'http://0x7f000001/x', 'http://[::ffff:10.0.0.1]/x', 'http://169.254.169.254/', 'http://localhost/x']) {
      expectRefused(await request(h.app).patch(`/v1/webhooks/${created.body.webhook.id}`).set(account.auth).send({ url }));
    }
    const read = await request(h.app).get(`/v1/webhooks/${created.body.webhook.id}`).set(account.auth);
    expect(read.body.webhook.url).toBe(created.body.webhook.url);
  });

  it('accepts a public IP literal and hostnames (which the worker checks at send time)', async () => {
    for (const url of ['https://8.8.8.8/hook', 'https://[2606:4700:4700::1111]/hook', 'https://hooks.example.com/named', 'https://localhost.example.com/x']) {
      const res = await request(h.app).post('/v1/webhooks').set(account.auth).send({ url, events: [DOC] });
      expect(res.status).toBe(201);
    }
  });

  it('the dashboard service path refuses them the same way', async () => {
    const auth = { accountId: account.accountId, mode: 'test' as const };
    await expect(createWebhook(h.deps, auth, { url: 'http://127.1/', events: [...DASHBOARD_EVENT_NAMES] }, 'dashboard')).rejects.toMatchObject({
      code: 'INVALID_PAYLOAD',
      details: [{ path: 'url', message: expect.stringMatching(/public address/) }],
    });
    const { webhook } = await createWebhook(h.deps, auth, { url: freshUrl(), events: [...DASHBOARD_EVENT_NAMES] }, 'dashboard');
    await expect(updateWebhook(h.deps, auth, webhook.id, { url: 'http://[::1]/' })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
  });
});

describe('ALLOW_PRIVATE_TARGETS=true', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApiHarness({ config: { ALLOW_PRIVATE_TARGETS: true } });
  });
  afterAll(() => h.close());

  it('accepts loopback and private targets at create and patch', async () => {
    const account = await h.integrator({ mode: 'test' });
    const created = await request(h.app).post('/v1/webhooks').set(account.auth).send({ url: 'http://127.1/hook', events: [DOC] });
    expect(created.status).toBe(201);
    for (const url of ['http://localhost:3000/h', 'http://[::ffff:10.0.0.1]/h', 'http://169.254.169.254/h']) {
      expect((await request(h.app).patch(`/v1/webhooks/${created.body.webhook.id}`).set(account.auth).send({ url })).status).toBe(200);
    }
  });
});

describe('OpenAPI', () => {
  it('lists LIMIT_REACHED among the error codes and in the 409 of POST /v1/webhooks', async () => {
    const h = await startApiHarness();
    try {
      const doc = (await request(h.app).get('/openapi.json')).body;
      expect(doc.components.schemas.Error.properties.error.properties.code.enum).toContain('LIMIT_REACHED');
      const conflict = doc.paths['/v1/webhooks'].post.responses['409'].$ref.split('/').pop();
      expect(doc.components.responses[conflict].description).toContain('LIMIT_REACHED');
    } finally {
      await h.close();
    }
  });
});

describe('MAX_FILTER_VALUES_PER_ACCOUNT', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApiHarness({ config: { MAX_FILTER_VALUES_PER_ACCOUNT: 10 } });
  });
  afterAll(() => h.close());

  const create = (auth: { Authorization: string }, filter: unknown) => request(h.app).post('/v1/webhooks').set(auth).send({ url: freshUrl(), events: [DOC], filter });

  it('defaults to 2000 and names a bad value', () => {
    expect(parseEnv(apiEnvSchema, {})).toMatchObject({ ok: true, config: { MAX_FILTER_VALUES_PER_ACCOUNT: 2000 } });
    expect(parseEnv(apiEnvSchema, { MAX_FILTER_VALUES_PER_ACCOUNT: 'many' })).toEqual({ ok: false, message: 'MAX_FILTER_VALUES_PER_ACCOUNT: must be an integer from 0 to 1000000' });
  });

  it('counts filter values across the account\'s webhooks and answers 409 LIMIT_REACHED naming the limit past it', async () => {
    const account = await h.integrator();
    // 6 values (an array of 5 and a scalar), then 4 more: exactly 10.
    expect((await create(account.auth, { status: ['a', 'b', 'c', 'd', 'e'], parser_id: 'p' })).status).toBe(201);
    const second = await create(account.auth, { status: ['f', 'g', 'h', 'i'] });
    expect(second.status).toBe(201);
    const over = await create(account.auth, { status: 'one more' });
    expect(over.status).toBe(409);
    expect(over.body).toEqual({
      error: {
        code: 'LIMIT_REACHED',
        message: expect.stringContaining('MAX_FILTER_VALUES_PER_ACCOUNT'),
        details: [{ path: 'filter', message: expect.stringMatching(/to 11 values in all, over the 10 allowed \(MAX_FILTER_VALUES_PER_ACCOUNT\)/) }],
      },
    });
    // A webhook without a filter costs nothing to match, and is still created.
    expect((await create(account.auth, null)).status).toBe(201);
    // PATCH: growing a filter past the limit is refused; its own old values do not count twice.
    const id = second.body.webhook.id as string;
    expect((await request(h.app).patch(`/v1/webhooks/${id}`).set(account.auth).send({ filter: { status: ['f', 'g', 'h', 'i', 'j'] } })).status).toBe(409);
    expect((await request(h.app).patch(`/v1/webhooks/${id}`).set(account.auth).send({ filter: { kind: ['w', 'x', 'y', 'z'] } })).status).toBe(200);
    // Deleting a webhook frees its values; another account has a budget of its own.
    expect((await request(h.app).delete(`/v1/webhooks/${id}`).set(account.auth)).status).toBe(204);
    expect((await create(account.auth, { status: ['1', '2', '3', '4'] })).status).toBe(201);
    const other = await h.integrator();
    expect((await create(other.auth, { status: ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'] })).status).toBe(201);
  });

  it('the dashboard\'s Edit form answers the cap inline, on the filter field', async () => {
    const account = await h.integrator();
    const { body } = await create(account.auth, { status: ['a', 'b', 'c', 'd', 'e', 'f'] });
    const id = body.webhook.id as string;
    const agent = request.agent(h.app);
    const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
    const signInForm = await agent.get('/dashboard');
    expect((await agent.post('/dashboard/sign-in').type('form').send({ _csrf: csrfOf(signInForm.text), api_key: account.key })).status).toBe(303);
    const editUrl = `/dashboard/integrations/webhooks/${id}/edit`;
    const csrf = csrfOf((await agent.get(editUrl)).text);
    const filter = JSON.stringify({ status: Array.from({ length: 11 }, (_, i) => `s${i}`) });
    const res = await agent.post(editUrl).type('form').send({ _csrf: csrf, url: body.webhook.url, events: DOC, filter });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/<p class="field-error" id="field-filter-error">would bring this account&#39;s webhook filters to 11 values in all, over the 10 allowed \(MAX_FILTER_VALUES_PER_ACCOUNT\)/);
  });

  it('holds for concurrent creates (one account lock)', async () => {
    const account = await h.integrator();
    const answers = await Promise.all(Array.from({ length: 4 }, () => create(account.auth, { status: ['a', 'b', 'c'] })));
    expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 201, 409]);
  });
});
