import type { Router } from 'express';
import { AppError, deliveryListQuery } from '@hookline/domain';
import { listDeliveriesWithAttempts, retryDelivery } from '../services/deliveries';
import { getWebhook } from '../services/webhooks';
import { formText, queryText, safeReturn, send, signedIn, type DashboardKit } from './context';
import { deliveryLogPage, type DeliveryWithAttempts } from './delivery-views';
import { path } from './layout';

// The delivery log of one webhook (filtered by status and event, a page at a
// time, each delivery with its attempts) and its Retry button: the query and
// the services of GET /v1/webhooks/:id/deliveries and POST /v1/deliveries/:id/retry.

const DELIVERIES_PER_PAGE = 20;

export function mountDeliveries(router: Router, kit: DashboardKit): void {
  const { deps, sessions, page, action, flashAndGo } = kit;

  router.get('/integrations/webhooks/:id/deliveries', ...page, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.webhookId = id;
    const status = queryText(req, 'status');
    const event = queryText(req, 'event');
    const cursor = queryText(req, 'cursor');
    // The query GET /v1/webhooks/:id/deliveries takes, through the same schema and service.
    const query = deliveryListQuery.safeParse({ limit: String(DELIVERIES_PER_PAGE), ...(status ? { status } : {}), ...(event ? { event } : {}), ...(cursor ? { cursor } : {}) });
    if (!query.success) {
      const field = query.error.issues[0]?.path[0];
      if (field === 'event') throw new AppError('INVALID_PAYLOAD', 'That event filter is not one this log knows; choose an event from the list.');
      if (field === 'status') throw new AppError('INVALID_PAYLOAD', 'That status filter is not one this log knows; choose a status from the list.');
      throw new AppError('INVALID_PAYLOAD', 'That page link is not valid; start again from the newest deliveries.');
    }
    const { webhook } = await getWebhook(deps, ctx.auth.accountId, id);
    const list = await listDeliveriesWithAttempts(deps, ctx.auth.accountId, id, query.data);
    const items: DeliveryWithAttempts[] = list.data;
    const flash = await sessions.takeFlash(ctx.session.id);
    send(res, 200, deliveryLogPage({
      viewer: ctx.viewer, webhook, items, status, event, cursor, nextCursor: list.next_cursor, flash, openDeliveryId: queryText(req, 'open'),
    }));
  });

  router.post('/integrations/deliveries/:id/retry', ...action, async (req, res) => {
    const ctx = signedIn(res);
    const id = String(req.params.id);
    res.locals.deliveryId = id;
    const { delivery } = await retryDelivery(deps, ctx.auth.accountId, id);
    const fallback = path('integrations', 'webhooks', delivery.webhook_id, 'deliveries');
    const back = safeReturn(formText(req, 'return_to'), fallback);
    const to = `${back}${back.includes('?') ? '&' : '?'}open=${encodeURIComponent(delivery.id)}`;
    await flashAndGo(res, { tone: 'success', message: `Retry queued for ${delivery.event}: one more attempt is on its way. Reload in a moment to see it.` }, to);
  });
}
