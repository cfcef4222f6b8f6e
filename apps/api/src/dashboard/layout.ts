import { ASSET_VERSION } from './assets';
import { html, type SafeHtml } from './html';
import type { Flash } from './session';

// The page shell and the small pieces every page shares. Everything here is
// server-rendered; the one local script only formats times and copies secrets.

export const BASE = '/dashboard';

export type Viewer = { accountName: string; accountId: string; keyPrefix: string; mode: 'live' | 'test'; csrfToken: string };

export type PageOptions = {
  title: string;
  body: SafeHtml;
  viewer?: Viewer | null;
  /** Which sidebar entry is current. */
  section?: 'integrations' | null;
};

export const path = (...parts: string[]) => [BASE, ...parts.map(encodeURIComponent)].join('/');

export function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${token}">`;
}

/** A `<time>` whose ISO text is the no-JS fallback; dashboard.js rewrites it in the viewer's locale. */
export function timeTag(iso: string | null | undefined, empty = '—'): SafeHtml {
  if (!iso) return html`${empty}`;
  return html`<time datetime="${iso}">${iso}</time>`;
}

export function flashBanner(flash: Flash | null | undefined): SafeHtml {
  if (!flash) return html``;
  return html`<div class="flash flash-${flash.tone}" role="${flash.tone === 'error' ? 'alert' : 'status'}">${flash.message}</div>`;
}

/** A one-button POST form: every action that changes something is a real <button> in a CSRF-protected form. */
export function actionButton(opts: { action: string; label: string; csrfToken: string; tone?: 'primary' | 'danger' | 'plain'; name?: string; extra?: SafeHtml }): SafeHtml {
  return html`<form method="post" action="${opts.action}" class="inline-form">${csrfField(opts.csrfToken)}${opts.extra ?? ''}<button type="submit" class="btn btn-${opts.tone ?? 'plain'}"${opts.name ? html` name="${opts.name}"` : ''}>${opts.label}</button></form>`;
}

function topbar(viewer: Viewer | null | undefined): SafeHtml {
  if (!viewer) return html`<header class="topbar"><a class="brand" href="${BASE}">Hookline</a></header>`;
  return html`<header class="topbar">
  <a class="brand" href="${BASE}">Hookline</a>
  <div class="whoami">
    <span class="account">${viewer.accountName}</span>
    <span class="key-hint">key ${viewer.keyPrefix}… <span class="mode mode-${viewer.mode}">${viewer.mode}</span></span>
    <form method="post" action="${path('sign-out')}" class="inline-form">${csrfField(viewer.csrfToken)}<button type="submit" class="btn btn-plain">Sign out</button></form>
  </div>
</header>`;
}

function sidebar(section: PageOptions['section']): SafeHtml {
  return html`<nav class="sidebar" aria-label="Dashboard">
  <ul>
    <li><a href="${path('integrations', 'webhooks')}"${section === 'integrations' ? html` aria-current="page"` : ''}>Integrations</a></li>
  </ul>
</nav>`;
}

export function page(opts: PageOptions): SafeHtml {
  const signedIn = Boolean(opts.viewer);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · Hookline</title>
<link rel="stylesheet" href="${BASE}/assets/dashboard.css?v=${ASSET_VERSION}">
<script src="${BASE}/assets/dashboard.js?v=${ASSET_VERSION}" defer></script>
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
${topbar(opts.viewer)}
<div class="${signedIn ? 'shell' : 'shell shell-single'}">
${signedIn ? sidebar(opts.section) : ''}
<main id="main" tabindex="-1">
${opts.body}
</main>
</div>
</body>
</html>`;
}
