import type { ApiDeps } from '../deps';

// The dashboard's health figures for a page of webhook cards: attempts per
// hour over the last 24 hours (succeeded / failed) and each webhook's latest
// failed attempt. One SQL statement for the whole page, whatever its size.

export const HEALTH_HOURS = 24;
const HOUR_MS = 3_600_000;

export type HealthHour = { hour: string; succeeded: number; failed: number };
export type LastError = { at: string; responseStatus: number | null; error: string | null };
export type WebhookHealth = {
  /** The window: from the start of the UTC hour 23 hours before `until`'s, to `until`. */
  since: string;
  until: string;
  succeeded: number;
  failed: number;
  /** HEALTH_HOURS buckets, oldest first; the last one is the current (partial) hour. */
  hours: HealthHour[];
  /** The latest failed attempt, however old (attempts are kept for RETENTION). */
  lastError: LastError | null;
};

type Row = {
  kind: 'hour' | 'last_error';
  webhook_id: string;
  at: Date;
  succeeded: number | null;
  failed: number | null;
  response_status: number | null;
  error: string | null;
};

/** The start of the window: the UTC hour HEALTH_HOURS - 1 hours before `now`'s (whole-hour offsets only; UTC has none other). */
export function healthWindowStart(now: Date): Date {
  return new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS - (HEALTH_HOURS - 1) * HOUR_MS);
}

/**
 * Health of the given webhooks (ids the caller has already scoped to one
 * account). Both parts walk the index attempts(webhook_id, created_at DESC):
 * the hourly counts as one range per webhook, the latest failure backwards from
 * the newest attempt until the first failed one. Hours are truncated in UTC,
 * whatever the session's time zone.
 */
export async function webhookHealth(deps: Pick<ApiDeps, 'db'>, webhookIds: string[], now = new Date()): Promise<Map<string, WebhookHealth>> {
  const result = new Map<string, WebhookHealth>();
  if (webhookIds.length === 0) return result;
  const since = healthWindowStart(now);
  const rows = await deps.db.prisma.$queryRaw<Row[]>`
    SELECT 'hour' AS kind, a.webhook_id,
           date_trunc('hour', a.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS at,
           (count(*) FILTER (WHERE a.status = 'succeeded'))::int AS succeeded,
           (count(*) FILTER (WHERE a.status <> 'succeeded'))::int AS failed,
           NULL::int AS response_status, NULL::text AS error
      FROM attempts a
     WHERE a.webhook_id = ANY(${webhookIds}::text[])
       AND a.created_at >= ${since}::timestamptz AND a.created_at <= ${now}::timestamptz
     GROUP BY a.webhook_id, 3
    UNION ALL
    SELECT 'last_error', w.id, f.created_at, NULL, NULL, f.response_status, f.error
      FROM unnest(${webhookIds}::text[]) AS w(id)
      CROSS JOIN LATERAL (
        SELECT created_at, response_status, error
          FROM attempts
         WHERE webhook_id = w.id AND status = 'failed'
         ORDER BY created_at DESC
         LIMIT 1
      ) f`;

  for (const id of webhookIds) {
    result.set(id, {
      since: since.toISOString(),
      until: now.toISOString(),
      succeeded: 0,
      failed: 0,
      hours: Array.from({ length: HEALTH_HOURS }, (_, i) => ({ hour: new Date(since.getTime() + i * HOUR_MS).toISOString(), succeeded: 0, failed: 0 })),
      lastError: null,
    });
  }
  for (const row of rows) {
    const health = result.get(row.webhook_id);
    if (!health) continue;
    if (row.kind === 'last_error') {
      health.lastError = { at: row.at.toISOString(), responseStatus: row.response_status, error: row.error };
      continue;
    }
    const slot = Math.round((row.at.getTime() - since.getTime()) / HOUR_MS);
    const bucket = health.hours[slot];
    if (!bucket) continue;
    bucket.succeeded += row.succeeded ?? 0;
    bucket.failed += row.failed ?? 0;
    health.succeeded += row.succeeded ?? 0;
    health.failed += row.failed ?? 0;
  }
  return result;
}
