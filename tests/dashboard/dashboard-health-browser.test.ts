import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { newId } from '@hookline/domain';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { launchBrowser, newContext, screenshotter, watchPage, unlabelledFields } from '../support/browser';
import { publishEvent } from '../support/publish-event';
import { startReceiver, type Receiver } from '../support/receiver';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { createWebhook } from '../../apps/api/src/services/webhooks';

// Issue #12.6 in Chromium, at desktop width and at 375 px: the cards' health
// (rate, chart, circuit, last error) after real test callbacks through a real
// worker, the Edit flow, and the delivery log's status and event filters.

jest.setTimeout(90_000);

// Browser globals, used only inside page.evaluate callbacks (the project compiles without the DOM lib).
type El = { outerHTML: string; labels?: unknown[]; getAttribute(name: string): string | null };
declare const document: { scrollingElement: { scrollWidth: number }; querySelectorAll(selector: string): ArrayLike<El> };

let api: ApiHarness;
let worker: WorkerHarness;
let receiver: Receiver;
let server: Server;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const shot = screenshotter('dashboard-health');
const cspViolations: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  api = await startApiHarness();
  worker = await startWorkerHarness({ databaseUrl: api.database.url, prefix: api.prefix, encryptionKey: api.encryptionKey, config: { ALLOW_PRIVATE_TARGETS: true } });
  // One receiver, two endpoints: /hooks answers 200, /down answers 500.
  receiver = await startReceiver((req) => (req.path.startsWith('/down') ? { status: 500, body: '{"error":"down"}' } : { status: 200, body: '{"received":true}' }));
  server = await new Promise<Server>((resolve) => {
    const s = api.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  browser = await launchBrowser();
  context = await newContext(browser, { baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  page = await context.newPage();
  watchPage(page, { cspViolations, pageErrors });
});

afterAll(async () => {
  await browser?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await receiver?.close();
  await worker?.close();
  await api?.close();
});

/** Labelled fields, no horizontal scrolling at 375 px, the chart still drawn there; a screenshot at both widths. */
async function checkPage(name: string) {
  await shot(page, name);
  expect(await unlabelledFields(page)).toEqual([]);
  const desktop = page.viewportSize()!;
  await page.setViewportSize({ width: 375, height: 740 });
  const scrollWidth = await page.evaluate(() => document.scrollingElement.scrollWidth);
  expect({ page: name, scrollWidth }).toEqual({ page: name, scrollWidth: expect.any(Number) });
  expect(scrollWidth).toBeLessThanOrEqual(375);
  for (const chart of await page.locator('svg.chart').all()) {
    const box = await chart.boundingBox();
    expect(box!.width).toBeGreaterThan(250);
    expect(box!.x + box!.width).toBeLessThanOrEqual(375);
  }
  await shot(page, `${name}-375px`);
  await page.setViewportSize(desktop);
}

const card = (url: string): Locator => page.locator('article.card').filter({ has: page.locator('h3.url', { hasText: new RegExp(`^${url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`) }) });
const bar = (c: Locator, kind: 'succeeded' | 'failed') => c.locator(`svg.chart rect.bar-${kind}`);

it('shows each card\'s health, edits a webhook and filters the delivery log in a real browser', async () => {
  const account = await api.integrator({ plan: 'pro', mode: 'test' });
  const auth = { accountId: account.accountId, mode: 'test' as const };
  const okUrl = receiver.url;
  const downUrl = receiver.url.replace(/\/hooks$/, '/down');
  const ok = await createWebhook(api.deps, auth, { url: okUrl, events: ['batch.completed'] }, 'dashboard');
  await createWebhook(api.deps, auth, { url: downUrl, events: ['batch.completed'] }, 'dashboard');
  // Earlier traffic of the healthy webhook: 3 succeeded attempts five hours ago.
  const written = await publishEvent(api.deps.db.prisma, { accountId: account.accountId, event: 'batch.completed', parserId: null, data: {}, onlyWebhookId: ok.webhook.id });
  const delivery = await api.deps.db.prisma.delivery.findUniqueOrThrow({ where: { id: written.deliveryIds[0] } });
  await api.deps.db.prisma.delivery.update({ where: { id: delivery.id }, data: { status: 'succeeded', attemptCount: 3 } });
  const fiveHoursAgo = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 5 * 3_600_000 + 30 * 60_000);
  await api.deps.db.prisma.attempt.createMany({
    data: [1, 2, 3].map((n) => ({
      id: newId('attempt'), deliveryId: delivery.id, webhookId: ok.webhook.id, eventId: delivery.eventId, event: delivery.event,
      attemptNumber: n, status: 'succeeded', responseStatus: 200, durationMs: 9, createdAt: fiveHoursAgo,
    })),
  });

  await page.goto('/dashboard');
  await page.locator('#api_key').fill(account.key);
  await page.locator('#api_key').press('Enter');
  await page.waitForURL('**/dashboard/integrations/webhooks');

  // ---- health before any test: the chart is drawn, the rate counts the inserted attempts ----
  await expect(card(okUrl).locator('[data-success-rate]').textContent()).resolves.toBe('100% of 3 attempts in 24 h');
  await expect(card(downUrl).locator('[data-success-rate]').textContent()).resolves.toBe('No attempts in 24 h');
  await expect(bar(card(okUrl), 'succeeded').count()).resolves.toBe(1);
  await expect(card(okUrl).locator('svg.chart').getAttribute('aria-labelledby')).resolves.toMatch(/^chart-wh_\w+-title$/);
  const chartBox = await card(okUrl).locator('svg.chart').boundingBox();
  expect(chartBox!.width).toBeGreaterThan(300);
  expect(chartBox!.height).toBeGreaterThan(40);
  // A full-height bar for the busiest hour, drawn in the stylesheet's green (classes, not style attributes).
  const barBox = await bar(card(okUrl), 'succeeded').boundingBox();
  expect(barBox!.height).toBeGreaterThan(chartBox!.height * 0.9);
  await expect(bar(card(okUrl), 'succeeded').evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { fill: string } }).getComputedStyle(el).fill)).resolves.toBe('rgb(6, 118, 71)');

  // ---- real callbacks: a test to each endpoint through the worker ----
  await card(okUrl).getByRole('button', { name: 'Send test' }).click();
  await card(okUrl).locator('.flash', { hasText: /^Test delivered: HTTP 200/ }).waitFor({ timeout: 35_000 });
  await card(downUrl).getByRole('button', { name: 'Send test' }).click();
  await card(downUrl).locator('.flash', { hasText: /^Test failed: HTTP 500/ }).waitFor({ timeout: 35_000 });
  await page.reload();
  await expect(card(okUrl).locator('[data-success-rate]').textContent()).resolves.toBe('100% of 4 attempts in 24 h');
  await expect(card(downUrl).locator('[data-success-rate]').textContent()).resolves.toBe('0.0% of 1 attempt in 24 h');
  // The failed test is the current hour's bar, in red, and the card's last error.
  const currentHour = card(downUrl).locator('svg.chart g.chart-hour').last();
  await expect(currentHour.getAttribute('data-failed')).resolves.toBe('1');
  await expect(currentHour.locator('rect.bar-failed').count()).resolves.toBe(1);
  await expect(currentHour.locator('title').textContent()).resolves.toMatch(/^\d\d:00–now UTC: 0 succeeded, 1 failed$/);
  await expect(card(downUrl).locator('[data-last-error]').textContent()).resolves.toMatch(/^HTTP 500 · /);
  await expect(card(okUrl).locator('[data-last-error]').textContent()).resolves.toBe('None recorded');
  await expect(card(okUrl).locator('[data-health-circuit]').textContent()).resolves.toBe('Closed: deliveries flow normally');
  await checkPage('01-cards-health');

  // ---- Edit: an invalid URL is refused inline, then a valid change is saved (PRG) ----
  await card(downUrl).getByRole('link', { name: 'Edit' }).click();
  await page.waitForURL('**/edit');
  await expect(page.getByLabel('Target URL').inputValue()).resolves.toBe(downUrl);
  await checkPage('02-edit');
  await page.getByLabel('Target URL').fill('https://user:pw@example.com/x');
  await page.getByLabel('Set a value').fill('short');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#field-url-error').waitFor();
  await expect(page.locator('#field-url-error').textContent()).resolves.toMatch(/^must not contain a username or password/);
  await expect(page.locator('#field-secret-error').textContent()).resolves.toBe('must be at least 8 characters');
  await expect(page.getByLabel('Set a value').inputValue()).resolves.toBe('');
  await checkPage('03-edit-errors');
  const fixedUrl = `${downUrl}-fixed`;
  await page.getByLabel('Target URL').fill(fixedUrl);
  await page.getByLabel('Scope (parser)').fill('invoices');
  await page.getByLabel('Set a value').fill('zap-static-secret');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.waitForURL('**/dashboard/integrations/webhooks');
  await card(fixedUrl).locator('.flash', { hasText: 'Webhook updated' }).waitFor();
  await expect(card(fixedUrl).textContent()).resolves.toContain('Parser invoices');
  await expect(card(fixedUrl).textContent()).resolves.toContain('X-Webhook-Secret is sent');
  await expect(page.content()).resolves.not.toContain('zap-static-secret');

  // ---- the delivery log, filtered by event and status ----
  await card(okUrl).getByRole('link', { name: 'Delivery log' }).click();
  await expect(page.locator('details.delivery').count()).resolves.toBe(2);
  // Another event: none of this webhook's deliveries.
  await page.getByLabel('Event').selectOption('batch.failed');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/event=batch\.failed/);
  await expect(page.locator('details.delivery').count()).resolves.toBe(0);
  await expect(page.locator('.empty').textContent()).resolves.toContain('No deliveries for batch.failed yet.');
  // Its own event: the published one and the test send's (a test send sends an event the webhook is subscribed to).
  await page.getByLabel('Event').selectOption('batch.completed');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/event=batch\.completed/);
  await expect(page.locator('details.delivery').count()).resolves.toBe(2);
  await expect(page.locator('details.delivery summary code').allTextContents()).resolves.toEqual(['batch.completed', 'batch.completed']);
  await page.getByLabel('Status').selectOption('failed');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/status=failed/);
  await expect(page.locator('.empty').textContent()).resolves.toContain('No deliveries for batch.completed with status Failed yet.');
  await expect(page.getByLabel('Event').inputValue()).resolves.toBe('batch.completed');
  await checkPage('04-delivery-log-filtered');

  expect(cspViolations).toEqual([]);
  expect(pageErrors).toEqual([]);
});
