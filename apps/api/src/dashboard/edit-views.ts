import { API_EVENT_NAMES, CUSTOM_HEADER_LIMITS, EVENT_TYPES } from '@hookline/domain';
import { html, type SafeHtml } from './html';
import { csrfField, page, path, type Viewer } from './layout';
import { field, targetUrlField, type WebhookView } from './webhook-views';

// The Edit Webhook page. Its POST goes through the same schema and service as
// PATCH /v1/webhooks/:id, so the messages shown next to each field are the API's.

export type EditFormValues = {
  url: string;
  parser_id: string;
  /** Only for API webhooks: a dashboard webhook always receives the batch.* events. */
  events: string[];
  /** A new X-Webhook-Secret, typed in this submission; the stored one is never rendered. */
  secret: string;
  remove_secret: boolean;
  /** The payload filter as JSON text; blank is no filter. */
  filter: string;
  /** The custom headers, one `Name: value` per line; blank is none. */
  headers: string;
};
export type EditFieldErrors = Partial<Record<'url' | 'parser_id' | 'events' | 'secret' | 'filter' | 'headers' | 'form', string>>;

export const editValuesOf = (webhook: WebhookView): EditFormValues => ({
  url: webhook.url,
  parser_id: webhook.parser_id ?? '',
  events: [...webhook.events],
  secret: '',
  remove_secret: false,
  filter: webhook.filter ? JSON.stringify(webhook.filter, null, 2) : '',
  headers: Object.entries(webhook.headers).map(([name, value]) => `${name}: ${value}`).join('\n'),
});

const DESCRIPTIONS: Record<string, string> = Object.fromEntries(EVENT_TYPES.map((e) => [e.name, e.description]));

function eventsField(webhook: WebhookView, values: EditFormValues, error: string | undefined): SafeHtml {
  if (webhook.source === 'dashboard') {
    return html`<div class="field">
  <span class="label">Events</span>
  <p class="readonly">${webhook.events.map((e, i) => html`${i ? ', ' : ''}<code>${e}</code>`)}</p>
  <p class="hint">Webhooks added in the dashboard always receive the three <code>batch.*</code> events.</p>
</div>`;
  }
  const errorId = 'field-events-error';
  return html`<fieldset class="field checks${error ? ' field-invalid' : ''}"${error ? html` aria-describedby="${errorId}"` : ''}>
  <legend>Events</legend>
  ${error ? html`<p class="field-error" id="${errorId}">${error}</p>` : ''}
  ${API_EVENT_NAMES.map((name) => {
    const id = `field-events-${name.replace(/\W/g, '-')}`;
    return html`<div class="check">
    <input type="checkbox" id="${id}" name="events" value="${name}"${values.events.includes(name) ? html` checked` : ''}>
    <label for="${id}"><code>${name}</code> <span class="hint">${DESCRIPTIONS[name] ?? ''}</span></label>
  </div>`;
  })}
</fieldset>`;
}

function secretField(webhook: WebhookView, values: EditFormValues, error: string | undefined): SafeHtml {
  const current = webhook.has_static_secret
    ? html`<code>X-Webhook-Secret</code> is sent with every callback. Its value is never shown again.`
    : html`None: no <code>X-Webhook-Secret</code> header is sent.`;
  return html`<fieldset class="field secret-edit${error ? ' field-invalid' : ''}">
  <legend>Custom Verification Header</legend>
  <p class="hint" id="secret-current">${current}</p>
  ${field({
    name: 'secret',
    label: webhook.has_static_secret ? 'Replace with a new value' : 'Set a value',
    // Never echoed back, not even after a failed save: it is typed again.
    value: '',
    error,
    hint: 'A static secret (8–256 characters) sent verbatim as X-Webhook-Secret. Leave blank to keep the current setting.',
    attrs: html` autocomplete="off" spellcheck="false" maxlength="256"`,
  })}
  ${webhook.has_static_secret
    ? html`<div class="check">
    <input type="checkbox" id="field-remove_secret" name="remove_secret" value="1"${values.remove_secret ? html` checked` : ''}>
    <label for="field-remove_secret">Remove the header (stop sending <code>X-Webhook-Secret</code>)</label>
  </div>`
    : ''}
</fieldset>`;
}

function filterField(webhook: WebhookView, value: string, error: string | undefined): SafeHtml {
  const id = 'field-filter';
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  // A dashboard webhook's batch.* data carries status, parser_id and the document counts.
  const example = webhook.source === 'dashboard' ? '{"status": ["failed", "partial"]}' : '{"status": "failed", "parser_id": "invoices"}';
  return html`<div class="field${error ? ' field-invalid' : ''}">
  <label for="${id}">Payload filter <span class="optional">(optional)</span></label>
  <textarea id="${id}" name="filter" rows="4" spellcheck="false" autocomplete="off" aria-describedby="${error ? `${errorId} ${hintId}` : hintId}"${error ? html` aria-invalid="true"` : ''}>${value}</textarea>
  ${error ? html`<p class="field-error" id="${errorId}">${error}</p>` : ''}
  <p class="hint" id="${hintId}">Send only the events whose data matches: a JSON object of dotted paths to a value or a list of values, e.g. <code>${example}</code>. Every entry must match. Leave blank to get every event.</p>
</div>`;
}

// The owner's own values are shown (they typed them; the API shows them too): the form is behind the signed-in session.
function headersField(value: string, error: string | undefined): SafeHtml {
  const id = 'field-headers';
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  return html`<div class="field${error ? ' field-invalid' : ''}">
  <label for="${id}">Custom headers <span class="optional">(optional)</span></label>
  <textarea id="${id}" name="headers" rows="3" spellcheck="false" autocomplete="off" aria-describedby="${error ? `${errorId} ${hintId}` : hintId}"${error ? html` aria-invalid="true"` : ''}>${value}</textarea>
  ${error ? html`<p class="field-error" id="${errorId}">${error}</p>` : ''}
  <p class="hint" id="${hintId}">Sent with every callback, one <code>Name: value</code> per line (at most ${CUSTOM_HEADER_LIMITS.entries}), e.g. <code>Authorization: Bearer 3f9c…</code>. Hookline's own headers and hop-by-hop ones cannot be set. Stored encrypted. Leave blank for none.</p>
</div>`;
}

export function editWebhookPage(opts: { viewer: Viewer; webhook: WebhookView; values: EditFormValues; errors: EditFieldErrors }): SafeHtml {
  const { viewer, webhook, values, errors } = opts;
  const live = viewer.mode === 'live';
  return page({
    title: 'Edit webhook',
    viewer,
    section: 'integrations',
    body: html`<p class="crumbs"><a href="${path('integrations', 'webhooks')}">← Webhooks</a></p>
<h1>Edit webhook</h1>
<p class="url">${webhook.url}</p>
${errors.form ? html`<div class="flash flash-error" role="alert">${errors.form}</div>` : ''}
${errors.url || errors.parser_id || errors.events || errors.secret || errors.filter || errors.headers ? html`<div class="flash flash-error" role="alert">Nothing was saved: correct the fields marked below.</div>` : ''}
<form method="post" action="${path('integrations', 'webhooks', webhook.id, 'edit')}" class="stack card" novalidate data-edit-form>
  ${csrfField(viewer.csrfToken)}
  ${targetUrlField(values.url, errors.url, live)}
  ${eventsField(webhook, values, errors.events)}
  ${field({
    name: 'parser_id',
    label: 'Scope (parser)',
    value: values.parser_id,
    error: errors.parser_id,
    hint: 'Limit callbacks to one parser by its id. Leave blank for all parsers.',
    attrs: html` autocomplete="off" spellcheck="false" maxlength="128"`,
  })}
  ${filterField(webhook, values.filter, errors.filter)}
  ${headersField(values.headers, errors.headers)}
  ${secretField(webhook, values, errors.secret)}
  <div class="actions">
    <button type="submit" class="btn btn-primary">Save changes</button>
    <a class="btn btn-plain" href="${path('integrations', 'webhooks')}">Cancel</a>
  </div>
</form>`,
  });
}
