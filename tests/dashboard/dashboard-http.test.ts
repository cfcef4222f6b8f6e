import express from 'express';
import request from 'supertest';
import IORedis from 'ioredis';
import { redisOptions } from '@hookline/queue';
import { publishEvent } from '../support/publish-event';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { createWebhook } from '../../apps/api/src/services/webhooks';
import { DASHBOARD_CSP, createDashboardRouter } from '../../apps/api/src/dashboard/router';

// The dashboard over HTTP, without a browser: sessions, CSRF, plan and key
// checks, escaping and the HTML error pages, on a real database and Redis.

let h: ApiHarness;

beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h.close());

type Agent = ReturnType<typeof request.agent>;

const csrfOf = (page: string) => {
  const match = /name="_csrf" value="([^"]+)"/.exec(page);
  if (!match) throw new Error(`no CSRF token in page: ${page.slice(0, 300)}`);
  return match[1];
};

async function signIn(agent: Agent, key: string) {
  const form = await agent.get('/dashboard');
  expect(form.status).toBe(200);
  return agent.post('/dashboard/sign-in').type('form').send({ _csrf: csrfOf(form.text), api_key: key });
}

async function signedInAgent(key: string): Promise<{ agent: Agent; csrf: string; signInCookies: string[] }> {
  const agent = request.agent(h.app);
  const res = await signIn(agent, key);
  expect(res.status).toBe(303);
  expect(res.headers.location).toBe('/dashboard/integrations/webhooks');
  const page = await agent.get('/dashboard/integrations/webhooks');
  expect(page.status).toBe(200);
  return { agent, csrf: csrfOf(page.text), signInCookies: ([] as string[]).concat(res.headers['set-cookie'] ?? []) };
}

const sessionKeys = () => h.redis.keys(`${h.prefix}:dash:sess:*`);

describe('sign-in', () => {
  it('serves the sign-in form with a strict CSP, no caching and a labelled key field', async () => {
    const res = await request(h.app).get('/dashboard');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toContain("default-src 'self'");
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toContain('<label for="api_key">API key</label>');
    expect(res.text).toMatch(/<input id="api_key" name="api_key" type="password"/);
    // no inline script or style, nothing from another host
    expect(res.text).not.toMatch(/<script>|<style|style="|https?:\/\/(?!127)/);
  });

  it('refuses a sign-in without the form token with a 403 page', async () => {
    const { key } = await h.integrator();
    const res = await request(h.app).post('/dashboard/sign-in').type('form').send({ api_key: key, _csrf: 'forged' });
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('Request refused');
    expect(await sessionKeys()).toHaveLength(0);
  });

  it('says what to do for an unknown key and never echoes it back', async () => {
    const agent = request.agent(h.app);
    const wrong = 'hk_test_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ';
    const res = await signIn(agent, wrong);
    expect(res.status).toBe(401);
    expect(res.text).toContain('That API key is unknown or revoked');
    expect(res.text).not.toContain(wrong);
    const empty = await signIn(agent, '   ');
    expect(empty.status).toBe(400);
    expect(empty.text).toContain('Paste an API key to sign in.');
  });

  it('keeps only a random id in an httpOnly, SameSite=Strict, signed cookie and the session in Redis', async () => {
    const { key, keyId, accountId } = await h.integrator();
    const { signInCookies } = await signedInAgent(key);
    const cookie = signInCookies.find((c) => c.startsWith('hl_dash_sid='));
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\/dashboard/);
    expect(cookie).not.toContain(key);
    // signed: "s:<id>.<signature>", URL-encoded
    expect(decodeURIComponent(cookie!.split(';')[0].split('=')[1])).toMatch(/^s:[A-Za-z0-9_-]{40,}\.[A-Za-z0-9+/]+$/);

    const stored = await Promise.all((await sessionKeys()).map((k) => h.redis.get(k)));
    const mine = stored.map((s) => JSON.parse(s!)).find((s) => s.keyId === keyId);
    expect(mine).toMatchObject({ keyId, accountId });
    expect(mine.csrfToken).toEqual(expect.any(String));
    expect(JSON.stringify(stored)).not.toContain(key);
    const ttl = await h.redis.ttl((await sessionKeys())[0]);
    expect(ttl).toBeGreaterThan(11 * 3600);
    expect(ttl).toBeLessThanOrEqual(12 * 3600);
  });

  it('rejects a tampered session cookie as signed out', async () => {
    const res = await request(h.app).get('/dashboard/integrations/webhooks').set('Cookie', 'hl_dash_sid=s%3Aforged.AAAA');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/dashboard');
  });
});

describe('signed in', () => {
  it('shows the empty state, then refuses a form with a wrong CSRF token', async () => {
    const { key } = await h.integrator();
    const { agent, csrf } = await signedInAgent(key);
    const list = await agent.get('/dashboard/integrations/webhooks');
    expect(list.text).toContain('No webhooks yet — add one to receive batch.* callbacks');

    const forged = await agent.post('/dashboard/integrations/webhooks').type('form').send({ _csrf: `${csrf}x`, url: 'https://example.com/a' });
    expect(forged.status).toBe(403);
    expect(forged.text).toContain('This form has expired or did not come from this dashboard');
    const missing = await agent.post('/dashboard/integrations/webhooks').type('form').send({ url: 'https://example.com/a' });
    expect(missing.status).toBe(403);
    // a JSON body carries no form token either
    const json = await agent.post('/dashboard/integrations/webhooks').send({ _csrf: csrf, url: 'https://example.com/a' });
    expect(json.status).toBe(403);
    expect((await agent.get('/dashboard/integrations/webhooks')).text).toContain('No webhooks yet');
  });

  it('shows validation errors next to their field, keeps (escaped) input and applies the live-key https rule', async () => {
    const { key } = await h.integrator({ mode: 'live' });
    const { agent, csrf } = await signedInAgent(key);
    const hostile = 'not a url"><script>alert(1)</script>';
    const res = await agent.post('/dashboard/integrations/webhooks').type('form').send({ _csrf: csrf, url: hostile, parser_id: 'inv', secret: 'short' });
    expect(res.status).toBe(400);
    expect(res.text).not.toContain('<script>alert(1)</script>');
    expect(res.text).toContain('value="not a url&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
    expect(res.text).toMatch(/id="field-url-error">must be an absolute http\(s\) URL/);
    expect(res.text).toMatch(/id="field-secret-error">must be at least 8 characters/);
    expect(res.text).toContain('value="inv"');

    const http = await agent.post('/dashboard/integrations/webhooks').type('form').send({ _csrf: csrf, url: 'http://example.com/hook' });
    expect(http.status).toBe(400);
    expect(http.text).toMatch(/id="field-url-error">must be an https URL/);
  });

  it('creates a dashboard webhook for the batch.* events and refuses a duplicate inline', async () => {
    const { key, accountId } = await h.integrator();
    const { agent, csrf } = await signedInAgent(key);
    const form = { _csrf: csrf, url: 'https://example.com/hooks', parser_id: 'invoices', secret: 'zapier-static-1' };
    const created = await agent.post('/dashboard/integrations/webhooks').type('form').send(form);
    expect(created.status).toBe(303);
    const rows = await h.deps.db.prisma.webhook.findMany({ where: { accountId } });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ source: 'dashboard', url: form.url, parserId: 'invoices', events: ['batch.completed', 'batch.failed', 'batch.partial'] });
    expect(h.deps.secretBox.decrypt(rows[0].staticSecretEnc!)).toBe('zapier-static-1');

    const list = await agent.get('/dashboard/integrations/webhooks');
    expect(list.text).toContain('Webhook added.');
    expect(list.text).toContain('Parser <code>invoices</code>');
    // the static secret never appears in a page
    expect(list.text).not.toContain('zapier-static-1');

    const dup = await agent.post('/dashboard/integrations/webhooks').type('form').send(form);
    expect(dup.status).toBe(400);
    expect(dup.text).toMatch(/id="field-url-error">This account already has a webhook/);
  });

  it('reveals a dashboard secret only on a CSRF-checked POST and never an API webhook\'s', async () => {
    const { key, accountId } = await h.integrator();
    const { agent, csrf } = await signedInAgent(key);
    const dash = await createWebhook(h.deps, { accountId, mode: 'test' }, { url: 'https://example.com/d', events: ['batch.completed'] }, 'dashboard');
    const api = await createWebhook(h.deps, { accountId, mode: 'test' }, { url: 'https://example.com/a', events: ['extraction.job_completed'] }, 'api');

    const list = await agent.get('/dashboard/integrations/webhooks');
    expect(list.text).not.toContain(dash.signingSecret);
    expect(list.text).toContain('was shown once');

    expect((await agent.post(`/dashboard/integrations/webhooks/${dash.webhook.id}/reveal`).type('form').send({ _csrf: 'nope' })).status).toBe(403);
    const revealed = await agent.post(`/dashboard/integrations/webhooks/${dash.webhook.id}/reveal`).type('form').send({ _csrf: csrf });
    expect(revealed.status).toBe(200);
    expect(revealed.text).toContain(dash.signingSecret);
    expect(revealed.text).not.toContain(api.signingSecret);

    const json = await agent.post(`/dashboard/integrations/webhooks/${dash.webhook.id}/secret`).set('X-CSRF-Token', csrf);
    expect(json.status).toBe(200);
    expect(json.body).toEqual({ signing_secret: dash.signingSecret });
    expect((await agent.post(`/dashboard/integrations/webhooks/${dash.webhook.id}/secret`)).status).toBe(403);
    const apiReveal = await agent.post(`/dashboard/integrations/webhooks/${api.webhook.id}/reveal`).type('form').send({ _csrf: csrf });
    expect(apiReveal.status).toBe(404);
    expect(apiReveal.text).not.toContain(api.signingSecret);
  });

  it('answers another account\'s webhook, an unknown page and a bad filter with HTML pages', async () => {
    const owner = await h.integrator();
    const { webhook } = await createWebhook(h.deps, { accountId: owner.accountId, mode: 'test' }, { url: 'https://example.com/x', events: ['batch.completed'] }, 'dashboard');
    const { key } = await h.integrator();
    const { agent, csrf } = await signedInAgent(key);
    for (const res of [
      await agent.get(`/dashboard/integrations/webhooks/${webhook.id}/deliveries`),
      await agent.get(`/dashboard/integrations/webhooks/${webhook.id}/delete`),
      await agent.post(`/dashboard/integrations/webhooks/${webhook.id}/pause`).type('form').send({ _csrf: csrf }),
    ]) {
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.text).toContain('No such webhook.');
    }
    const unknown = await agent.get('/dashboard/nowhere');
    expect(unknown.status).toBe(404);
    expect(unknown.text).toContain('There is no dashboard page at this address.');
    const badCursor = await agent.get('/dashboard/integrations/webhooks?cursor=%%%');
    expect(badCursor.status).toBe(400);
    expect(badCursor.text).not.toMatch(/at .*\.ts:\d+/);
  });

  it('pages the webhook list and the delivery log, and filters the log by status', async () => {
    const { key, accountId } = await h.integrator();
    const { agent } = await signedInAgent(key);
    const ids: string[] = [];
    for (let i = 0; i < 21; i++) {
      const { webhook } = await createWebhook(h.deps, { accountId, mode: 'test' }, { url: `https://example.com/page/${i}`, events: ['batch.completed'] }, 'dashboard');
      ids.push(webhook.id);
    }
    const first = await agent.get('/dashboard/integrations/webhooks');
    expect(first.text.match(/<article class="card"/g)).toHaveLength(20);
    expect(first.text).toContain('https://example.com/page/20');
    const older = /href="(\/dashboard\/integrations\/webhooks\?cursor=[^"]+)">Older webhooks/.exec(first.text);
    expect(older).not.toBeNull();
    const second = await agent.get(older![1]);
    expect(second.text.match(/<article class="card"/g)).toHaveLength(1);
    expect(second.text).toContain('https://example.com/page/0');
    expect(second.text).toContain('← Newest');

    // 25 deliveries with no worker running: they stay pending
    for (let i = 0; i < 25; i++) {
      await publishEvent(h.deps.db.prisma, { accountId, event: 'batch.completed', parserId: null, data: { n: i }, onlyWebhookId: ids[20] });
    }
    const log = await agent.get(`/dashboard/integrations/webhooks/${ids[20]}/deliveries`);
    expect(log.status).toBe(200);
    expect(log.text.match(/<details class="delivery"/g)).toHaveLength(20);
    expect(log.text).toContain('No attempt yet: the first one is queued.');
    const next = /href="([^"]+)">Older deliveries/.exec(log.text);
    const page2 = await agent.get(next![1].replace(/&amp;/g, '&'));
    expect(page2.text.match(/<details class="delivery"/g)).toHaveLength(5);
    expect(page2.text).not.toContain('Older deliveries');

    const pending = await agent.get(`/dashboard/integrations/webhooks/${ids[20]}/deliveries?status=pending`);
    expect(pending.text).toContain('<option value="pending" selected>');
    expect(pending.text.match(/<details class="delivery"/g)).toHaveLength(20);
    const failed = await agent.get(`/dashboard/integrations/webhooks/${ids[20]}/deliveries?status=failed`);
    expect(failed.text).toContain('No deliveries with status Failed yet.');
    expect(failed.text).toContain('Show every delivery');
    const unknown = await agent.get(`/dashboard/integrations/webhooks/${ids[20]}/deliveries?status=lost`);
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('choose a status from the list');
  });

  it('says in words why a webhook is disabled or failing', async () => {
    const { key, accountId } = await h.integrator();
    const { agent } = await signedInAgent(key);
    const gone = await createWebhook(h.deps, { accountId, mode: 'test' }, { url: 'https://example.com/gone', events: ['batch.completed'] }, 'dashboard');
    const failing = await createWebhook(h.deps, { accountId, mode: 'test' }, { url: 'https://example.com/failing', events: ['batch.completed'] }, 'dashboard');
    await h.deps.db.prisma.webhook.update({ where: { id: gone.webhook.id }, data: { disabledReason: 'gone', disabledAt: new Date() } });
    await h.deps.db.prisma.webhook.update({ where: { id: failing.webhook.id }, data: { failingSince: new Date('2026-01-02T03:04:05.000Z') } });
    const list = await agent.get('/dashboard/integrations/webhooks');
    expect(list.text).toContain('<span class="badge badge-disabled">Disabled</span>');
    expect(list.text).toContain('the endpoint answered 410 Gone');
    expect(list.text).toContain('<span class="badge badge-failing">Failing</span>');
    expect(list.text).toContain('Failing since <time datetime="2026-01-02T03:04:05.000Z">');
  });

  it('shows an open or half-open circuit and the endpoint\'s own limits on its card, and nothing for a closed circuit', async () => {
    const { key, accountId } = await h.integrator();
    const { agent } = await signedInAgent(key);
    const auth = { accountId, mode: 'test' as const };
    const open = await createWebhook(h.deps, auth, { url: 'https://example.com/open', events: ['batch.completed'], max_in_flight: 3, rate_limit_per_second: 25 }, 'dashboard');
    const probing = await createWebhook(h.deps, auth, { url: 'https://example.com/probing', events: ['batch.completed'] }, 'dashboard');
    const closed = await createWebhook(h.deps, auth, { url: 'https://example.com/closed', events: ['batch.completed'], rate_limit_per_second: 7 }, 'dashboard');
    const prisma = h.deps.db.prisma;
    await prisma.webhook.update({ where: { id: open.webhook.id }, data: { circuit: 'open', circuitRetryAt: new Date('2026-12-01T10:00:00.000Z'), circuitCooldownMs: 60_000 } });
    await prisma.webhook.update({ where: { id: probing.webhook.id }, data: { circuit: 'half_open', circuitRetryAt: new Date('2026-12-01T10:00:00.000Z') } });
    await prisma.webhook.update({ where: { id: closed.webhook.id }, data: { circuitRetryAt: new Date('2026-12-01T10:00:00.000Z') } });

    const list = await agent.get('/dashboard/integrations/webhooks');
    expect(list.status).toBe(200);
    const cardOf = (id: string) => {
      const start = list.text.indexOf(`data-webhook-id="${id}"`);
      expect(start).toBeGreaterThan(-1);
      return list.text.slice(start, list.text.indexOf('</article>', start));
    };
    expect(cardOf(open.webhook.id)).toContain('<span class="badge badge-failing">Circuit open</span>');
    expect(cardOf(open.webhook.id)).toContain('Next probe at <time datetime="2026-12-01T10:00:00.000Z">');
    expect(cardOf(open.webhook.id)).toMatch(/<dt>Delivery limits<\/dt><dd data-limits>At most 3 in flight · 25 per second<\/dd>/);
    expect(cardOf(probing.webhook.id)).toContain('<span class="badge badge-pending_retry">Circuit half-open</span> Probing');
    expect(cardOf(probing.webhook.id)).not.toContain('Delivery limits');
    expect(cardOf(closed.webhook.id)).not.toContain('data-circuit');
    expect(cardOf(closed.webhook.id)).toContain('<dd data-limits>7 per second</dd>');
    expect(list.text).not.toMatch(/cooldown/i);

    // A disabled webhook shows why it is disabled, not its circuit: resuming it closes the circuit.
    await prisma.webhook.update({ where: { id: open.webhook.id }, data: { disabledReason: 'failing_too_long', disabledAt: new Date() } });
    const after = await agent.get('/dashboard/integrations/webhooks');
    const disabledCard = after.text.slice(after.text.indexOf(`data-webhook-id="${open.webhook.id}"`));
    expect(disabledCard.slice(0, disabledCard.indexOf('</article>'))).not.toContain('Circuit open');
  });

  it('shows free accounts a page explaining the plan', async () => {
    const { key } = await h.integrator({ plan: 'free' });
    const agent = request.agent(h.app);
    expect((await signIn(agent, key)).status).toBe(303);
    const res = await agent.get('/dashboard/integrations/webhooks');
    expect(res.status).toBe(403);
    expect(res.text).toContain('Webhooks need the Pro or Enterprise plan');
    expect(res.text).toContain('Sign out');
  });

  it('ends the session when its key is revoked, and on sign-out', async () => {
    const revoked = await h.integrator();
    const { agent } = await signedInAgent(revoked.key);
    const before = (await sessionKeys()).length;
    expect((await h.platform.delete(`/internal/v1/api-keys/${revoked.keyId}`)).status).toBe(204);
    const res = await agent.get('/dashboard/integrations/webhooks');
    expect(res.status).toBe(401);
    expect(res.text).toContain('Your session ended because its API key was revoked');
    expect((await sessionKeys()).length).toBe(before - 1);

    const other = await h.integrator();
    const signed = await signedInAgent(other.key);
    expect((await signed.agent.post('/dashboard/sign-out').type('form').send({ _csrf: 'bad' })).status).toBe(403);
    const out = await signed.agent.post('/dashboard/sign-out').type('form').send({ _csrf: signed.csrf });
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/dashboard?signed_out=1');
    expect((await sessionKeys()).length).toBe(before - 1);
    expect((await signed.agent.get('/dashboard/integrations/webhooks')).status).toBe(303);
  });
});

describe('with Redis down', () => {
  it('shows a try-again page instead of failing', async () => {
    const { key } = await h.integrator();
    // A producer connection to a port nothing listens on: commands fail at once.
    // The API's producer options against a port nothing listens on: with no offline
    // queue every command fails at once, as it does while Redis is down.
    const deadRedis = new IORedis({ ...redisOptions('producer'), host: '127.0.0.1', port: 1, lazyConnect: true });
    deadRedis.on('error', () => undefined);
    try {
      // Only the dashboard, mounted as app.ts mounts it, over the same database.
      const app = express().use('/dashboard', createDashboardRouter({ ...h.deps, redis: deadRedis }));
      const agent = request.agent(app);
      const res = await signIn(agent, key);
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.text).toContain('The session store is unreachable right now; try again in a moment.');
      expect(res.text).not.toContain(key);
    } finally {
      deadRedis.disconnect();
    }
  });
});
