import { html, type SafeHtml } from './html';
import { csrfField, page, path, type Viewer } from './layout';

export function signInPage(opts: { csrfToken: string; error?: string | null; notice?: string | null }): SafeHtml {
  const errorId = 'api_key-error';
  return page({
    title: 'Sign in',
    body: html`<section class="narrow">
  <h1>Sign in to the dashboard</h1>
  <p>Manage the webhooks of your account without writing code. Paste one of your API keys (it starts with <code>hk_live_</code> or <code>hk_test_</code>).</p>
  ${opts.notice ? html`<div class="flash flash-info" role="status">${opts.notice}</div>` : ''}
  <form method="post" action="${path('sign-in')}" class="stack" novalidate>
    ${csrfField(opts.csrfToken)}
    <div class="field${opts.error ? ' field-invalid' : ''}">
      <label for="api_key">API key</label>
      <input id="api_key" name="api_key" type="password" autocomplete="off" spellcheck="false" required
        ${opts.error ? html`aria-invalid="true" aria-describedby="${errorId}"` : html`aria-describedby="api_key-hint"`}>
      ${opts.error
        ? html`<p class="field-error" id="${errorId}">${opts.error}</p>`
        : html`<p class="hint" id="api_key-hint">The key is checked once and never stored in your browser: the session cookie holds only a random id.</p>`}
    </div>
    <div><button type="submit" class="btn btn-primary">Sign in</button></div>
  </form>
</section>`,
  });
}

export function planRequiredPage(viewer: Viewer, plan: string): SafeHtml {
  return page({
    title: 'Upgrade required',
    viewer,
    section: 'integrations',
    body: html`<section class="narrow">
  <h1>Webhooks need the Pro or Enterprise plan</h1>
  <p>This account is on the <strong>${plan}</strong> plan. Webhooks — signed callbacks when an extraction batch finishes — are part of the Pro and Enterprise plans.</p>
  <p>Upgrade the account, then sign in again to add webhooks. Until then you can poll <code>GET /v1/extractions/:extraction_id/documents/:document_id</code> for results.</p>
</section>`,
  });
}

export function errorPage(opts: { status: number; title: string; message: string; viewer?: Viewer | null; action?: SafeHtml }): SafeHtml {
  return page({
    title: opts.title,
    viewer: opts.viewer ?? null,
    section: opts.viewer ? 'integrations' : null,
    body: html`<section class="narrow">
  <h1>${opts.title}</h1>
  <p>${opts.message}</p>
  <p>${opts.action ?? html`<a href="${path('integrations', 'webhooks')}">Back to Webhooks</a>`}</p>
</section>`,
  });
}

/** The page a one-time sign-in link opens: a button, so only a deliberate POST uses the link. */
export function signInLinkPage(opts: { csrfToken: string; token: string; accountName: string; keyPrefix: string }): SafeHtml {
  return page({
    title: 'Sign in',
    body: html`<section class="narrow">
  <h1>Sign in to the dashboard</h1>
  <p>This one-time link signs you in to <strong>${opts.accountName}</strong> with the API key <code>${opts.keyPrefix}…</code>.</p>
  <form method="post" action="${path('sign-in', 'link')}" class="stack">
    ${csrfField(opts.csrfToken)}
    <input type="hidden" name="token" value="${opts.token}">
    <div><button type="submit" class="btn btn-primary">Continue to the dashboard</button></div>
  </form>
  <p class="hint">Not expecting this? <a href="${path()}">Sign in with an API key</a> instead.</p>
</section>`,
  });
}
