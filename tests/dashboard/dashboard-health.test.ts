import request from 'supertest';
import { newId } from '@hookline/domain';
import { publishEvent } from '../support/publish-event';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { createWebhook } from '../../apps/api/src/services/webhooks';
import { HEALTH_HOURS, healthWindowStart, webhookHealth } from '../../apps/api/src/services/webhook-health';
import { barHeights, formatRate, rateText } from '../../apps/api/src/dashboard/health-views';

// Issue #12.6 over HTTP: each card's health (success rate, 24 hourly bars,
// circuit, last error) from attempt rows with known times, the Edit form
// through PATCH's schema and service, and the delivery log's status and event
// filters through GET /v1/webhooks/:id/deliveries's service.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h.close());

type Agent = ReturnType<typeof request.agent>;
const HOUR = 3_600_000;

const csrfOf = (page: string) => {
  const match = /name="_csrf" value="([^"]+)"/.exec(page);
  if (!match) throw new Error(`no CSRF token in page: ${page.slice(0, 300)}`);
  return match[1];
};

async function signedInAgent(key: string): Promise<{ agent: Agent; csrf: string }> {
  const agent = request.agent(h.app);
  const form = await agent.get('/dashboard');
  const res = await agent.post('/dashboard/sign-in').type('form').send({ _csrf: csrfOf(form.text), api_key: key });
  expect(res.status).toBe(303);
  const page = await agent.get('/dashboard/integrations/webhooks');
  expect(page.status).toBe(200);
  return { agent, csrf: csrfOf(page.text) };
}

const cardOf = (pageText: string, id: string) => {
  const start = pageText.indexOf(`data-webhook-id="${id}"`);
  expect(start).toBeGreaterThan(-1);
  return pageText.slice(start, pageText.indexOf('</article>', start));
};

type Bar = { hour: string; succeeded: number; failed: number; okHeight: number | null; failHeight: number | null };
function barsOf(card: string): Bar[] {
  const bars: Bar[] = [];
  const re = /<g class="chart-hour" data-hour="([^"]+)" data-succeeded="(\d+)" data-failed="(\d+)">(.*?)<\/g>/g;
  for (let m = re.exec(card); m; m = re.exec(card)) {
    const ok = /class="bar-succeeded"[^>]* height="([\d.]+)"/.exec(m[4]);
    const fail = /class="bar-failed"[^>]* height="([\d.]+)"/.exec(m[4]);
    bars.push({ hour: m[1], succeeded: Number(m[2]), failed: Number(m[3]), okHeight: ok ? Number(ok[1]) : null, failHeight: fail ? Number(fail[1]) : null });
  }
  return bars;
}

/** Attempt rows at the given times on one delivery of the webhook (attempt numbers 1…n). */
async function insertAttempts(accountId: string, webhookId: string, attempts: Array<{ at: Date; ok: boolean; responseStatus?: number | null; error?: string | null }>) {
  const written = await publishEvent(h.deps.db.prisma, { accountId, event: 'batch.completed', parserId: null, data: { n: 1 }, onlyWebhookId: webhookId });
  const [deliveryId] = written.deliveryIds;
  const delivery = await h.deps.db.prisma.delivery.findUniqueOrThrow({ where: { id: deliveryId } });
  await h.deps.db.prisma.attempt.createMany({
    data: attempts.map((a, i) => ({
      id: newId('attempt'),
      deliveryId,
      webhookId,
      eventId: delivery.eventId,
      event: delivery.event,
      attemptNumber: i + 1,
      status: a.ok ? 'succeeded' : 'failed',
      responseStatus: a.responseStatus !== undefined ? a.responseStatus : a.ok ? 200 : 500,
      error: a.error ?? null,
      durationMs: 12,
      createdAt: a.at,
    })),
  });
}

const hourOf = (d: Date) => new Date(Math.floor(d.getTime() / HOUR) * HOUR).toISOString();

describe('health figures (service)', () => {
  it('counts attempts per UTC hour over the last 24 hours, one statement for several webhooks', async () => {
    const { accountId } = await h.integrator();
    const auth = { accountId, mode: 'test' as const };
    const a = await createWebhook(h.deps, auth, { url: 'https://example.com/health-a', events: ['batch.completed'] }, 'dashboard');
    const b = await createWebhook(h.deps, auth, { url: 'https://example.com/health-b', events: ['batch.completed'] }, 'dashboard');
    const now = new Date('2026-11-30T10:20:00.000Z');
    await insertAttempts(accountId, a.webhook.id, [
      { at: new Date('2026-11-29T10:59:59.999Z'), ok: true }, // before the window (it starts at 11:00 the day before)
      { at: new Date('2026-11-29T11:00:00.000Z'), ok: true }, // first bar
      { at: new Date('2026-11-29T11:30:00.000Z'), ok: false, responseStatus: 503 },
      { at: new Date('2026-11-30T09:10:00.000Z'), ok: true },
      { at: new Date('2026-11-30T09:50:00.000Z'), ok: true },
      { at: new Date('2026-11-30T10:05:00.000Z'), ok: false, responseStatus: null, error: 'timeout' }, // last bar, the latest failure
      { at: new Date('2026-11-30T10:25:00.000Z'), ok: true }, // after `now`
    ]);
    await insertAttempts(accountId, b.webhook.id, [{ at: new Date('2026-11-25T08:00:00.000Z'), ok: false, responseStatus: 410 }]);

    const health = await webhookHealth(h.deps, [a.webhook.id, b.webhook.id, 'wh_none'], now);
    const ha = health.get(a.webhook.id)!;
    expect(healthWindowStart(now).toISOString()).toBe('2026-11-29T11:00:00.000Z');
    expect(ha.hours).toHaveLength(HEALTH_HOURS);
    expect(ha.hours[0]).toEqual({ hour: '2026-11-29T11:00:00.000Z', succeeded: 1, failed: 1 });
    expect(ha.hours[22]).toEqual({ hour: '2026-11-30T09:00:00.000Z', succeeded: 2, failed: 0 });
    expect(ha.hours[23]).toEqual({ hour: '2026-11-30T10:00:00.000Z', succeeded: 0, failed: 1 });
    expect(ha.hours.slice(1, 22).every((x) => x.succeeded === 0 && x.failed === 0)).toBe(true);
    expect({ succeeded: ha.succeeded, failed: ha.failed }).toEqual({ succeeded: 3, failed: 2 });
    // The latest failed attempt at the time of reading (the one after `now` succeeded).
    expect(ha.lastError).toEqual({ at: '2026-11-30T10:05:00.000Z', responseStatus: null, error: 'timeout' });

    const hb = health.get(b.webhook.id)!;
    expect({ succeeded: hb.succeeded, failed: hb.failed }).toEqual({ succeeded: 0, failed: 0 });
    // A failure older than the window is still the last error.
    expect(hb.lastError).toEqual({ at: '2026-11-25T08:00:00.000Z', responseStatus: 410, error: null });
    expect(health.get('wh_none')!.lastError).toBeNull();
    expect((await webhookHealth(h.deps, [])).size).toBe(0);
  });

  it('words the rate and scales the bars to the busiest hour', () => {
    expect(rateText({ succeeded: 1182, failed: 22 })).toBe('98.1% of 1,204 attempts in 24 h');
    expect(rateText({ succeeded: 0, failed: 0 })).toBe('No attempts in 24 h');
    expect(rateText({ succeeded: 1, failed: 0 })).toBe('100% of 1 attempt in 24 h');
    // Rounded down: 9,999 of 10,000 is not a clean 100%.
    expect(formatRate(9_999, 10_000)).toBe('99.9%');
    expect(formatRate(0, 3)).toBe('0.0%');
    expect(barHeights({ succeeded: 3, failed: 1 }, 4)).toEqual({ succeeded: 36, failed: 12 });
    expect(barHeights({ succeeded: 2, failed: 0 }, 4)).toEqual({ succeeded: 24, failed: 0 });
    // One failure among a thousand still shows (at least one unit tall), and the stack never overflows.
    expect(barHeights({ succeeded: 999, failed: 1 }, 1000)).toEqual({ succeeded: 47, failed: 1 });
    expect(barHeights({ succeeded: 0, failed: 0 }, 0)).toEqual({ succeeded: 0, failed: 0 });
  });
});

describe('webhook cards', () => {
  it('show the success rate, a 24-bar chart with the right counts and heights, the circuit and the last error', async () => {
    const { key, accountId } = await h.integrator();
    const auth = { accountId, mode: 'test' as const };
    const busy = await createWebhook(h.deps, auth, { url: 'https://example.com/busy', events: ['batch.completed'] }, 'dashboard');
    const quiet = await createWebhook(h.deps, auth, { url: 'https://example.com/quiet', events: ['batch.completed'] }, 'dashboard');
    const open = await createWebhook(h.deps, auth, { url: 'https://example.com/open-circuit', events: ['batch.completed'] }, 'dashboard');
    await h.deps.db.prisma.webhook.update({ where: { id: open.webhook.id }, data: { circuit: 'open', circuitRetryAt: new Date('2026-12-01T10:00:00.000Z') } });

    // Half past the hour, 2, 5 and 20 hours back: well inside the window even if the hour turns during the test.
    const base = Math.floor(Date.now() / HOUR) * HOUR + 30 * 60_000;
    const t2 = new Date(base - 2 * HOUR);
    const t5 = new Date(base - 5 * HOUR);
    const t20 = new Date(base - 20 * HOUR);
    await insertAttempts(accountId, busy.webhook.id, [
      ...Array.from({ length: 6 }, () => ({ at: t5, ok: true })),
      { at: t5, ok: false, responseStatus: 500 },
      { at: t5, ok: false, responseStatus: 500 },
      ...Array.from({ length: 3 }, () => ({ at: t2, ok: true })),
      { at: t2, ok: false, responseStatus: 502 },
      { at: t20, ok: true },
      { at: new Date(base - 30 * HOUR), ok: false, responseStatus: 500 }, // outside the window
    ]);
    await insertAttempts(accountId, quiet.webhook.id, [{ at: new Date(base - 72 * HOUR), ok: false, responseStatus: null, error: 'connection_refused' }]);

    const { agent } = await signedInAgent(key);
    const list = await agent.get('/dashboard/integrations/webhooks');
    expect(list.status).toBe(200);
    expect(list.text).not.toMatch(/style="/);

    const card = cardOf(list.text, busy.webhook.id);
    // 10 of 13 attempts in the window succeeded.
    expect(card).toContain('<strong data-success-rate>76.9% of 13 attempts in 24 h</strong>');
    expect(card).toContain('10 succeeded');
    expect(card).toContain('3 failed');
    expect(card).toMatch(/<svg class="chart" viewBox="0 0 240 48" preserveAspectRatio="none" role="img" aria-labelledby="chart-wh_\w+-title" data-busiest="8">/);
    expect(card).toContain('Attempts per hour over the last 24 hours: 10 succeeded, 3 failed; the busiest hour had 8.</title>');
    const bars = barsOf(card);
    expect(bars).toHaveLength(24);
    const at = (d: Date) => bars.find((b) => b.hour === hourOf(d));
    // The busiest hour fills the chart: 6 of 8 succeeded (36 units), 2 failed (12 units).
    expect(at(t5)).toEqual({ hour: hourOf(t5), succeeded: 6, failed: 2, okHeight: 36, failHeight: 12 });
    expect(at(t2)).toEqual({ hour: hourOf(t2), succeeded: 3, failed: 1, okHeight: 18, failHeight: 6 });
    expect(at(t20)).toEqual({ hour: hourOf(t20), succeeded: 1, failed: 0, okHeight: 6, failHeight: null });
    expect(bars.reduce((n, b) => n + b.succeeded + b.failed, 0)).toBe(13);
    expect(bars.filter((b) => b.okHeight === null && b.failHeight === null)).toHaveLength(21);
    // Each bar names its hour and counts for a pointer or a screen reader.
    expect(card).toMatch(new RegExp(`<title>${hourOf(t5).slice(11, 16)}–\\d\\d:00 UTC: 6 succeeded, 2 failed</title>`));
    // Oldest first, hour after hour.
    expect(bars.map((b) => Date.parse(b.hour)).every((t, i, all) => i === 0 || t - all[i - 1] === HOUR)).toBe(true);
    expect(card).toContain('<dd data-health-circuit="closed">Closed: deliveries flow normally</dd>');
    expect(card).toContain(`<dd data-last-error>HTTP 502 · <time datetime="${t2.toISOString()}">`);

    const quietCard = cardOf(list.text, quiet.webhook.id);
    expect(quietCard).toContain('<strong data-success-rate>No attempts in 24 h</strong>');
    expect(quietCard).toContain('data-busiest="0"');
    expect(quietCard).not.toContain('class="bar-');
    expect(quietCard).toContain('<dd data-last-error>connection refused <code>connection_refused</code> · <time');

    const openCard = cardOf(list.text, open.webhook.id);
    expect(openCard).toContain('<dd data-health-circuit="open">Open: deliveries held until the probe at <time datetime="2026-12-01T10:00:00.000Z">');
    expect(openCard).toContain('<dd data-last-error><span class="muted">None recorded</span></dd>');
  });
});

describe('editing a webhook', () => {
  it('changes URL, scope and the verification header of a dashboard webhook, PRG, with the API\'s messages on errors', async () => {
    const { key, accountId } = await h.integrator();
    const auth = { accountId, mode: 'test' as const };
    const { webhook } = await createWebhook(h.deps, auth, { url: 'https://example.com/edit-me', events: ['batch.completed', 'batch.failed', 'batch.partial'] }, 'dashboard');
    await createWebhook(h.deps, auth, { url: 'https://example.com/taken', events: ['batch.completed'] }, 'dashboard');
    const { agent, csrf } = await signedInAgent(key);
    const editUrl = `/dashboard/integrations/webhooks/${webhook.id}/edit`;

    const list = await agent.get('/dashboard/integrations/webhooks');
    expect(cardOf(list.text, webhook.id)).toContain(`<a class="btn btn-plain" href="${editUrl}">Edit</a>`);
    const form = await agent.get(editUrl);
    expect(form.status).toBe(200);
    expect(form.text).toContain('value="https://example.com/edit-me"');
    // Dashboard webhooks keep the batch.* events: no checkboxes to change them.
    expect(form.text).not.toContain('name="events"');
    expect(form.text).toContain('always receive the three <code>batch.*</code> events');
    expect(form.text).toContain('None: no <code>X-Webhook-Secret</code> header is sent.');

    // Without the session's CSRF token: refused, nothing changed.
    const forged = await agent.post(editUrl).type('form').send({ _csrf: 'forged', url: 'https://example.com/forged' });
    expect(forged.status).toBe(403);

    // The API's own messages, next to their fields; the typed secret is not echoed back.
    const bad = await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'ftp://example.com/x', parser_id: 'p'.repeat(129), secret: 'short-and-secret'.slice(0, 5) });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('<p class="field-error" id="field-url-error">must be an absolute http(s) URL, e.g. https://example.com/hooks</p>');
    expect(bad.text).toContain('<p class="field-error" id="field-parser_id-error">must be at most 128 characters</p>');
    expect(bad.text).toContain('<p class="field-error" id="field-secret-error">must be at least 8 characters</p>');
    expect(bad.text).toContain('value="ftp://example.com/x"');
    expect(bad.text).not.toContain('value="short"');
    expect(bad.text).toContain('aria-invalid="true"');
    // The same rules as PATCH /v1/webhooks/:id gives over the API.
    const api = await request(h.app).patch(`/v1/webhooks/${webhook.id}`).set('Authorization', `Bearer ${key}`).send({ url: 'ftp://example.com/x' });
    expect(api.status).toBe(400);
    expect(api.body.error.details).toEqual([{ path: 'url', message: 'must be an absolute http(s) URL, e.g. https://example.com/hooks' }]);

    const duplicate = await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/taken', parser_id: '' });
    expect(duplicate.status).toBe(400);
    expect(duplicate.text).toContain('This account already has a webhook');

    const saved = await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/edited', parser_id: 'invoices', secret: 'static-secret-123' });
    expect(saved.status).toBe(303);
    expect(saved.headers.location).toBe('/dashboard/integrations/webhooks');
    let row = await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhook.id } });
    expect({ url: row.url, parserId: row.parserId, events: row.events }).toEqual({ url: 'https://example.com/edited', parserId: 'invoices', events: ['batch.completed', 'batch.failed', 'batch.partial'] });
    expect(h.deps.secretBox.decrypt(row.staticSecretEnc!)).toBe('static-secret-123');
    const after = await agent.get('/dashboard/integrations/webhooks');
    expect(after.text).toContain('Webhook updated: the changes apply to the next deliveries.');
    expect(cardOf(after.text, webhook.id)).toContain('Parser <code>invoices</code>');

    // Set, never shown back; blank keeps it; Remove drops it; both at once is refused.
    const again = await agent.get(editUrl);
    expect(again.text).toContain('<code>X-Webhook-Secret</code> is sent with every callback. Its value is never shown again.');
    expect(again.text).not.toContain('static-secret-123');
    expect((await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/edited', parser_id: '' })).status).toBe(303);
    row = await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhook.id } });
    expect(row.parserId).toBeNull();
    expect(h.deps.secretBox.decrypt(row.staticSecretEnc!)).toBe('static-secret-123');
    const both = await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/edited', secret: 'another-secret', remove_secret: '1' });
    expect(both.status).toBe(400);
    expect(both.text).toContain('type a new value or tick Remove, not both');
    expect((await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/edited', remove_secret: '1' })).status).toBe(303);
    row = await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhook.id } });
    expect(row.staticSecretEnc).toBeNull();

    // Another account's webhook is not there to edit.
    const other = await h.integrator();
    const stranger = await signedInAgent(other.key);
    expect((await stranger.agent.get(editUrl)).status).toBe(404);
    expect((await stranger.agent.post(editUrl).type('form').send({ _csrf: stranger.csrf, url: 'https://example.com/mine' })).status).toBe(404);
  });

  it('lets an API webhook choose its events from the API catalog, with the same validation', async () => {
    const { key, accountId } = await h.integrator({ mode: 'live' });
    const { webhook } = await createWebhook(h.deps, { accountId, mode: 'live' }, { url: 'https://example.com/api-hook', events: ['extraction.job_completed'] }, 'api');
    const { agent, csrf } = await signedInAgent(key);
    const editUrl = `/dashboard/integrations/webhooks/${webhook.id}/edit`;
    const form = await agent.get(editUrl);
    expect(form.text).toMatch(/<input type="checkbox" id="field-events-extraction-job_completed" name="events" value="extraction.job_completed" checked>/);
    expect(form.text).toContain('value="quota.warning">');
    expect(form.text).not.toContain('value="batch.completed"');

    const none = await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/api-hook' });
    expect(none.status).toBe(400);
    expect(none.text).toContain('<p class="field-error" id="field-events-error">must list at least one event</p>');
    const batch = await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/api-hook', events: ['batch.completed'] });
    expect(batch.status).toBe(400);
    expect(batch.text).toContain('must be one of extraction.document_completed, extraction.job_completed, quota.warning, quota.exceeded');
    // A live key registers https:// only, as over the API.
    const http = await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'http://example.com/api-hook', events: 'quota.warning' });
    expect(http.status).toBe(400);
    expect(http.text).toContain('must be an https URL (live keys may register only https:// URLs; use a test key for http://)');

    const saved = await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/api-hook', events: ['quota.warning', 'extraction.document_completed'] });
    expect(saved.status).toBe(303);
    const row = await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhook.id } });
    expect(row.events).toEqual(['quota.warning', 'extraction.document_completed']);
  });

  it('sets, shows and removes a payload filter as JSON, with the API\'s messages naming the entry', async () => {
    const { key, accountId } = await h.integrator();
    const { webhook } = await createWebhook(h.deps, { accountId, mode: 'test' }, { url: 'https://example.com/filtered', events: ['batch.completed', 'batch.failed', 'batch.partial'] }, 'dashboard');
    const { agent, csrf } = await signedInAgent(key);
    const editUrl = `/dashboard/integrations/webhooks/${webhook.id}/edit`;
    const save = (filter: string) => agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/filtered', filter });
    const storedFilter = async () => (await h.deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: webhook.id } })).filter;

    const form = await agent.get(editUrl);
    expect(form.text).toMatch(/<label for="field-filter">Payload filter <span class="optional">\(optional\)<\/span><\/label>\s*<textarea id="field-filter" name="filter"[^>]*><\/textarea>/);
    expect(cardOf((await agent.get('/dashboard/integrations/webhooks')).text, webhook.id)).not.toContain('data-filter');

    // Not JSON, then JSON the API refuses: the text stays in the box, the message names the entry; nothing saved.
    const notJson = await save('{status: failed}');
    expect(notJson.status).toBe(400);
    expect(notJson.text).toContain('<p class="field-error" id="field-filter-error">must be valid JSON, e.g. {&quot;status&quot;: [&quot;failed&quot;, &quot;partial&quot;]} (or blank for no filter)</p>');
    expect(notJson.text).toContain('>{status: failed}</textarea>');
    const nested = await save('{"status": {"in": ["failed"]}}');
    expect(nested.status).toBe(400);
    expect(nested.text).toContain('<p class="field-error" id="field-filter-error">status: must be a string, number, boolean or null, or a non-empty array of at most 100 of those</p>');
    expect(nested.text).toContain('aria-invalid="true"');
    const badPath = await save('{"result..kind": "invoice"}');
    expect(badPath.text).toContain('result..kind: is not a valid path');
    const notObject = await save('["failed"]');
    expect(notObject.text).toContain('id="field-filter-error">must be a JSON object of dotted paths to values');
    expect(await storedFilter()).toBeNull();
    // The same rules as PATCH over the API.
    const api = await request(h.app).patch(`/v1/webhooks/${webhook.id}`).set('Authorization', `Bearer ${key}`).send({ filter: { status: { in: ['failed'] } } });
    expect(api.body.error.details).toEqual([{ path: 'filter.status', message: 'must be a string, number, boolean or null, or a non-empty array of at most 100 of those' }]);

    const saved = await save('  {"status": ["failed", "partial"], "parser_id": "invoices", "failed_count": 1}  ');
    expect(saved.status).toBe(303);
    expect(await storedFilter()).toEqual({ status: ['failed', 'partial'], parser_id: 'invoices', failed_count: 1 });
    const card = cardOf((await agent.get('/dashboard/integrations/webhooks')).text, webhook.id);
    expect(card).toContain('<dd data-filter>Only events whose data has <code>status</code> = <code>&quot;failed&quot;</code> or <code>&quot;partial&quot;</code> and <code>parser_id</code> = <code>&quot;invoices&quot;</code> and <code>failed_count</code> = <code>1</code></dd>');
    // Shown back for editing, pretty-printed; saving another field keeps it.
    const again = await agent.get(editUrl);
    expect(again.text).toContain('>{\n  &quot;status&quot;: [\n    &quot;failed&quot;,\n    &quot;partial&quot;\n  ],\n  &quot;parser_id&quot;: &quot;invoices&quot;,\n  &quot;failed_count&quot;: 1\n}</textarea>');
    const pretty = JSON.stringify({ status: ['failed', 'partial'], parser_id: 'invoices', failed_count: 1 }, null, 2);
    expect((await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/filtered-2', filter: pretty })).status).toBe(303);
    expect(await storedFilter()).toEqual({ status: ['failed', 'partial'], parser_id: 'invoices', failed_count: 1 });

    // Blank removes it.
    expect((await agent.post(editUrl).type('form').send({ _csrf: csrf, url: 'https://example.com/filtered-2', filter: '   ' })).status).toBe(303);
    expect(await storedFilter()).toBeNull();
    expect(cardOf((await agent.get('/dashboard/integrations/webhooks')).text, webhook.id)).not.toContain('data-filter');
  });
});

describe('the delivery log', () => {
  it('filters by status and by event through the API\'s service, keeping the filters across pages', async () => {
    const { key, accountId } = await h.integrator();
    const { webhook } = await createWebhook(h.deps, { accountId, mode: 'test' }, { url: 'https://example.com/log-filter', events: ['batch.completed', 'batch.failed', 'batch.partial'] }, 'dashboard');
    const prisma = h.deps.db.prisma;
    for (let i = 0; i < 23; i++) await publishEvent(prisma, { accountId, event: 'batch.completed', parserId: null, data: { i }, onlyWebhookId: webhook.id });
    for (let i = 0; i < 2; i++) await publishEvent(prisma, { accountId, event: 'batch.failed', parserId: null, data: { i }, onlyWebhookId: webhook.id });
    const partial = await publishEvent(prisma, { accountId, event: 'batch.partial', parserId: null, data: {}, onlyWebhookId: webhook.id });
    await prisma.delivery.updateMany({ where: { id: { in: partial.deliveryIds } }, data: { status: 'failed' } });
    const { agent } = await signedInAgent(key);
    const log = `/dashboard/integrations/webhooks/${webhook.id}/deliveries`;
    const count = (text: string) => (text.match(/<details class="delivery"/g) ?? []).length;

    const all = await agent.get(log);
    expect(all.text).toContain('<label for="event-filter">Event</label>');
    expect(all.text).toContain('<option value="" selected>All events</option>');

    const failedEvent = await agent.get(`${log}?event=batch.failed`);
    expect(failedEvent.status).toBe(200);
    expect(failedEvent.text).toContain('<option value="batch.failed" selected>batch.failed</option>');
    expect(count(failedEvent.text)).toBe(2);
    expect(failedEvent.text).not.toContain('<code>batch.completed</code>');

    const both = await agent.get(`${log}?status=failed&event=batch.partial`);
    expect(count(both.text)).toBe(1);
    expect(both.text).toContain('<code>batch.partial</code>');
    const none = await agent.get(`${log}?status=failed&event=batch.completed`);
    expect(none.text).toContain('No deliveries for <code>batch.completed</code> with status Failed yet.');

    // 23 batch.completed: the next page keeps the filter.
    const first = await agent.get(`${log}?event=batch.completed`);
    expect(count(first.text)).toBe(20);
    const next = /href="([^"]+)">Older deliveries/.exec(first.text);
    expect(next![1]).toContain('event=batch.completed');
    const second = await agent.get(next![1].replace(/&amp;/g, '&'));
    expect(count(second.text)).toBe(3);
    expect(second.text).not.toContain('<code>batch.failed</code>');
    expect(second.text).toMatch(/href="[^"]*event=batch.completed[^"]*">← Newest/);

    const unknown = await agent.get(`${log}?event=batch.lost`);
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('That event filter is not one this log knows; choose an event from the list.');
  });
});
