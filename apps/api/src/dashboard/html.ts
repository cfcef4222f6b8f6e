// A tiny HTML templating layer: every interpolated value is escaped unless it
// is already SafeHtml (the result of another html`` call). Escaping by default
// means a forgotten call is a visible double-escape, never an injection.

const SAFE = Symbol('SafeHtml');

export type SafeHtml = { readonly [SAFE]: true; readonly value: string };

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (ch) => ESCAPES[ch]);
}

export function isSafeHtml(value: unknown): value is SafeHtml {
  return typeof value === 'object' && value !== null && (value as { [SAFE]?: unknown })[SAFE] === true;
}

/** Marks trusted markup as safe. Only for constants written in this code, never for data. */
export function unsafeRaw(markup: string): SafeHtml {
  return { [SAFE]: true, value: markup };
}

function render(value: unknown): string {
  // null, undefined and false render nothing so `${cond && html`…`}` reads naturally.
  if (value === null || value === undefined || value === false) return '';
  if (isSafeHtml(value)) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  // Templates interpolate scalars; an object would show as [object Object], escaped: a visible bug, never a leak.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return unsafeRaw(out);
}

export function toHtmlString(page: SafeHtml): string {
  return page.value;
}
