import { createHash } from 'node:crypto';

// The dashboard's only two assets, served from this process (the CSP allows
// nothing from another host). Kept in TypeScript so every way of running the
// API (tsx, jest, a bundle) ships them without a copy step.

export const DASHBOARD_CSS = `
:root {
  --bg: #f6f7f9; --panel: #fff; --text: #1d2330; --muted: #5b6474; --line: #d9dde4;
  --accent: #1f5fd1; --accent-text: #fff; --danger: #b42318; --ok: #067647; --warn: #b54708;
  --focus: #ffbf47; --radius: 8px;
  color-scheme: light;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  line-height: 1.5;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text); font-size: 1rem; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .875rem; }
code { overflow-wrap: anywhere; }
h1 { font-size: 1.5rem; margin: .25rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 0; }
h3 { font-size: 1rem; margin: 0; }
h4 { font-size: .9rem; margin: 0 0 .25rem; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip-link { position: absolute; left: -9999px; top: 0; background: var(--panel); padding: .5rem 1rem; z-index: 10; }
.skip-link:focus { left: .5rem; }
.topbar { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between; padding: .75rem 1rem; background: #111827; color: #f3f4f6; }
.topbar .brand { color: #fff; font-weight: 700; text-decoration: none; font-size: 1.1rem; }
.whoami { display: flex; flex-wrap: wrap; gap: .5rem .75rem; align-items: center; font-size: .875rem; min-width: 0; }
.whoami .btn { color: #f3f4f6; border-color: #6b7280; background: transparent; }
.key-hint { color: #cbd5e1; overflow-wrap: anywhere; }
.mode { border-radius: 999px; padding: 0 .5rem; font-size: .75rem; font-weight: 600; }
.mode-live { background: #d1fadf; color: #05603a; }
.mode-test { background: #fef0c7; color: #93370d; }
.shell { display: grid; grid-template-columns: 12rem minmax(0, 1fr); min-height: calc(100vh - 3.5rem); }
.shell-single { grid-template-columns: minmax(0, 1fr); }
.sidebar { background: var(--panel); border-right: 1px solid var(--line); padding: 1rem .5rem; }
.sidebar ul { list-style: none; margin: 0; padding: 0; }
.sidebar a { display: block; padding: .5rem .75rem; border-radius: var(--radius); text-decoration: none; color: var(--text); }
.sidebar a[aria-current="page"] { background: #e8effc; color: var(--accent); font-weight: 600; }
main { padding: 1.25rem; min-width: 0; max-width: 60rem; width: 100%; }
main:focus { outline: none; }
.narrow { max-width: 34rem; }
.tabs { display: flex; gap: .25rem; border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
.tabs a { padding: .5rem .75rem; text-decoration: none; color: var(--muted); border-bottom: 3px solid transparent; }
.tabs a[aria-current="page"] { color: var(--text); border-bottom-color: var(--accent); font-weight: 600; }
.section-head { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; justify-content: space-between; }
.muted, .hint { color: var(--muted); }
.hint { font-size: .875rem; margin: .25rem 0 0; }
.crumbs { margin: 0 0 .5rem; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: 1rem; }
.cards, .deliveries, .attempts { list-style: none; margin: 0; padding: 0; display: grid; gap: 1rem; }
.card-head { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-start; justify-content: space-between; }
.url { overflow-wrap: anywhere; word-break: break-word; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .95rem; }
.badge { display: inline-block; border-radius: 999px; padding: .05rem .6rem; font-size: .8rem; font-weight: 600; border: 1px solid transparent; white-space: nowrap; font-family: system-ui, sans-serif; }
.badge-active, .badge-succeeded { background: #ecfdf3; color: var(--ok); border-color: #abefc6; }
.badge-paused, .badge-cancelled, .badge-pending { background: #f2f4f7; color: #344054; border-color: #d0d5dd; }
.badge-failing, .badge-pending_retry { background: #fffaeb; color: var(--warn); border-color: #fedf89; }
.badge-disabled, .badge-failed { background: #fef3f2; color: var(--danger); border-color: #fecdca; }
.status-detail { margin: .5rem 0 0; font-size: .9rem; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: .5rem 1rem; margin: .75rem 0; }
.facts div { min-width: 0; }
.facts dt, .response .dt { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); display: block; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.facts-compact { grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); }
.secret { border-top: 1px solid var(--line); padding-top: .75rem; margin-top: .5rem; }
.secret-row { margin: 0 0 .5rem; }
.secret-value { display: inline-block; max-width: 100%; background: #f2f4f7; border-radius: 4px; padding: .15rem .4rem; overflow-wrap: anywhere; word-break: break-all; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
.card-actions { border-top: 1px solid var(--line); padding-top: .75rem; margin-top: .75rem; }
.inline-form { display: inline; margin: 0; }
.btn { display: inline-block; font: inherit; font-size: .9rem; line-height: 1.3; padding: .45rem .9rem; border-radius: var(--radius); border: 1px solid var(--line); background: var(--panel); color: var(--text); text-decoration: none; cursor: pointer; min-height: 2.25rem; }
.btn:hover { filter: brightness(.96); }
.btn-primary { background: var(--accent); border-color: var(--accent); color: var(--accent-text); }
.btn-danger { background: var(--danger); border-color: var(--danger); color: #fff; }
.btn-danger-outline { color: var(--danger); border-color: #fda29b; }
.stack { display: grid; gap: 1rem; }
.field { display: grid; gap: .25rem; }
.field label { font-weight: 600; }
.optional { font-weight: 400; color: var(--muted); }
input[type="text"], input[type="url"], input[type="password"], select { font: inherit; width: 100%; max-width: 100%; padding: .5rem .6rem; border: 1px solid #98a2b3; border-radius: 6px; background: #fff; color: var(--text); }
.field-invalid input { border-color: var(--danger); }
.field-error { color: var(--danger); font-weight: 600; margin: 0; font-size: .9rem; }
.flash { border-radius: var(--radius); padding: .6rem .8rem; margin: .75rem 0; border: 1px solid var(--line); background: var(--panel); overflow-wrap: anywhere; }
.flash-success { border-color: #abefc6; background: #ecfdf3; }
.flash-error { border-color: #fecdca; background: #fef3f2; }
.flash-info { border-color: #b2ccff; background: #eff4ff; }
.empty { background: var(--panel); border: 1px dashed #98a2b3; border-radius: var(--radius); padding: 1.25rem; text-align: center; }
.pager { display: flex; gap: 1rem; justify-content: space-between; margin: 1rem 0; }
.filter { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; margin: 1rem 0; }
.field-inline { min-width: 12rem; }
.delivery { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); }
.delivery summary { cursor: pointer; padding: .75rem 1rem .75rem 2rem; display: flex; flex-wrap: wrap; gap: .25rem 1rem; justify-content: space-between; position: relative; list-style: none; }
.delivery summary::-webkit-details-marker { display: none; }
.delivery summary::before { content: "\\25B8"; position: absolute; left: .85rem; top: .75rem; color: var(--muted); }
.delivery[open] summary::before { content: "\\25BE"; }
.summary-main { display: inline-flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
.delivery-body { padding: 0 1rem 1rem; border-top: 1px solid var(--line); }
.attempt { border-left: 3px solid var(--line); padding-left: .75rem; }
.attempt-succeeded { border-left-color: var(--ok); }
.attempt-failed { border-left-color: var(--danger); }
.attempt-head { margin: .5rem 0 0; }
.body-preview { white-space: pre-wrap; word-break: break-all; background: #f2f4f7; border-radius: 4px; padding: .5rem; margin: .25rem 0 0; max-height: 12rem; overflow: auto; }
@media (max-width: 40rem) {
  .shell { grid-template-columns: minmax(0, 1fr); align-content: start; }
  .sidebar { border-right: 0; border-bottom: 1px solid var(--line); padding: .25rem .5rem; }
  .sidebar ul { display: flex; gap: .25rem; }
  main { padding: 1rem .75rem; }
  .facts { grid-template-columns: minmax(0, 1fr); }
}
@media (prefers-reduced-motion: no-preference) { .btn { transition: filter .1s; } }
`;

// Formats <time> in the viewer's locale and wires the Copy buttons. Everything
// works without it: times fall back to ISO text, secrets can be selected by hand.
export const DASHBOARD_JS = `(function () {
  'use strict';
  function localTimes(root) {
    root.querySelectorAll('time[datetime]').forEach(function (el) {
      var iso = el.getAttribute('datetime');
      var d = new Date(iso);
      if (isNaN(d.getTime())) return;
      el.textContent = d.toLocaleString();
      el.title = iso;
    });
  }

  function fallbackCopy(text) {
    var area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.left = '-9999px';
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () { return fallbackCopy(text); });
    }
    return Promise.resolve(fallbackCopy(text));
  }

  function secretFor(button) {
    var target = document.getElementById(button.getAttribute('data-copy-target'));
    if (target && target.getAttribute('data-revealed') === 'true') return Promise.resolve(target.textContent);
    // Not revealed yet: fetch it from the CSRF-protected JSON endpoint.
    return fetch(button.getAttribute('data-secret-url'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': button.getAttribute('data-csrf'), 'Accept': 'application/json' }
    }).then(function (res) {
      if (!res.ok) throw new Error('HTTP ' + res.status);
      return res.json();
    }).then(function (body) { return body.signing_secret; });
  }

  function wireCopy(button) {
    var id = button.getAttribute('data-copy-secret');
    var status = document.querySelector('[data-copy-status="' + id + '"]');
    button.hidden = false;
    button.addEventListener('click', function () {
      secretFor(button).then(function (secret) {
        return copyText(secret).then(function (ok) {
          if (status) status.textContent = ok ? 'Copied to the clipboard.' : 'Copy failed: press Reveal and copy the secret by hand.';
        });
      }).catch(function () {
        if (status) status.textContent = 'Could not copy the secret; reload the page and try again.';
      });
    });
  }

  function start() {
    localTimes(document);
    document.querySelectorAll('[data-copy-secret]').forEach(wireCopy);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
`;

export const assetEtag = (text: string) => `"${createHash('sha256').update(text).digest('base64url').slice(0, 16)}"`;
