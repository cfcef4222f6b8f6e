import type { HealthHour, LastError, WebhookHealth } from '../services/webhook-health';
import { html, type SafeHtml } from './html';
import { timeTag } from './layout';

// A webhook card's health: the success rate and a 24-bar chart of attempts per
// hour (inline SVG: nothing to load, nothing the CSP has to allow; colours come
// from classes in dashboard.css, never from style attributes).

/** The chart's drawing box: one 10-unit slot per hour, bars 8 units wide, 48 units tall. */
export const CHART = { slot: 10, bar: 8, height: 48 } as const;
/** A non-empty segment is drawn at least this tall, so one failure among a thousand successes still shows. */
const MIN_SEGMENT = 1;

const count = (n: number) => n.toLocaleString('en-US');
const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * "98.2%": one decimal, rounded down, so 99.97% never reads as a clean 100%;
 * only a rate of exactly 1 shows as "100%".
 */
export function formatRate(succeeded: number, total: number): string {
  if (total <= 0) return '';
  if (succeeded >= total) return '100%';
  return `${(Math.floor((succeeded / total) * 1000) / 10).toFixed(1)}%`;
}

export function rateText(health: Pick<WebhookHealth, 'succeeded' | 'failed'>): string {
  const total = health.succeeded + health.failed;
  if (total === 0) return 'No attempts in 24 h';
  return `${formatRate(health.succeeded, total)} of ${count(total)} ${total === 1 ? 'attempt' : 'attempts'} in 24 h`;
}

/** Heights (in chart units) of an hour's stacked segments, scaled to the busiest hour. */
export function barHeights(hour: Pick<HealthHour, 'succeeded' | 'failed'>, busiest: number): { succeeded: number; failed: number } {
  if (busiest <= 0) return { succeeded: 0, failed: 0 };
  const scale = (n: number) => (n > 0 ? Math.max(MIN_SEGMENT, (n / busiest) * CHART.height) : 0);
  const failed = Math.min(CHART.height, scale(hour.failed));
  const succeeded = Math.min(CHART.height - failed, scale(hour.succeeded));
  return { succeeded: round2(succeeded), failed: round2(failed) };
}

const hh = (iso: string) => iso.slice(11, 16);

function hourLabel(hour: HealthHour, index: number, last: number): string {
  const end = index === last ? 'now' : hh(new Date(Date.parse(hour.hour) + 3_600_000).toISOString());
  return `${hh(hour.hour)}–${end} UTC: ${count(hour.succeeded)} succeeded, ${count(hour.failed)} failed`;
}

export function healthChart(webhookId: string, health: WebhookHealth): SafeHtml {
  const busiest = Math.max(0, ...health.hours.map((h) => h.succeeded + h.failed));
  const titleId = `chart-${webhookId}-title`;
  const summary = busiest === 0
    ? 'Attempts per hour over the last 24 hours: none.'
    : `Attempts per hour over the last 24 hours: ${count(health.succeeded)} succeeded, ${count(health.failed)} failed; the busiest hour had ${count(busiest)}.`;
  const last = health.hours.length - 1;
  const width = CHART.slot * health.hours.length;
  const bars = health.hours.map((hour, i) => {
    const x = i * CHART.slot;
    const barX = x + (CHART.slot - CHART.bar) / 2;
    const heights = barHeights(hour, busiest);
    const okY = round2(CHART.height - heights.succeeded);
    const failY = round2(okY - heights.failed);
    return html`<g class="chart-hour" data-hour="${hour.hour}" data-succeeded="${hour.succeeded}" data-failed="${hour.failed}"><title>${hourLabel(hour, i, last)}</title><rect class="chart-slot" x="${x}" y="0" width="${CHART.slot}" height="${CHART.height}"></rect>${
      heights.succeeded > 0 ? html`<rect class="bar-succeeded" x="${barX}" y="${okY}" width="${CHART.bar}" height="${heights.succeeded}"></rect>` : ''
    }${heights.failed > 0 ? html`<rect class="bar-failed" x="${barX}" y="${failY}" width="${CHART.bar}" height="${heights.failed}"></rect>` : ''}</g>`;
  });
  return html`<svg class="chart" viewBox="0 0 ${width} ${CHART.height}" preserveAspectRatio="none" role="img" aria-labelledby="${titleId}" data-busiest="${busiest}">
<title id="${titleId}">${summary}</title>
<line class="chart-base" x1="0" y1="${CHART.height}" x2="${width}" y2="${CHART.height}"></line>
${bars}
</svg>`;
}

export function lastErrorText(lastError: LastError | null, describe: (code: string) => string): SafeHtml {
  if (!lastError) return html`<span class="muted">None recorded</span>`;
  const what = lastError.responseStatus !== null
    ? html`HTTP ${lastError.responseStatus}${lastError.error && lastError.error !== 'http_error' ? html` (${describe(lastError.error)})` : ''}`
    : lastError.error
      ? html`${describe(lastError.error)} <code>${lastError.error}</code>`
      : html`failed`;
  return html`${what} · ${timeTag(lastError.at)}`;
}

/** The health block of a card: rate, legend and chart. */
export function healthSection(webhookId: string, health: WebhookHealth): SafeHtml {
  const total = health.succeeded + health.failed;
  return html`<section class="health" aria-label="Health in the last 24 hours" data-health>
  <p class="health-rate"><strong data-success-rate>${rateText(health)}</strong>${
    total ? html` <span class="chart-legend muted"><span class="key key-succeeded"></span>${count(health.succeeded)} succeeded <span class="key key-failed"></span>${count(health.failed)} failed</span>` : ''
  }</p>
  ${healthChart(webhookId, health)}
  <p class="chart-axis muted" aria-hidden="true"><span>24 h ago</span><span>now</span></p>
</section>`;
}
