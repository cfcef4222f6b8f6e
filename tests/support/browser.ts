import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

// Browser tests drive Debian's Chromium through playwright-core: Playwright's
// own browser downloads (`npx playwright install`) cannot reach their host from
// the development and CI machines.
// Each launch gets a fresh temporary profile (user-data dir) that Playwright
// deletes on close.

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export const ARTIFACTS_DIR = join(__dirname, '..', '..', 'test-artifacts');

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install it with "apt-get install -y chromium" or set CHROMIUM_PATH.`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
}

/** A context for one origin; `clipboard` grants read/write so a test can read back what the page copied. */
export async function newContext(browser: Browser, opts: { baseURL: string; clipboard?: boolean; width?: number }): Promise<BrowserContext> {
  const context = await browser.newContext({
    baseURL: opts.baseURL,
    viewport: { width: opts.width ?? 1024, height: 800 },
    locale: 'en-GB',
    timezoneId: 'Europe/Paris',
  });
  if (opts.clipboard) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: opts.baseURL });
  context.setDefaultTimeout(10_000);
  return context;
}

/** Full-page screenshots under test-artifacts/<folder>/ (git-ignored), for a human to look at. */
export function screenshotter(folder: string) {
  const dir = join(ARTIFACTS_DIR, folder);
  mkdirSync(dir, { recursive: true });
  return (page: Page, name: string) => page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

/** Collects the page's Content-Security-Policy refusals and uncaught errors into the given lists (a test expects both empty). */
export function watchPage(page: Page, found: { cspViolations: string[]; pageErrors: string[] }): void {
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to (load|execute|apply)/i.test(msg.text())) found.cspViolations.push(msg.text());
  });
  page.on('pageerror', (err) => found.pageErrors.push(err.message));
}

/** The form fields of the page that have no label (a <label>, aria-label or aria-labelledby), as HTML. */
export function unlabelledFields(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('input:not([type="hidden"]), select, textarea'))
      .filter((el) => !(el as HTMLInputElement).labels?.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      .map((el) => el.outerHTML),
  );
}
