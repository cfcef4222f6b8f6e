import type { Response, Router, RequestHandler } from 'express';
import { DASHBOARD_EVENT_NAMES, updateWebhookBody, webhookStatus, type UpdateWebhookBody } from '@hookline/domain';
import { toAppError } from '../middleware/errors';
import { lastDelivery } from '../services/deliveries';
import { webhookHealth } from '../services/webhook-health';
import { createWebhook, deleteWebhook, getWebhook, getWebhookRow, listWebhooks, revealSigningSecret, sendTest, updateWebhook } from '../services/webhooks';
import { formText, queryText, send, signedIn, WEBHOOKS, type DashboardKit } from './context';
import { editValuesOf, editWebhookPage, type EditFieldErrors, type EditFormValues } from './edit-views';
import type { Flash } from './session';
import { addWebhookPage, confirmDeletePage, describeError, webhooksPage, type FieldErrors, type WebhookCard, type WebhookFormValues } from './webhook-views';

// The Webhooks tab: the list with each webhook's health and last delivery,
// adding, revealing and copying the signing secret, a test send, pause and
// resume, editing and deleting: each through the same service as /v1.

const WEBHOOKS_PER_PAGE = 20;

export function mountWebhooks(router: Router, kit: DashboardKit): void {
  const { deps, sessions, page, action, flashAndGo } = kit;

  async function renderWebhooks(res: Response, opts: { cursor: string | null; reveal?: { webhookId: string; secret: string }; status?: number }) {
    const ctx = signedIn(res);
    const list = await listWebhooks(deps, ctx.auth.accountId, { limit: WEBHOOKS_PER_PAGE, cursor: opts.cursor });
    // The health of the whole page in one statement (services/webhook-health.ts).
    const health = await webhookHealth(deps, list.data.map((w) => w.id));
    // One index-backed query per card (at most 20).
    const cards: WebhookCard[] = await Promise.all(
      list.data.map(async (webhook) => ({
        webhook,
        lastDelivery: await lastDelivery(deps, webhook.id),
        health: health.get(webhook.id)!,
        revealedSecret: opts.reveal?.webhookId === webhook.id ? opts.reveal.secret : undefined,
      })),
    );
    const flash = await sessions.takeFlash(ctx.session.id);
    send(res, opts.status ?? 200, webhooksPage({ viewer: ctx.viewer, cards, flash, cursor: opts.cursor, nextCursor: list.next_cursor }));
  }

  router.get('/integrations/webhooks', ...page, async (req, res) => {
    await renderWebhooks(res, { cursor: queryText(req, 'cursor') });
  });

  router.get('/integrations/webhooks/new', ...page, (_req, res) => {
    send(res, 200, addWebhookPage({ viewer: signedIn(res).viewer, values: { url: '', parser_id: '', secret: '' }, errors: {} }));
  });

  router.post('/integrations/webhooks', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const values: WebhookFormValues = { url: formText(req, 'url').trim(), parser_id: formText(req, 'parser_id').trim(), secret: formText(req, 'secret') };
    try {
      // The same service (and so the same validation) as POST /v1/webhooks; blank optional fields mean "none".
      const { webhook } = await createWebhook(
        deps,
        { accountId: ctx.auth.accountId, mode: ctx.auth.mode },
        {
          url: values.url,
          events: [...DASHBOARD_EVENT_NAMES],
          ...(values.parser_id ? { parser_id: values.parser_id } : {}),
          ...(values.secret ? { secret: values.secret } : {}),
        },
        'dashboard',
      );
      res.locals.webhookId = webhook.id;
      await flashAndGo(res, { tone: 'success', webhookId: webhook.id, message: 'Webhook added. Reveal or copy its signing secret below, then press Send test to try your endpoint.' }, WEBHOOKS);
    } catch (err) {
      const errors = formErrors(err);
      if (!errors) throw err;
      send(res, 400, addWebhookPage({ viewer: ctx.viewer, values, errors }));
    }
  });

  router.post('/integrations/webhooks/:id/reveal', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const secret = await revealSigningSecret(deps, ctx.auth.accountId, id);
    await renderWebhooks(res, { cursor: formText(req, 'cursor') || null, reveal: { webhookId: id, secret } });
  });

  // For the Copy button: the same secret as Reveal, as JSON for a same-origin fetch with X-CSRF-Token.
  router.post('/integrations/webhooks/:id/secret', ...action, async (req, res) => {
    const id = String(req.params.id);
    res.locals.webhookId = id;
    res.json({ signing_secret: await revealSigningSecret(deps, signedIn(res).auth.accountId, id) });
  });

  router.post('/integrations/webhooks/:id/test', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const row = await getWebhookRow(deps, ctx.auth.accountId, id);
    const status = webhookStatus(row);
    if (status === 'paused' || status === 'disabled') {
      return flashAndGo(res, { tone: 'error', webhookId: id, message: `This webhook is ${status}: press Resume before sending a test.` }, WEBHOOKS);
    }
    // Stop waiting once the browser has gone; the test itself is still delivered.
    const aborted = new AbortController();
    res.on('close', () => aborted.abort());
    let flash: Flash;
    try {
      const outcome = await sendTest(deps, ctx.auth.accountId, id, { signal: aborted.signal });
      if (!outcome) return;
      const { attempt } = outcome;
      const code = attempt.response_status !== null ? `HTTP ${attempt.response_status}` : describeError(attempt.error ?? 'no response');
      flash = attempt.status === 'succeeded'
        ? { tone: 'success', webhookId: id, message: `Test delivered: ${code} in ${attempt.duration_ms} ms.` }
        : { tone: 'error', webhookId: id, message: `Test failed: ${code} after ${attempt.duration_ms} ms${attempt.error && attempt.response_status !== null ? ` (${describeError(attempt.error)})` : ''}. Your endpoint must answer 2xx within the timeout; see the delivery log for the response.` };
    } catch (err) {
      const appError = toAppError(err);
      if (appError.status >= 500 && appError.code !== 'SERVICE_UNAVAILABLE') throw err;
      flash = { tone: 'error', webhookId: id, message: appError.message };
    }
    await flashAndGo(res, flash, WEBHOOKS);
  });

  const setActive = (isActive: boolean): RequestHandler => async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    await updateWebhook(deps, { accountId: ctx.auth.accountId, mode: ctx.auth.mode }, id, { is_active: isActive });
    const message = isActive ? 'Webhook resumed: callbacks are sent again.' : 'Webhook paused.';
    await flashAndGo(res, { tone: 'success', webhookId: id, message }, WEBHOOKS);
  };
  router.post('/integrations/webhooks/:id/pause', ...action, setActive(false));
  router.post('/integrations/webhooks/:id/resume', ...action, setActive(true));

  // ---- editing: the same schema and service as PATCH /v1/webhooks/:id ----
  router.get('/integrations/webhooks/:id/edit', ...page, async (req, res) => {
    const ctx = signedIn(res);
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, String(req.params.id));
    send(res, 200, editWebhookPage({ viewer: ctx.viewer, webhook, values: editValuesOf(webhook), errors: {} }));
  });

  router.post('/integrations/webhooks/:id/edit', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, id);
    const rawEvents = (req.body as Record<string, unknown> | undefined)?.events;
    const values: EditFormValues = {
      url: formText(req, 'url').trim(),
      parser_id: formText(req, 'parser_id').trim(),
      events: (Array.isArray(rawEvents) ? rawEvents : rawEvents === undefined ? [] : [rawEvents]).filter((e): e is string => typeof e === 'string'),
      secret: formText(req, 'secret'),
      remove_secret: formText(req, 'remove_secret') !== '',
      filter: formText(req, 'filter').trim(),
      headers: formText(req, 'headers'),
    };
    if (values.secret !== '' && values.remove_secret) {
      return send(res, 400, editWebhookPage({ viewer: ctx.viewer, webhook, values, errors: { secret: 'type a new value or tick Remove, not both' } }));
    }
    // Blank removes the filter; anything else must be JSON, then passes PATCH's own rules.
    let filter: unknown = null;
    if (values.filter !== '') {
      try {
        filter = JSON.parse(values.filter);
      } catch {
        const message = 'must be valid JSON, e.g. {"status": ["failed", "partial"]} (or blank for no filter)';
        return send(res, 400, editWebhookPage({ viewer: ctx.viewer, webhook, values, errors: { filter: message } }));
      }
    }
    // One `Name: value` per line; blank removes them all. PATCH's own rules then apply.
    const headers = headersOfText(values.headers);
    if (typeof headers === 'string') return send(res, 400, editWebhookPage({ viewer: ctx.viewer, webhook, values, errors: { headers } }));
    // The body PATCH /v1/webhooks/:id would get: blank scope means all parsers; the
    // secret only when replaced or removed; events only for API webhooks.
    const body: Record<string, unknown> = {
      url: values.url,
      parser_id: values.parser_id === '' ? null : values.parser_id,
      ...(webhook.source === 'api' ? { events: values.events } : {}),
      ...(values.secret !== '' ? { secret: values.secret } : values.remove_secret ? { secret: null } : {}),
      filter,
      headers,
    };
    try {
      const patch: UpdateWebhookBody = updateWebhookBody.parse(body);
      await updateWebhook(deps, { accountId: ctx.auth.accountId, mode: ctx.auth.mode }, id, patch);
    } catch (err) {
      const errors = editFormErrors(err);
      if (!errors) throw err;
      return send(res, 400, editWebhookPage({ viewer: ctx.viewer, webhook, values, errors }));
    }
    await flashAndGo(res, { tone: 'success', webhookId: id, message: 'Webhook updated: the changes apply to the next deliveries.' }, WEBHOOKS);
  });

  router.get('/integrations/webhooks/:id/delete', ...page, async (req, res) => {
    const ctx = signedIn(res);
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, String(req.params.id));
    send(res, 200, confirmDeletePage({ viewer: ctx.viewer, webhook }));
  });

  router.post('/integrations/webhooks/:id/delete', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, id);
    await deleteWebhook(deps, ctx.auth.accountId, id);
    await flashAndGo(res, { tone: 'success', message: `Webhook deleted: ${webhook.url} gets no further callbacks.` }, WEBHOOKS);
  });
}

/** Field-level messages for the Add Webhook form, or null when the error is not about the input. */
function formErrors(err: unknown): FieldErrors | null {
  const appError = toAppError(err);
  if (appError.code !== 'INVALID_PAYLOAD' && appError.code !== 'DUPLICATE_WEBHOOK' && appError.code !== 'LIMIT_REACHED') return null;
  const errors: FieldErrors = {};
  const label: Record<string, keyof WebhookFormValues> = { url: 'url', parser_id: 'parser_id', secret: 'secret' };
  for (const detail of appError.details ?? []) {
    const field = label[detail.path];
    if (field && !errors[field]) errors[field] = `${detail.message}`;
    else if (!field && !errors.form) errors.form = `${detail.path}: ${detail.message}`;
  }
  if (appError.code === 'DUPLICATE_WEBHOOK') errors.url = appError.message;
  if (!errors.url && !errors.parser_id && !errors.secret && !errors.form) errors.form = appError.message;
  return errors;
}

/** The Edit form's custom headers (one `Name: value` per line) as PATCH's `headers`, or what is wrong with a line. */
function headersOfText(text: string): Record<string, string> | string {
  const headers: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return `line ${index + 1}: must be Name: value, e.g. Authorization: Bearer 3f9c…`;
    const name = line.slice(0, colon).trim();
    // A name given twice is reported by PATCH's rules (header names are case-insensitive) unless the exact same: say so here.
    if (Object.hasOwn(headers, name)) return `line ${index + 1}: ${name} is given twice`;
    headers[name] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Field-level messages for the Edit form (the API's own messages), or null when the error is not about the input. */
function editFormErrors(err: unknown): EditFieldErrors | null {
  const appError = toAppError(err);
  // LIMIT_REACHED here is the filter-value cap, and names the filter.
  if (appError.code !== 'INVALID_PAYLOAD' && appError.code !== 'DUPLICATE_WEBHOOK' && appError.code !== 'LIMIT_REACHED') return null;
  const errors: EditFieldErrors = {};
  const fields = ['url', 'parser_id', 'events', 'secret', 'filter', 'headers'] as const;
  for (const detail of appError.details ?? []) {
    const field = fields.find((name) => detail.path === name || detail.path.startsWith(`${name}.`));
    // A filter's (or a header's) message says which of its entries it is about (filter.<path>, headers.<name>).
    const message = (field === 'filter' || field === 'headers') && detail.path !== field ? `${detail.path.slice(field.length + 1)}: ${detail.message}` : detail.message;
    if (field && !errors[field]) errors[field] = message;
    else if (!field && !errors.form) errors.form = `${detail.path}: ${detail.message}`;
  }
  if (appError.code === 'DUPLICATE_WEBHOOK') errors.url = appError.message;
  if (!fields.some((name) => errors[name]) && !errors.form) errors.form = appError.message;
  return errors;
}
