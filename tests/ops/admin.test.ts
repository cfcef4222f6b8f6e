import request from 'supertest';
import { createApp } from '@hookline/api';
import { newId } from '@hookline/domain';
import { DELIVERY_QUEUE, enqueueDeliveries } from '@hookline/queue';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { redisReady } from '../support/redis-ready';

// Bull Board at /admin/queues, behind HTTP Basic auth, over the queues of
// this deployment's prefix, rendering from local assets only.

const PASSWORD = 'correct horse battery staple';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('admin queues view', () => {
  let h: ApiHarness;
  const auth = { Authorization: basic('admin', PASSWORD) };

  beforeAll(async () => {
    h = await startApiHarness({ config: { ADMIN_PASSWORD: PASSWORD } });
  });
  afterAll(() => h.close());

  it.each([
    ['no credentials', undefined],
    ['a wrong password', basic('admin', 'wrong password!')],
    ['a wrong user', basic('root', PASSWORD)],
    ['a malformed header', 'Basic %%%'],
    ['a bearer token', `Bearer ${PASSWORD}`],
  ])('answers 401 with a Basic challenge for %s', async (_label, header) => {
    const req = request(h.app).get('/admin/queues');
    const res = header ? await req.set('Authorization', header) : await req;
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Basic realm="Hookline admin"/);
    expect(res.body.error.code).toBe('UNAUTHORIZED');
    expect(res.text).not.toContain(PASSWORD);
  });

  it('guards the JSON API and the static assets too', async () => {
    expect((await request(h.app).get('/admin/queues/api/queues')).status).toBe(401);
    expect((await request(h.app).get('/admin/queues/static/favicon-32x32.png')).status).toBe(401);
  });

  it('renders the board with the right credentials, from local assets only', async () => {
    const res = await request(h.app).get('/admin/queues').set(auth);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('<div id="root">');
    expect(res.text).toContain('<base href="/admin/queues/"');
    // No CDN: every script and stylesheet comes from this server.
    const urls = [...res.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(urls.length).toBeGreaterThan(2);
    for (const url of urls) expect(url).not.toMatch(/^(https?:)?\/\//);
    const assets = urls.filter((url) => /\.(js|css)$/.test(url));
    expect(assets.some((url) => url.endsWith('.js'))).toBe(true);
    expect(assets.some((url) => url.endsWith('.css'))).toBe(true);
    for (const asset of assets) {
      const path = asset.startsWith('/') ? asset : `/admin/queues/${asset}`;
      const loaded = await request(h.app).get(path).set(auth);
      expect({ path, status: loaded.status }).toEqual({ path, status: 200 });
    }
  });

  it('lists the delivery queue under this deployment\'s prefix, with its jobs', async () => {
    await enqueueDeliveries(h.queue, [newId('delivery')], { delayMs: 60_000 });
    const res = await request(h.app).get('/admin/queues/api/queues').set(auth);
    expect(res.status).toBe(200);
    const queues = res.body.queues as Array<{ name: string; counts: Record<string, number> }>;
    expect(queues.map((q) => q.name)).toEqual([DELIVERY_QUEUE]);
    // The count proves the board reads this prefix, not the default one.
    expect(queues[0].counts.delayed).toBe(1);
  });

  it('refuses state-changing requests from another site', async () => {
    const res = await request(h.app)
      .put(`/admin/queues/api/queues/${DELIVERY_QUEUE}/pause`)
      .set(auth)
      .set('Origin', 'https://evil.example')
      .set('Sec-Fetch-Site', 'cross-site');
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('FORBIDDEN');
    expect(await h.queue.isPaused()).toBe(false);
  });

  it('lets the board itself (same origin) change state', async () => {
    const pause = await request(h.app).put(`/admin/queues/api/queues/${DELIVERY_QUEUE}/pause`).set(auth).set('Sec-Fetch-Site', 'same-origin');
    expect(pause.status).toBe(200);
    expect(await h.queue.isPaused()).toBe(true);
    const resume = await request(h.app).put(`/admin/queues/api/queues/${DELIVERY_QUEUE}/resume`).set(auth);
    expect(resume.status).toBe(200);
    expect(await h.queue.isPaused()).toBe(false);
  });

  it('is not mounted at all when ADMIN_PASSWORD is unset', async () => {
    const app = createApp({ ...h.deps, config: { ...h.deps.config, ADMIN_PASSWORD: undefined } });
    for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
      const res = await request(app).get(path).set(auth);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('RESOURCE_NOT_FOUND');
      expect(res.headers['www-authenticate']).toBeUndefined();
    }
  });
});

describe('admin password guessing', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApiHarness({ config: { ADMIN_PASSWORD: PASSWORD, TRUST_PROXY: 'loopback' } });
    // Until Redis is connected the limit fails open: count from a connected start.
    await redisReady(h);
  });
  afterAll(() => h.close());

  // Each test its own client address (behind the loopback proxy TRUST_PROXY names).
  const from = (address: string, header?: string) => {
    const req = request(h.app).get('/admin/queues/api/queues').set('X-Forwarded-For', address);
    return header ? req.set('Authorization', header) : req;
  };

  it('answers wrong passwords 429 with Retry-After after 10 from one address, while the right one still gets in', async () => {
    for (let i = 0; i < 10; i++) {
      const res = await from('203.0.113.10', basic('admin', `guess number ${i}`));
      expect(res.status).toBe(401);
    }
    expect((await from('203.0.113.10', basic('admin', PASSWORD))).status).toBe(200);
    for (const header of [basic('admin', 'guess number 11'), basic('ADMIN', PASSWORD)]) {
      const res = await from('203.0.113.10', header);
      expect(res.status).toBe(429);
      expect(res.body.error.code).toBe('RATE_LIMITED');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(800);
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(900);
      // No Basic challenge: a browser must not prompt for yet another guess.
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(res.text).not.toContain(PASSWORD);
    }
    // Counted in Redis under this deployment's prefix, keyed by address (never by a password).
    const keys = await h.redis.keys(`${h.prefix}:auth-fail:admin:*`);
    expect(keys).toEqual([`${h.prefix}:auth-fail:admin:203.0.113.10`]);
    // Still over the budget: the right password keeps working.
    expect((await from('203.0.113.10', basic('admin', PASSWORD))).status).toBe(200);
  });

  it('another address is unaffected', async () => {
    expect((await from('203.0.113.11', basic('admin', PASSWORD))).status).toBe(200);
    expect((await from('203.0.113.11', basic('admin', 'wrong'))).status).toBe(401);
  });

  it('requests without credentials (a browser\'s first one) are not counted', async () => {
    for (let i = 0; i < 12; i++) expect((await from('203.0.113.12')).status).toBe(401);
    expect((await from('203.0.113.12', basic('admin', PASSWORD))).status).toBe(200);
  });
});
