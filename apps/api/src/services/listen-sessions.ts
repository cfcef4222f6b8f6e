import {
  AppError, API_EVENT_NAMES, generateSigningSecret, LISTEN_URL_PREFIX, listenSessionOf, listenUrl, newId, type EventName, type ListenSession,
} from '@hookline/domain';
import { listenHolderKey, listenSeenKey } from '@hookline/queue';
import type { ApiDeps } from '../deps';
import { checkEvents, DEFAULT_MAX_WEBHOOKS_PER_ACCOUNT, deleteWebhook, getWebhookRow, limitError, lockAccountWebhooks, sendTest, type WebhookAuth } from './webhooks';

// `hookline listen` sessions (docs/listen.md). A session is a webhook of the
// account whose URL is `hookline-listen://<its id>`: it gets events by the
// same subscription rules, counts toward MAX_WEBHOOKS_PER_ACCOUNT, and is
// signed, retried and logged like any other. Only the transport differs (the
// worker relays it through Redis to the API holding the tool's socket,
// listen/hub.ts). It lives while the tool is connected and LISTEN_SESSION_GRACE
// after: then sweepListenSessions removes it, as the tool's own exit does.

/** LISTEN_SESSION_GRACE when the config leaves it out. */
export const DEFAULT_LISTEN_SESSION_GRACE_MS = 2 * 60_000;

const notFound = () => new AppError('RESOURCE_NOT_FOUND', 'No such listen session (it ended, or its grace after the tool disconnected ran out); start `hookline listen` again.');

export const listenGraceMs = (config: ApiDeps['config']): number => config.LISTEN_SESSION_GRACE ?? DEFAULT_LISTEN_SESSION_GRACE_MS;

/** Live-mode keys open sessions only where the operator allows it: a session receives the account's real events. */
export function checkListenKey(config: ApiDeps['config'], mode: WebhookAuth['mode']): void {
  if (mode === 'live' && !config.LISTEN_ALLOW_LIVE_KEYS) {
    throw new AppError('FORBIDDEN', 'Listen sessions need a test-mode API key (hk_test_…): this Hookline does not let live keys open them (LISTEN_ALLOW_LIVE_KEYS).');
  }
}

/** The account's session (webhook) row; anything else is a 404. */
export async function getListenSessionRow(deps: Pick<ApiDeps, 'db'>, accountId: string, id: string) {
  // Only "no such webhook" is "no such session": a database outage stays a 503.
  const row = await getWebhookRow(deps, accountId, id).catch((err: unknown) => {
    if (err instanceof AppError && err.code === 'RESOURCE_NOT_FOUND') return null;
    throw err;
  });
  if (!row || listenSessionOf(row.url) !== row.id) throw notFound();
  return row;
}

const resource = (row: { id: string; events: string[]; createdAt: Date }, connected: boolean): ListenSession => ({
  id: row.id, events: row.events as ListenSession['events'], connected, created_at: row.createdAt.toISOString(),
});

export async function createListenSession(
  deps: Pick<ApiDeps, 'db' | 'secretBox' | 'config'>,
  auth: WebhookAuth,
  input: { events?: string[] },
): Promise<{ session: ListenSession; signing_secret: string }> {
  checkListenKey(deps.config, auth.mode);
  const events = checkEvents(input.events ?? [...API_EVENT_NAMES], 'api');
  const signingSecret = generateSigningSecret();
  const max = deps.config.MAX_WEBHOOKS_PER_ACCOUNT ?? DEFAULT_MAX_WEBHOOKS_PER_ACCOUNT;
  const id = newId('webhook');
  // The same count under the same lock as any webhook's creation: a session is one of the account's webhooks.
  const row = await deps.db.prisma.$transaction(async (tx) => {
    await lockAccountWebhooks(tx, auth.accountId);
    const count = await tx.webhook.count({ where: { accountId: auth.accountId, deletedAt: null } });
    if (count >= max) throw limitError(max);
    return tx.webhook.create({
      data: {
        id,
        accountId: auth.accountId,
        url: listenUrl(id),
        events,
        description: 'hookline listen session',
        source: 'api',
        signingSecretEnc: deps.secretBox.encrypt(signingSecret),
      },
    });
  });
  return { session: resource(row, false), signing_secret: signingSecret };
}

/** The account's sessions, newest first, each with whether a tool holds it now. */
export async function listListenSessions(deps: Pick<ApiDeps, 'db' | 'redis' | 'config'>, accountId: string): Promise<ListenSession[]> {
  const rows = await deps.db.prisma.webhook.findMany({
    where: { accountId, deletedAt: null, url: { startsWith: LISTEN_URL_PREFIX } },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    select: { id: true, events: true, createdAt: true },
  });
  // One key per command: each session's keys carry its own hash tag (a cluster spreads them).
  const connected = await Promise.all(rows.map((row) =>
    deps.redis.exists(listenHolderKey(deps.config.QUEUE_PREFIX, row.id)).then((n) => n === 1, () => false)));
  return rows.map((row, i) => resource(row, connected[i]));
}

/** A test event of `event` to the session, tried once; answers with that attempt (like POST /v1/webhooks/:id/test). */
export async function triggerListenSession(
  deps: Pick<ApiDeps, 'db' | 'queue' | 'logger'>,
  accountId: string,
  id: string,
  event: EventName,
  opts: { signal?: AbortSignal } = {},
) {
  const row = await getListenSessionRow(deps, accountId, id);
  if (!row.events.includes(event)) {
    throw new AppError('INVALID_PAYLOAD', `event: this session does not listen for ${event}; start it with --events including it`, [{ path: 'event', message: 'is not one of the session\'s events' }]);
  }
  return sendTest(deps, accountId, row.id, { ...opts, event });
}

export async function endListenSession(deps: Pick<ApiDeps, 'db'>, accountId: string, id: string): Promise<void> {
  const row = await getListenSessionRow(deps, accountId, id);
  await deleteWebhook(deps, accountId, row.id);
}

/**
 * Removes the sessions whose tool has been gone for LISTEN_SESSION_GRACE (the
 * seen key ran out), and those never connected within it. Their waiting
 * deliveries are cancelled, as for any deleted webhook. Safe on every API
 * process at once: a delete is guarded, the loser finds nothing to delete.
 */
export async function sweepListenSessions(deps: Pick<ApiDeps, 'db' | 'redis' | 'config' | 'logger'>): Promise<number> {
  const graceMs = listenGraceMs(deps.config);
  const rows = await deps.db.prisma.webhook.findMany({
    where: { deletedAt: null, url: { startsWith: LISTEN_URL_PREFIX }, createdAt: { lt: new Date(Date.now() - graceMs) } },
    select: { id: true, accountId: true },
    take: 500,
  });
  let removed = 0;
  for (const row of rows) {
    if ((await deps.redis.exists(listenSeenKey(deps.config.QUEUE_PREFIX, row.id))) === 1) continue;
    try {
      await deleteWebhook(deps, row.accountId, row.id);
      removed += 1;
      deps.logger.info('listen session removed: its tool was gone longer than the grace', { webhook_id: row.id, grace_ms: graceMs });
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'RESOURCE_NOT_FOUND')) throw err;
    }
  }
  return removed;
}
