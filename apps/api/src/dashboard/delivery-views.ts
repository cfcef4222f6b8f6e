import { DELIVERY_STATUSES, EVENT_NAMES, isWaiting, type attemptResource, type deliveryResource } from '@hookline/domain';
import { html, type SafeHtml } from './html';
import { actionButton, flashBanner, page, path, timeTag, type Viewer } from './layout';
import type { Flash } from './session';
import { DELIVERY_STATUS_LABELS, deliveryBadge, describeError, statusBadge, type WebhookView } from './webhook-views';

export type DeliveryView = ReturnType<typeof deliveryResource>;
export type AttemptView = ReturnType<typeof attemptResource>;
export type DeliveryWithAttempts = { delivery: DeliveryView; attempts: AttemptView[] };

/** How much of a response body the log shows inline (the API keeps 2 KiB). */
const BODY_PREVIEW_CHARS = 300;

function bodyPreview(body: string | null): SafeHtml {
  if (body === null || body === '') return html`<span class="muted">empty</span>`;
  const cut = body.length > BODY_PREVIEW_CHARS;
  return html`<pre class="body-preview">${cut ? `${body.slice(0, BODY_PREVIEW_CHARS)}…` : body}</pre>`;
}

function attemptItem(attempt: AttemptView): SafeHtml {
  const outcome = attempt.status === 'succeeded' ? 'Succeeded' : 'Failed';
  return html`<li class="attempt attempt-${attempt.status}">
  <p class="attempt-head"><strong>Attempt ${attempt.attempt_number}</strong> · ${outcome} · ${timeTag(attempt.created_at)}</p>
  <dl class="facts facts-compact">
    <div><dt>Status code</dt><dd>${attempt.response_status ?? '—'}</dd></div>
    <div><dt>Duration</dt><dd>${attempt.duration_ms} ms</dd></div>
    <div><dt>Error</dt><dd>${attempt.error ? html`${describeError(attempt.error)} <code>${attempt.error}</code>` : '—'}</dd></div>
    ${attempt.next_retry_at ? html`<div><dt>Next retry</dt><dd>${timeTag(attempt.next_retry_at)}</dd></div>` : ''}
  </dl>
  <div class="response"><span class="dt">Response (first bytes)</span>${bodyPreview(attempt.response_body)}</div>
</li>`;
}

function deliveryItem(item: DeliveryWithAttempts, opts: { viewer: Viewer; webhookId: string; returnTo: string; open: boolean }): SafeHtml {
  const { delivery, attempts } = item;
  const waiting = isWaiting(delivery.status);
  return html`<li>
<details class="delivery" data-delivery-id="${delivery.id}"${opts.open ? html` open` : ''}>
  <summary>
    <span class="summary-main"><code>${delivery.event}</code> ${deliveryBadge(delivery.status)}</span>
    <span class="summary-meta muted">${delivery.attempt_count} ${delivery.attempt_count === 1 ? 'attempt' : 'attempts'} · ${timeTag(delivery.created_at)}${
      waiting && delivery.next_attempt_at ? html` · next attempt ${timeTag(delivery.next_attempt_at)}` : ''
    }</span>
  </summary>
  <div class="delivery-body">
    <p class="muted">Delivery <code>${delivery.id}</code> · event <code>${delivery.event_id}</code></p>
    ${attempts.length
      ? html`<ol class="attempts" reversed>${attempts.map(attemptItem)}</ol>`
      : html`<p class="muted">No attempt yet: the first one is queued.</p>`}
    <div class="actions">
      ${actionButton({
        action: path('integrations', 'deliveries', delivery.id, 'retry'),
        label: 'Retry',
        csrfToken: opts.viewer.csrfToken,
        extra: html`<input type="hidden" name="return_to" value="${opts.returnTo}">`,
      })}
      <span class="hint">One more attempt now, whatever its state.</span>
    </div>
  </div>
</details>
</li>`;
}

export function deliveryLogPage(opts: {
  viewer: Viewer;
  webhook: WebhookView;
  items: DeliveryWithAttempts[];
  status: string | null;
  event: string | null;
  cursor: string | null;
  nextCursor: string | null;
  flash: Flash | null;
  openDeliveryId?: string | null;
}): SafeHtml {
  const { viewer, webhook, items } = opts;
  const base = path('integrations', 'webhooks', webhook.id, 'deliveries');
  const withQuery = (query: Record<string, string | null>) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v) params.set(k, v);
    const text = params.toString();
    return text ? `${base}?${text}` : base;
  };
  const filters = { status: opts.status, event: opts.event };
  const returnTo = withQuery({ ...filters, cursor: opts.cursor });
  const filtered = html`${opts.event ? html` for <code>${opts.event}</code>` : ''}${opts.status ? html` with status ${DELIVERY_STATUS_LABELS[opts.status] ?? opts.status}` : ''}`;
  // The webhook's own events first, then the others a delivery can carry (a test sends the first of its own events).
  const events = [...new Set([...webhook.events, ...EVENT_NAMES])];
  return page({
    title: 'Delivery log',
    viewer,
    section: 'integrations',
    body: html`<p class="crumbs"><a href="${path('integrations', 'webhooks')}">← Webhooks</a></p>
<h1>Delivery log</h1>
<p class="url">${webhook.url} ${statusBadge(webhook.status)}</p>
${flashBanner(opts.flash)}
<form method="get" action="${base}" class="filter">
  <div class="field field-inline">
    <label for="status-filter">Status</label>
    <select id="status-filter" name="status">
      <option value=""${opts.status ? '' : html` selected`}>All statuses</option>
      ${DELIVERY_STATUSES.map((s) => html`<option value="${s}"${opts.status === s ? html` selected` : ''}>${DELIVERY_STATUS_LABELS[s] ?? s}</option>`)}
    </select>
  </div>
  <div class="field field-inline">
    <label for="event-filter">Event</label>
    <select id="event-filter" name="event">
      <option value=""${opts.event ? '' : html` selected`}>All events</option>
      ${events.map((e) => html`<option value="${e}"${opts.event === e ? html` selected` : ''}>${e}</option>`)}
    </select>
  </div>
  <button type="submit" class="btn btn-plain">Filter</button>
</form>
${items.length === 0
  ? html`<div class="empty"><p><strong>No deliveries${filtered} yet.</strong></p><p>${
      opts.status || opts.event
        ? html`<a href="${base}">Show every delivery</a>`
        : html`Callbacks appear here once an extraction batch finishes. Press <strong>Send test</strong> on the webhook's card to try your endpoint now.`
    }</p></div>`
  : html`<ul class="deliveries">${items.map((item) =>
      deliveryItem(item, { viewer, webhookId: webhook.id, returnTo, open: item.delivery.id === opts.openDeliveryId }),
    )}</ul>`}
<nav class="pager" aria-label="Delivery pages">
  ${opts.cursor ? html`<a href="${withQuery(filters)}">← Newest</a>` : ''}
  ${opts.nextCursor ? html`<a href="${withQuery({ ...filters, cursor: opts.nextCursor })}">Older deliveries →</a>` : ''}
</nav>`,
  });
}
