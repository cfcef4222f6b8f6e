import type { SendErrorCode, webhookResource } from '@hookline/domain';
import type { LastDelivery } from '../services/deliveries';
import type { WebhookHealth } from '../services/webhook-health';
import { healthSection, lastErrorText } from './health-views';
import { html, type SafeHtml } from './html';
import { actionButton, csrfField, flashBanner, page, path, timeTag, type Viewer } from './layout';
import type { Flash } from './session';

export type WebhookView = ReturnType<typeof webhookResource>;

export type WebhookCard = { webhook: WebhookView; lastDelivery: LastDelivery; health: WebhookHealth; revealedSecret?: string };

const DISABLED_REASONS: Record<string, string> = {
  failing_too_long: 'Disabled: deliveries kept failing for too long with nothing succeeding. Fix the endpoint, then press Resume to re-enable it.',
  gone: 'Disabled: the endpoint answered 410 Gone, which means "stop sending". Press Resume once it accepts callbacks again.',
};

const STATUS_LABELS: Record<string, string> = { active: 'Active', paused: 'Paused', failing: 'Failing', disabled: 'Disabled' };

export const DELIVERY_STATUS_LABELS: Record<string, string> = {
  pending: 'Pending',
  pending_retry: 'Pending retry',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/** The dashboard's words for each way a send fails (every code has them: webhook-views.test.ts). */
export const ATTEMPT_ERRORS: Record<SendErrorCode, string> = {
  timeout: 'timed out',
  connection_refused: 'connection refused',
  connection_reset: 'connection reset',
  dns_failure: 'DNS lookup failed',
  blocked_address: 'blocked: the address is private or loopback',
  tls_error: 'TLS error',
  redirect: 'redirect (not followed)',
  invalid_url: 'invalid URL',
  network_error: 'network error',
  proxy_error: 'the egress proxy failed',
};

// A code recorded by an older version and since retired still reads as words.
export const describeError = (code: string) => (ATTEMPT_ERRORS as Record<string, string>)[code] ?? code.replace(/_/g, ' ');

export function statusBadge(status: string): SafeHtml {
  return html`<span class="badge badge-${status}">${STATUS_LABELS[status] ?? status}</span>`;
}

export function deliveryBadge(status: string): SafeHtml {
  return html`<span class="badge badge-${status}" data-status="${status}">${DELIVERY_STATUS_LABELS[status] ?? status}</span>`;
}

function statusDetail(webhook: WebhookView): SafeHtml {
  if (webhook.status === 'disabled') {
    const words = DISABLED_REASONS[webhook.disabled_reason ?? ''] ?? 'Disabled by the service. Press Resume to re-enable it.';
    return html`<p class="status-detail">${words}</p>`;
  }
  if (webhook.status === 'failing') {
    return html`<p class="status-detail">Failing since ${timeTag(webhook.failing_since)}: the last delivery used up its retries and nothing has succeeded since. Check the delivery log.</p>`;
  }
  if (webhook.status === 'paused') return html`<p class="status-detail">Paused: no callbacks are sent until you resume it.</p>`;
  return html``;
}

/**
 * The circuit breaker, only when it holds deliveries back: a closed circuit is
 * the normal case and says nothing. A disabled webhook shows none either:
 * resuming it closes the circuit. The badge reuses the status colours.
 */
function circuitDetail(webhook: WebhookView): SafeHtml {
  if (webhook.status === 'disabled') return html``;
  if (webhook.circuit === 'open') {
    return html`<p class="status-detail" data-circuit="open"><span class="badge badge-failing">Circuit open</span> Deliveries are held after repeated failed attempts (no retry is used up while they wait). Next probe at ${timeTag(webhook.circuit_retry_at, 'any moment')}.</p>`;
  }
  if (webhook.circuit === 'half_open') {
    return html`<p class="status-detail" data-circuit="half_open"><span class="badge badge-pending_retry">Circuit half-open</span> Probing: one delivery is being tried; if it succeeds, the held deliveries flow again.</p>`;
  }
  return html``;
}

/** The circuit's state in words, on every card (the notice above explains an open or half-open one). */
function circuitFact(webhook: WebhookView): SafeHtml {
  if (webhook.status === 'disabled') return html`<span class="muted">Not in use while the webhook is disabled</span>`;
  if (webhook.circuit === 'open') return html`Open: deliveries held until the probe at ${timeTag(webhook.circuit_retry_at, 'any moment')}`;
  if (webhook.circuit === 'half_open') return html`Half-open: one probe delivery in flight`;
  return html`Closed: deliveries flow normally`;
}

/** The endpoint's own caps, when the API set them; null means the service default (or no rate cap). */
function limitsFact(webhook: WebhookView): SafeHtml {
  const parts: string[] = [];
  if (webhook.max_in_flight !== null) parts.push(`at most ${webhook.max_in_flight} in flight`);
  if (webhook.rate_limit_per_second !== null) parts.push(`${webhook.rate_limit_per_second} per second`);
  if (!parts.length) return html``;
  const text = parts.join(' · ');
  return html`<div><dt>Delivery limits</dt><dd data-limits>${text.charAt(0).toUpperCase() + text.slice(1)}</dd></div>`;
}

/** The payload filter, when set: each entry as `path = value` (or `value or value`), JSON-quoted so "1" and 1 read apart. */
function filterFact(webhook: WebhookView): SafeHtml {
  if (!webhook.filter) return html``;
  const entries = Object.entries(webhook.filter).map(([path, expected], i) => {
    const values = Array.isArray(expected) ? expected : [expected];
    return html`${i ? ' and ' : ''}<code>${path}</code> = ${values.map((v, j) => html`${j ? ' or ' : ''}<code>${JSON.stringify(v)}</code>`)}`;
  });
  return html`<div><dt>Filter</dt><dd data-filter>Only events whose data has ${entries}</dd></div>`;
}

function lastDeliveryText(last: LastDelivery): SafeHtml {
  if (!last) return html`No deliveries yet`;
  const outcome = last.responseStatus !== null ? html` · HTTP ${last.responseStatus}` : last.error ? html` · ${describeError(last.error)}` : '';
  const when = last.lastAttemptAt ?? last.createdAt;
  return html`${deliveryBadge(last.status)} <span class="muted">${last.event}${outcome} · ${timeTag(when)}</span>${
    last.status === 'pending_retry' && last.nextAttemptAt ? html`<br><span class="muted">Next attempt ${timeTag(last.nextAttemptAt)}</span>` : ''
  }`;
}

function secretSection(card: WebhookCard, csrfToken: string, cursor: string | null): SafeHtml {
  const { webhook } = card;
  if (webhook.source !== 'dashboard') {
    return html`<div class="secret">
  <h4>Signing secret</h4>
  <p class="muted">This webhook was created through the API: its signing secret was shown once, in the create response, and cannot be revealed again. Rotate it with <code>POST /v1/webhooks/${webhook.id}/rotate-secret</code> if it was lost.</p>
</div>`;
  }
  const secretId = `secret-${webhook.id}`;
  const copy = html`<button type="button" class="btn btn-plain" hidden data-copy-secret="${webhook.id}" data-copy-target="${secretId}" data-secret-url="${path('integrations', 'webhooks', webhook.id, 'secret')}" data-csrf="${csrfToken}">Copy</button>`;
  const value = card.revealedSecret
    ? html`<code class="secret-value" id="${secretId}" data-revealed="true">${card.revealedSecret}</code>`
    : html`<code class="secret-value masked" id="${secretId}">whsec_••••••••••••••••</code>`;
  return html`<div class="secret">
  <h4>Signing secret</h4>
  <p class="secret-row">${value}</p>
  <div class="actions">
    ${card.revealedSecret
      ? ''
      : actionButton({
          action: path('integrations', 'webhooks', webhook.id, 'reveal'),
          label: 'Reveal',
          csrfToken,
          // Reveal renders the same page of the list again, with this card's secret shown.
          extra: cursor ? html`<input type="hidden" name="cursor" value="${cursor}">` : undefined,
        })}
    ${copy}
    <span class="copy-status" role="status" aria-live="polite" data-copy-status="${webhook.id}"></span>
  </div>
  <p class="hint">Use it to verify each callback's HMAC-SHA256 signature header. Keep it secret.</p>
</div>`;
}

export function webhookCard(card: WebhookCard, csrfToken: string, flash: Flash | null, cursor: string | null = null): SafeHtml {
  const { webhook } = card;
  const headingId = `wh-${webhook.id}`;
  const paused = webhook.status === 'paused' || webhook.status === 'disabled';
  return html`<li>
<article class="card" aria-labelledby="${headingId}" data-webhook-id="${webhook.id}">
  <header class="card-head">
    <h3 id="${headingId}" class="url">${webhook.url}</h3>
    ${statusBadge(webhook.status)}
  </header>
  ${statusDetail(webhook)}
  ${circuitDetail(webhook)}
  ${flash && flash.webhookId === webhook.id ? flashBanner(flash) : ''}
  ${healthSection(webhook.id, card.health)}
  <dl class="facts">
    <div><dt>Scope</dt><dd>${webhook.parser_id ? html`Parser <code>${webhook.parser_id}</code>` : 'All parsers'}</dd></div>
    <div><dt>Events</dt><dd>${webhook.events.map((e, i) => html`${i ? ', ' : ''}<code>${e}</code>`)}</dd></div>
    <div><dt>Last delivery</dt><dd>${lastDeliveryText(card.lastDelivery)}</dd></div>
    <div><dt>Circuit</dt><dd data-health-circuit="${webhook.circuit}">${circuitFact(webhook)}</dd></div>
    <div><dt>Last error</dt><dd data-last-error>${lastErrorText(card.health.lastError, describeError)}</dd></div>
    ${filterFact(webhook)}
    ${limitsFact(webhook)}
    <div><dt>Verification header</dt><dd>${webhook.has_static_secret ? html`<code>X-Webhook-Secret</code> is sent` : 'None'}</dd></div>
    <div><dt>Created</dt><dd>${timeTag(webhook.created_at)} · ${webhook.source === 'dashboard' ? 'in the dashboard' : 'through the API'}</dd></div>
  </dl>
  ${secretSection(card, csrfToken, cursor)}
  <div class="actions card-actions">
    ${actionButton({ action: path('integrations', 'webhooks', webhook.id, 'test'), label: 'Send test', csrfToken, tone: 'primary' })}
    ${paused
      ? actionButton({ action: path('integrations', 'webhooks', webhook.id, 'resume'), label: 'Resume', csrfToken })
      : actionButton({ action: path('integrations', 'webhooks', webhook.id, 'pause'), label: 'Pause', csrfToken })}
    <a class="btn btn-plain" href="${path('integrations', 'webhooks', webhook.id, 'edit')}">Edit</a>
    <a class="btn btn-plain" href="${path('integrations', 'webhooks', webhook.id, 'deliveries')}">Delivery log</a>
    <a class="btn btn-danger-outline" href="${path('integrations', 'webhooks', webhook.id, 'delete')}">Delete</a>
  </div>
</article>
</li>`;
}

function tabs(): SafeHtml {
  return html`<nav class="tabs" aria-label="Integrations">
  <a href="${path('integrations', 'webhooks')}" aria-current="page">Webhooks</a>
</nav>`;
}

export function webhooksPage(opts: {
  viewer: Viewer;
  cards: WebhookCard[];
  flash: Flash | null;
  /** The cursor of this page; null on the first (newest) page. */
  cursor: string | null;
  nextCursor: string | null;
}): SafeHtml {
  const { viewer, cards, flash } = opts;
  const isFirstPage = !opts.cursor;
  const pageFlash = flash && !(flash.webhookId && cards.some((c) => c.webhook.id === flash.webhookId)) ? flash : null;
  const cardFlash = pageFlash ? null : flash;
  return page({
    title: 'Integrations · Webhooks',
    viewer,
    section: 'integrations',
    body: html`<h1>Integrations</h1>
${tabs()}
<section aria-labelledby="webhooks-heading">
  <div class="section-head">
    <h2 id="webhooks-heading">Webhooks</h2>
    <a class="btn btn-primary" href="${path('integrations', 'webhooks', 'new')}">Add Webhook</a>
  </div>
  <p class="muted">Webhooks added here receive the <code>batch.completed</code>, <code>batch.failed</code> and <code>batch.partial</code> events when an extraction batch finishes.</p>
  ${flashBanner(pageFlash)}
  ${cards.length === 0
    ? html`<div class="empty">
    <p><strong>No webhooks yet — add one to receive batch.* callbacks.</strong></p>
    <p>${isFirstPage ? html`<a class="btn btn-primary" href="${path('integrations', 'webhooks', 'new')}">Add Webhook</a>` : html`<a href="${path('integrations', 'webhooks')}">Back to the newest webhooks</a>`}</p>
  </div>`
    : html`<ul class="cards">${cards.map((card) => webhookCard(card, viewer.csrfToken, cardFlash, opts.cursor))}</ul>`}
  <nav class="pager" aria-label="Webhook pages">
    ${isFirstPage ? '' : html`<a href="${path('integrations', 'webhooks')}">← Newest</a>`}
    ${opts.nextCursor ? html`<a href="${path('integrations', 'webhooks')}?cursor=${opts.nextCursor}">Older webhooks →</a>` : ''}
  </nav>
</section>`,
  });
}

/** The Target URL input of the add and edit forms; `lead` starts the hint (the key's mode says which schemes pass). */
export function targetUrlField(value: string, error: string | undefined, live: boolean, lead = ''): SafeHtml {
  return field({
    name: 'url',
    label: 'Target URL',
    value,
    error,
    type: 'url',
    required: true,
    hint: `${lead}${live ? 'Signed in with a live key: only https:// URLs are accepted.' : 'Signed in with a test key: http:// is accepted too.'}`,
    attrs: html` inputmode="url" autocomplete="url" spellcheck="false" maxlength="2048"`,
  });
}

export type WebhookFormValues = { url: string; parser_id: string; secret: string };
export type FieldErrors = Partial<Record<keyof WebhookFormValues | 'form', string>>;

export function field(opts: {
  name: string;
  label: string;
  hint: string;
  value: string;
  error?: string;
  type?: string;
  required?: boolean;
  attrs?: SafeHtml;
}): SafeHtml {
  const id = `field-${opts.name}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = opts.error ? `${errorId} ${hintId}` : hintId;
  return html`<div class="field${opts.error ? ' field-invalid' : ''}">
  <label for="${id}">${opts.label}${opts.required ? '' : html` <span class="optional">(optional)</span>`}</label>
  <input id="${id}" name="${opts.name}" type="${opts.type ?? 'text'}" value="${opts.value}" aria-describedby="${describedBy}"${opts.required ? html` required` : ''}${opts.error ? html` aria-invalid="true"` : ''}${opts.attrs ?? ''}>
  ${opts.error ? html`<p class="field-error" id="${errorId}">${opts.error}</p>` : ''}
  <p class="hint" id="${hintId}">${opts.hint}</p>
</div>`;
}

export function addWebhookPage(opts: { viewer: Viewer; values: WebhookFormValues; errors: FieldErrors }): SafeHtml {
  const { viewer, values, errors } = opts;
  const live = viewer.mode === 'live';
  return page({
    title: 'Add Webhook',
    viewer,
    section: 'integrations',
    body: html`<p class="crumbs"><a href="${path('integrations', 'webhooks')}">← Webhooks</a></p>
<h1>Add Webhook</h1>
<p>Hookline will POST a signed JSON callback to this URL when an extraction batch completes, fails or partly fails (<code>batch.*</code> events).</p>
${errors.form ? html`<div class="flash flash-error" role="alert">${errors.form}</div>` : ''}
<form method="post" action="${path('integrations', 'webhooks')}" class="stack card" novalidate>
  ${csrfField(viewer.csrfToken)}
  ${targetUrlField(values.url, errors.url, live, live ? 'Your server\'s HTTPS endpoint, e.g. https://example.com/hooks. ' : 'Your server\'s endpoint, e.g. https://example.com/hooks. ')}
  ${field({
    name: 'parser_id',
    label: 'Scope (parser)',
    value: values.parser_id,
    error: errors.parser_id,
    hint: 'Limit callbacks to one parser by its id. Leave blank for all parsers.',
    attrs: html` autocomplete="off" spellcheck="false" maxlength="128"`,
  })}
  ${field({
    name: 'secret',
    label: 'Custom Verification Header',
    value: values.secret,
    error: errors.secret,
    hint: 'A static secret (8–256 characters) sent verbatim as X-Webhook-Secret, for tools like Zapier or Make that cannot check HMAC signatures.',
    attrs: html` autocomplete="off" spellcheck="false" maxlength="256"`,
  })}
  <div class="actions">
    <button type="submit" class="btn btn-primary">Add Webhook</button>
    <a class="btn btn-plain" href="${path('integrations', 'webhooks')}">Cancel</a>
  </div>
</form>`,
  });
}

export function confirmDeletePage(opts: { viewer: Viewer; webhook: WebhookView }): SafeHtml {
  const { viewer, webhook } = opts;
  return page({
    title: 'Delete webhook',
    viewer,
    section: 'integrations',
    body: html`<p class="crumbs"><a href="${path('integrations', 'webhooks')}">← Webhooks</a></p>
<section class="narrow card">
  <h1>Delete this webhook?</h1>
  <p class="url">${webhook.url}</p>
  <p>No further callback will be sent to it, retries included, and it disappears from the dashboard and the API. This cannot be undone; to stop callbacks for a while, pause it instead.</p>
  <div class="actions">
    ${actionButton({ action: path('integrations', 'webhooks', webhook.id, 'delete'), label: 'Delete webhook', csrfToken: viewer.csrfToken, tone: 'danger' })}
    <a class="btn btn-plain" href="${path('integrations', 'webhooks')}">Cancel</a>
  </div>
</section>`,
  });
}
