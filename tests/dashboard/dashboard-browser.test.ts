import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { launchBrowser, newContext, screenshotter, watchPage, unlabelledFields } from '../support/browser';
import { startReceiver, type Receiver } from '../support/receiver';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';
import { createWebhook } from '../../apps/api/src/services/webhooks';

// The Integrations dashboard in a real browser (Debian's Chromium through
// playwright-core) against the real API, a real worker and a real receiver:
// sign in, add a webhook, reveal and copy its secret, send a test, watch real
// batch.* callbacks and a failing one in the delivery log, retry, pause,
// delete, CSRF, sign out and key revocation.

jest.setTimeout(90_000);

// Browser globals, used only inside page.evaluate callbacks (the project compiles without the DOM lib).
type El = { textContent: string | null; outerHTML: string; labels?: unknown[]; getAttribute(name: string): string | null };
declare const document: { activeElement: El; scrollingElement: { scrollWidth: number }; querySelectorAll(selector: string): ArrayLike<El> };
declare const navigator: { clipboard: { readText(): Promise<string>; writeText(text: string): Promise<void> } };
declare function getComputedStyle(el: El): { outlineStyle: string };
declare function fetch(url: string, init: Record<string, unknown>): Promise<{ status: number }>;

// Long enough to see a delivery sit in pending_retry, short next to the 5m default.
const RETRY_SCHEDULE = [15_000, 15_000, 15_000];

let api: ApiHarness;
let worker: WorkerHarness;
let receiver: Receiver;
let server: Server;
let baseURL: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const shot = screenshotter('dashboard');
const cspViolations: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  api = await startApiHarness();
  worker = await startWorkerHarness({
    databaseUrl: api.database.url,
    prefix: api.prefix,
    encryptionKey: api.encryptionKey,
    config: { ALLOW_PRIVATE_TARGETS: true, RETRY_SCHEDULE },
  });
  receiver = await startReceiver({ status: 200, body: '{"received":true}' });
  server = await new Promise<Server>((resolve) => {
    const s = api.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
  context = await newContext(browser, { baseURL, clipboard: true });
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

/** Checks every page against the quality bar, at desktop width and at 375 px, with a screenshot of each. */
async function checkPage(name: string) {
  await shot(page, name);
  expect(await unlabelledFields(page)).toEqual([]);
  const unnamedButtons = await page.evaluate(() =>
    Array.from(document.querySelectorAll('button:not([hidden])')).filter((b) => !b.textContent?.trim()).map((b) => b.outerHTML),
  );
  expect(unnamedButtons).toEqual([]);
  const desktop = page.viewportSize()!;
  await page.setViewportSize({ width: 375, height: 740 });
  const scrollWidth = await page.evaluate(() => document.scrollingElement.scrollWidth);
  expect({ page: name, scrollWidth }).toEqual({ page: name, scrollWidth: expect.any(Number) });
  expect(scrollWidth).toBeLessThanOrEqual(375);
  await shot(page, `${name}-375px`);
  await page.setViewportSize(desktop);
}

const card = (url: string): Locator => page.locator('article.card').filter({ has: page.locator('h3.url', { hasText: url }) });
const deliveryItem = (event: string): Locator => page.locator('details.delivery').filter({ has: page.locator('summary code', { hasText: event }) });

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const found = await waitUntil(async () => {
    const value = await read();
    // Thrown, the last value is part of waitUntil's message.
    if (!ok(value)) throw new Error(`last value ${JSON.stringify(value)}`);
    return { value };
  }, what, { timeoutMs, intervalMs: 100 });
  return found.value;
}

async function signIn(key: string) {
  await page.goto('/dashboard');
  await page.locator('#api_key').fill(key);
  await page.locator('#api_key').press('Enter');
  await page.waitForURL('**/dashboard/integrations/webhooks');
}

async function reportExtraction(accountId: string, status: 'completed' | 'failed') {
  const ext = await api.platform.post('/internal/v1/extractions', { account_id: accountId, parser_id: 'invoices', document_count: 1 });
  expect(ext.status).toBe(201);
  const id = ext.body.extraction.extraction_id as string;
  const body = status === 'completed' ? { status, file_name: 'a.pdf', result: { total: 12 } } : { status, file_name: 'b.pdf', error: 'unreadable' };
  expect((await api.platform.post(`/internal/v1/extractions/${id}/documents/doc-1`, body)).status).toBe(202);
  return id;
}

it('lets an integrator manage webhooks end to end in a real browser', async () => {
  const account = await api.integrator({ plan: 'pro', mode: 'test' });
  const prisma = api.deps.db.prisma;

  // ---- sign-in page: keyboard first ----
  await page.goto('/dashboard');
  await expect(page.title()).resolves.toBe('Sign in · Hookline');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => {
    const el = document.activeElement;
    return { text: el.textContent, outline: getComputedStyle(el).outlineStyle };
  });
  expect(focused).toEqual({ text: 'Skip to content', outline: 'solid' });
  await checkPage('01-sign-in');

  await page.locator('#api_key').fill('hk_test_wrongwrongwrongwrongwrongwrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.field-error', { hasText: 'That API key is unknown or revoked' }).waitFor();

  await signIn(account.key);
  const cookies = await context.cookies();
  const sid = cookies.find((c) => c.name === 'hl_dash_sid')!;
  expect(sid).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/dashboard' });
  expect(sid.value).not.toContain(account.key);
  await expect(page.content()).resolves.not.toContain(account.key);

  // ---- empty state ----
  await expect(page.locator('.empty').textContent()).resolves.toContain('No webhooks yet — add one to receive batch.* callbacks');
  await checkPage('02-webhooks-empty');

  // ---- Add Webhook: a bad URL is shown next to its field, input kept ----
  await page.getByRole('link', { name: 'Add Webhook' }).first().click();
  await page.getByLabel('Target URL').fill('ftp://example.com/hooks');
  await page.getByLabel('Custom Verification Header').fill('zap-static-secret');
  await page.getByRole('button', { name: 'Add Webhook' }).click();
  await page.locator('#field-url-error').waitFor();
  await expect(page.locator('#field-url-error').textContent()).resolves.toMatch(/^must be an absolute http\(s\) URL/);
  await expect(page.getByLabel('Target URL').getAttribute('aria-describedby')).resolves.toContain('field-url-error');
  await expect(page.getByLabel('Target URL').inputValue()).resolves.toBe('ftp://example.com/hooks');
  await expect(page.getByLabel('Custom Verification Header').inputValue()).resolves.toBe('zap-static-secret');
  await checkPage('03-add-webhook-error');

  await page.getByLabel('Target URL').fill(receiver.url);
  await page.getByRole('button', { name: 'Add Webhook' }).click();
  await page.locator('article.card').waitFor();
  const row = await prisma.webhook.findFirstOrThrow({ where: { accountId: account.accountId } });
  expect(row).toMatchObject({ source: 'dashboard', url: receiver.url, parserId: null, events: ['batch.completed', 'batch.failed', 'batch.partial'] });
  const secret = api.deps.secretBox.decrypt(row.signingSecretEnc);
  const hook = card(receiver.url);
  await expect(hook.locator('.card-head .badge').textContent()).resolves.toBe('Active');
  await expect(hook.textContent()).resolves.toContain('All parsers');
  await expect(hook.textContent()).resolves.toContain('batch.completed');
  await expect(hook.textContent()).resolves.toContain('No deliveries yet');
  await expect(page.content()).resolves.not.toContain(secret);

  // ---- Copy (before revealing: fetched with the CSRF header) and Reveal ----
  await hook.getByRole('button', { name: 'Copy' }).click();
  await hook.locator('.copy-status', { hasText: 'Copied to the clipboard.' }).waitFor();
  await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(secret);
  await page.evaluate(() => navigator.clipboard.writeText(''));
  await hook.getByRole('button', { name: 'Reveal' }).click();
  await hook.locator('code.secret-value[data-revealed="true"]').waitFor();
  await expect(card(receiver.url).locator('code.secret-value').textContent()).resolves.toBe(secret);
  await card(receiver.url).getByRole('button', { name: 'Copy' }).click();
  await card(receiver.url).locator('.copy-status', { hasText: 'Copied to the clipboard.' }).waitFor();
  await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(secret);
  await checkPage('04-webhook-secret-revealed');

  // ---- Send test: the attempt's outcome, status code and duration ----
  await card(receiver.url).getByRole('button', { name: 'Send test' }).click();
  await card(receiver.url).locator('.flash', { hasText: /^Test (delivered|failed)/ }).waitFor({ timeout: 35_000 });
  await expect(card(receiver.url).locator('.flash').textContent()).resolves.toMatch(/^Test delivered: HTTP 200 in \d+ ms\.$/);
  const [testCallback] = await receiver.waitFor(1);
  // A test send sends an event the webhook is subscribed to: the first of its events in the catalog.
  expect(JSON.parse(testCallback.body)).toMatchObject({ event: 'batch.completed', test: true });
  expect(testCallback.headers['x-webhook-secret']).toBe('zap-static-secret');
  await expect(card(receiver.url).textContent()).resolves.toContain('HTTP 200');
  // times are rewritten in the viewer's locale; the ISO text stays in datetime=""
  const time = await page.locator('article.card time').first().evaluate((el) => ({ iso: el.getAttribute('datetime'), text: el.textContent }));
  expect(time.text).not.toBe(time.iso);
  expect(new Date(time.iso!).toISOString()).toBe(time.iso);

  // ---- a real extraction: its batch.completed callback in the delivery log ----
  await reportExtraction(account.accountId, 'completed');
  const afterBatch = await receiver.waitFor(2);
  expect(afterBatch[1].headers['x-perfectparser-event']).toBe('batch.completed');
  // The extraction's own delivery (the test send above was a batch.completed too).
  const real = await eventually(() => prisma.delivery.findFirst({ where: { webhookId: row.id, event: 'batch.completed', eventRecord: { test: false } } }), (d) => d?.status === 'succeeded', 'batch.completed delivered');
  await card(receiver.url).getByRole('link', { name: 'Delivery log' }).click();
  await page.locator('h1', { hasText: 'Delivery log' }).waitFor();
  expect(await deliveryItem('batch.completed').count()).toBe(2);
  const completed = page.locator(`details.delivery[data-delivery-id="${real!.id}"]`);
  await expect(completed.locator('summary .badge').textContent()).resolves.toBe('Succeeded');
  await completed.locator('summary').click();
  await expect(completed.locator('.attempt').first().textContent()).resolves.toMatch(/Status code\s*200/);
  await expect(completed.locator('.attempt').first().textContent()).resolves.toMatch(/Duration\s*\d+ ms/);
  await expect(completed.locator('.body-preview').textContent()).resolves.toBe('{"received":true}');

  // ---- the receiver fails: the delivery waits for its scheduled retry ----
  receiver.respond({ status: 500, body: '{"error":"upstream broke"}' });
  await reportExtraction(account.accountId, 'failed');
  await receiver.waitFor(3);
  const failing = await eventually(
    () => prisma.delivery.findFirst({ where: { webhookId: row.id, event: 'batch.failed' } }),
    (d) => d?.status === 'pending_retry',
    'batch.failed pending_retry',
  );
  await page.getByLabel('Status').selectOption('pending_retry');
  await page.getByRole('button', { name: 'Filter' }).click();
  // The filter form also sends its (empty) event select.
  await page.waitForURL(/\/deliveries\?status=pending_retry(&event=)?$/);
  expect(await page.locator('details.delivery').count()).toBe(1);
  const retrying = deliveryItem('batch.failed');
  await expect(retrying.locator('summary .badge').textContent()).resolves.toBe('Pending retry');
  await expect(retrying.locator('summary').textContent()).resolves.toContain('next attempt');
  const nextAt = await retrying.locator('summary time').last().getAttribute('datetime');
  expect(new Date(nextAt!).getTime()).toBe(failing!.nextAttemptAt!.getTime());
  await retrying.locator('summary').click();
  await expect(retrying.locator('.attempt').first().textContent()).resolves.toMatch(/Status code\s*500/);
  await expect(retrying.locator('.body-preview').textContent()).resolves.toBe('{"error":"upstream broke"}');
  await checkPage('05-delivery-log-pending-retry');

  // ---- Retry now: one more attempt, which succeeds ----
  receiver.respond({ status: 200, body: '{"received":true}' });
  await retrying.getByRole('button', { name: 'Retry' }).click();
  await page.locator('.flash', { hasText: 'Retry queued for batch.failed' }).waitFor();
  await receiver.waitFor(4);
  await eventually(() => prisma.delivery.findUnique({ where: { id: failing!.id } }), (d) => d?.status === 'succeeded', 'retried delivery succeeded');
  await page.goto(`/dashboard/integrations/webhooks/${row.id}/deliveries`);
  const retried = deliveryItem('batch.failed');
  await expect(retried.locator('summary .badge').textContent()).resolves.toBe('Succeeded');
  await expect(retried.locator('summary').textContent()).resolves.toContain('2 attempts');
  expect(await page.locator('details.delivery').count()).toBe(3);
  await checkPage('06-delivery-log');

  // ---- Pause, then Delete with a confirmation step ----
  await page.getByRole('link', { name: '← Webhooks' }).click();
  await card(receiver.url).waitFor();
  await card(receiver.url).getByRole('button', { name: 'Pause' }).click();
  await card(receiver.url).locator('.card-head .badge', { hasText: 'Paused' }).waitFor();
  await card(receiver.url).getByRole('button', { name: 'Resume' }).waitFor();
  await expect(prisma.webhook.findUnique({ where: { id: row.id } })).resolves.toMatchObject({ isActive: false });
  await checkPage('07-webhook-paused');

  await card(receiver.url).getByRole('link', { name: 'Delete' }).click();
  await page.locator('h1', { hasText: 'Delete this webhook?' }).waitFor();
  await checkPage('08-confirm-delete');
  await page.getByRole('button', { name: 'Delete webhook' }).click();
  await page.locator('.flash', { hasText: 'Webhook deleted' }).waitFor();
  expect(await page.locator('article.card').count()).toBe(0);
  await expect(page.locator('.empty').textContent()).resolves.toContain('No webhooks yet');
  await expect(prisma.webhook.findUnique({ where: { id: row.id } })).resolves.toMatchObject({ deletedAt: expect.any(Date) });

  // ---- CSRF: a form posted with a wrong token is refused ----
  const forged = await page.request.post('/dashboard/integrations/webhooks', { form: { _csrf: 'not-the-token', url: 'https://example.com/evil' }, maxRedirects: 0 });
  expect(forged.status()).toBe(403);
  expect(await forged.text()).toContain('This form has expired or did not come from this dashboard');
  const viaFetch = await page.evaluate(async () => {
    const res = await fetch('/dashboard/integrations/webhooks', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'url=https%3A%2F%2Fexample.com%2Fevil' });
    return res.status;
  });
  expect(viaFetch).toBe(403);
  await expect(prisma.webhook.count({ where: { accountId: account.accountId, deletedAt: null } })).resolves.toBe(0);

  // ---- sign out ----
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/dashboard?signed_out=1');
  await expect(page.locator('.flash').textContent()).resolves.toBe('You are signed out.');
  await page.goto('/dashboard/integrations/webhooks');
  await page.waitForURL('**/dashboard');
  await expect(page.locator('h1').textContent()).resolves.toBe('Sign in to the dashboard');

  // ---- a revoked key ends its session at the next request ----
  await signIn(account.key);
  await expect(api.redis.keys(`${api.prefix}:dash:sess:*`)).resolves.toHaveLength(1);
  expect((await api.platform.delete(`/internal/v1/api-keys/${account.keyId}`)).status).toBe(204);
  await page.reload();
  await expect(page.locator('.flash').textContent()).resolves.toBe('Your session ended because its API key was revoked. Sign in with an active key.');
  await expect(api.redis.keys(`${api.prefix}:dash:sess:*`)).resolves.toHaveLength(0);
  await checkPage('09-session-ended');

  expect(cspViolations).toEqual([]);
  expect(pageErrors).toEqual([]);
});

it('shows an open circuit on its webhook card, readable at 375 px', async () => {
  const account = await api.integrator({ plan: 'pro', mode: 'test' });
  const auth = { accountId: account.accountId, mode: 'test' as const };
  const openUrl = 'https://example.com/circuit-open';
  const { webhook } = await createWebhook(api.deps, auth, { url: openUrl, events: ['batch.completed'], max_in_flight: 2, rate_limit_per_second: 5 }, 'dashboard');
  await createWebhook(api.deps, auth, { url: 'https://example.com/circuit-closed', events: ['batch.completed'] }, 'dashboard');
  // As the worker leaves it after repeated failures.
  const retryAt = new Date(Date.now() + 10 * 60_000);
  await api.deps.db.prisma.webhook.update({ where: { id: webhook.id }, data: { circuit: 'open', circuitRetryAt: retryAt, circuitCooldownMs: 600_000 } });

  await signIn(account.key);
  const hook = card(openUrl);
  const circuit = hook.locator('[data-circuit="open"]');
  await circuit.waitFor();
  await expect(circuit.locator('.badge').textContent()).resolves.toBe('Circuit open');
  await expect(circuit.textContent()).resolves.toMatch(/Next probe at .+\.$/);
  await expect(circuit.locator('time').getAttribute('datetime')).resolves.toBe(retryAt.toISOString());
  await expect(hook.locator('[data-limits]').textContent()).resolves.toBe('At most 2 in flight · 5 per second');
  await expect(card('https://example.com/circuit-closed').locator('[data-circuit]').count()).resolves.toBe(0);
  await checkPage('10-circuit-open');

  // At 375 px the whole line stays inside the card, wrapped rather than cut off.
  const desktop = page.viewportSize()!;
  await page.setViewportSize({ width: 375, height: 740 });
  const [line, box] = await Promise.all([circuit.boundingBox(), hook.boundingBox()]);
  expect(line!.x).toBeGreaterThanOrEqual(box!.x);
  expect(line!.x + line!.width).toBeLessThanOrEqual(box!.x + box!.width);
  await expect(circuit.isVisible()).resolves.toBe(true);
  await page.setViewportSize(desktop);

  expect(cspViolations).toEqual([]);
  expect(pageErrors).toEqual([]);
});
