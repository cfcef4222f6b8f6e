import type { z } from 'zod';
import { writeEvent } from '@hookline/db';
import {
  AppError,
  attemptResource,
  decodeCursor,
  deliveryResource,
  encodeCursor,
  generateSigningSecret,
  randomBase62,
  webhookResource,
  type deliveryListQuery,
  type recoverBody,
} from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { enqueueWithin } from './ingest';

// The integrator's delivery endpoints (docs/api.md#the-integrator-api): the log, manual
// retries, recovery of a failed window, secret rotation and test sends. Like
// ingest, nothing here sends a callback: it writes rows and enqueues jobs.

export type DeliveryListQuery = z.infer<typeof deliveryListQuery>;
export type RecoverInput = z.infer<typeof recoverBody>;

/** How long a rotated-out secret keeps signing: for 24 h callbacks carry both signatures. */
export const ROTATION_GRACE_MS = 24 * 3_600_000;
export const TEST_WAIT_MS = 30_000;
const TEST_POLL_MS = 50;
const RECOVER_BATCH = 500;
const ID_RE = /^[a-z]+_[0-9A-Za-z]{1,64}$/;

const webhookNotFound = () => new AppError('RESOURCE_NOT_FOUND', 'No such webhook.');
const deliveryNotFound = () => new AppError('RESOURCE_NOT_FOUND', 'No such delivery.');
const queueDown = () => new AppError('SERVICE_UNAVAILABLE', 'The delivery queue is unreachable right now; try again in a few seconds.');

/** The account's own, not deleted webhook; anything else is "no such webhook". */
export async function findOwnWebhook(deps: Pick<ApiDeps, 'db'>, accountId: string, webhookId: string) {
  if (!ID_RE.test(webhookId)) throw webhookNotFound();
  const row = await deps.db.prisma.webhook.findFirst({ where: { id: webhookId, accountId, deletedAt: null } });
  if (!row) throw webhookNotFound();
  return row;
}

async function findOwnDelivery(deps: Pick<ApiDeps, 'db'>, accountId: string, deliveryId: string) {
  if (!ID_RE.test(deliveryId)) throw deliveryNotFound();
  // A deleted webhook takes its deliveries out of every read with it.
  const row = await deps.db.prisma.delivery.findFirst({ where: { id: deliveryId, accountId, webhook: { deletedAt: null } } });
  if (!row) throw deliveryNotFound();
  return row;
}

/** Newest first, keyset-paginated on (created_at, id). */
export async function listDeliveries(deps: Pick<ApiDeps, 'db'>, accountId: string, webhookId: string, query: DeliveryListQuery) {
  await findOwnWebhook(deps, accountId, webhookId);
  const cursor = query.cursor === undefined ? null : decodeCursor(query.cursor);
  if (query.cursor !== undefined && !cursor) {
    throw new AppError('INVALID_PAYLOAD', 'cursor: is not a valid cursor; pass the next_cursor of the previous page unchanged.', [{ path: 'cursor', message: 'is not a valid cursor' }]);
  }
  const rows = await deps.db.prisma.delivery.findMany({
    where: {
      webhookId,
      accountId,
      ...(query.status ? { status: query.status } : {}),
      ...(query.event ? { event: query.event } : {}),
      ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: query.limit + 1,
  });
  const page = rows.slice(0, query.limit);
  const hasMore = rows.length > query.limit;
  const last = page[page.length - 1];
  return { data: page.map(deliveryResource), has_more: hasMore, next_cursor: hasMore && last ? encodeCursor(last) : null };
}

export async function getDelivery(deps: Pick<ApiDeps, 'db'>, accountId: string, deliveryId: string) {
  const delivery = await findOwnDelivery(deps, accountId, deliveryId);
  const attempts = await deps.db.prisma.attempt.findMany({ where: { deliveryId }, orderBy: { attemptNumber: 'asc' } });
  return { delivery: deliveryResource(delivery), attempts: attempts.map(attemptResource) };
}

/**
 * One more attempt now, whatever the delivery's state. The job has its own id
 * (`once`), so it never collides with a delayed retry job of the same delivery;
 * the worker records it as the next attempt and does not retry it.
 */
export async function retryDelivery(deps: Pick<ApiDeps, 'db' | 'queue'>, accountId: string, deliveryId: string) {
  const delivery = await findOwnDelivery(deps, accountId, deliveryId);
  await enqueueWithin(deps, [delivery.id], { once: true }).catch(() => {
    throw queueDown();
  });
  return { delivery: deliveryResource(delivery) };
}

/** Every failed delivery of the webhook created in [since, until] gets one more attempt. */
export async function recoverDeliveries(deps: Pick<ApiDeps, 'db' | 'queue'>, accountId: string, webhookId: string, input: RecoverInput) {
  const since = new Date(input.since);
  const until = input.until ? new Date(input.until) : new Date();
  if (since > until) {
    throw new AppError('INVALID_PAYLOAD', 'since: must not be later than until (until defaults to now).', [{ path: 'since', message: 'must not be later than until' }]);
  }
  await findOwnWebhook(deps, accountId, webhookId);
  let requeued = 0;
  let afterId: string | undefined;
  // In id order by batches, so a large window never loads every row at once.
  for (;;) {
    const batch = await deps.db.prisma.delivery.findMany({
      where: { webhookId, accountId, status: 'failed', createdAt: { gte: since, lte: until }, ...(afterId ? { id: { gt: afterId } } : {}) },
      orderBy: { id: 'asc' },
      select: { id: true },
      take: RECOVER_BATCH,
    });
    if (batch.length === 0) break;
    await enqueueWithin(deps, batch.map((d) => d.id), { once: true }).catch(() => {
      throw queueDown();
    });
    requeued += batch.length;
    afterId = batch[batch.length - 1].id;
    if (batch.length < RECOVER_BATCH) break;
  }
  return { requeued };
}

/**
 * A new signing secret; the old one stays (encrypted) as the previous secret
 * for 24 h, during which the worker signs with both. The update is conditional
 * on the secret it replaces, so two racing rotations cannot lose a secret.
 */
export async function rotateSecret(deps: Pick<ApiDeps, 'db' | 'secretBox'>, accountId: string, webhookId: string) {
  for (let tries = 0; tries < 5; tries++) {
    const current = await findOwnWebhook(deps, accountId, webhookId);
    const signingSecret = generateSigningSecret();
    const rotated = await deps.db.prisma.webhook.updateMany({
      where: { id: current.id, signingSecretEnc: current.signingSecretEnc, deletedAt: null },
      data: {
        signingSecretEnc: deps.secretBox.encrypt(signingSecret),
        previousSecretEnc: current.signingSecretEnc,
        previousSecretExpires: new Date(Date.now() + ROTATION_GRACE_MS),
      },
    });
    if (rotated.count === 0) continue;
    const row = await deps.db.prisma.webhook.findUniqueOrThrow({ where: { id: current.id } });
    return { webhook: { ...webhookResource(row), signing_secret: signingSecret } };
  }
  throw new AppError('SERVICE_UNAVAILABLE', 'The secret is being rotated by another request; try again.');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes a synthetic extraction.job_completed event (`test: true`) for this
 * webhook only, enqueues it and waits for the worker to record its first
 * attempt. The worker never retries a test, so one attempt is the answer.
 */
export async function sendTest(
  deps: Pick<ApiDeps, 'db' | 'queue' | 'logger'>,
  accountId: string,
  webhookId: string,
  opts: { waitMs?: number; pollMs?: number; signal?: AbortSignal } = {},
) {
  // A paused or disabled webhook is tested too: the worker lets explicit user actions through,
  // so an integrator can check a fixed endpoint before resuming it.
  const webhook = await findOwnWebhook(deps, accountId, webhookId);
  const written = await deps.db.prisma.$transaction((tx) =>
    writeEvent(tx, {
      accountId,
      event: 'extraction.job_completed',
      parserId: webhook.parserId,
      test: true,
      onlyWebhookId: webhook.id,
      data: {
        extraction_id: `ext_test_${randomBase62(20)}`,
        parser_id: webhook.parserId,
        status: 'completed',
        document_count: 1,
        completed_count: 1,
        failed_count: 0,
      },
    }),
  );
  const [deliveryId] = written.deliveryIds;
  const giveUp = () =>
    // The caller is told the test failed: it must not be delivered by the relay later.
    deps.db.prisma.delivery.updateMany({ where: { id: deliveryId, status: 'pending' }, data: { status: 'cancelled', completedAt: new Date() } });

  try {
    await enqueueWithin(deps, [deliveryId]);
  } catch {
    await giveUp();
    throw queueDown();
  }

  const deadline = Date.now() + (opts.waitMs ?? TEST_WAIT_MS);
  while (!opts.signal?.aborted) {
    const row = await deps.db.prisma.delivery.findUnique({
      where: { id: deliveryId },
      select: { status: true, attempts: { orderBy: { attemptNumber: 'asc' }, take: 1 } },
    });
    const [attempt] = row?.attempts ?? [];
    if (attempt) return { attempt: attemptResource(attempt) };
    // The worker cancels a test only when the webhook was deleted meanwhile.
    if (row?.status === 'cancelled') throw webhookNotFound();
    if (Date.now() >= deadline) break;
    await sleep(opts.pollMs ?? TEST_POLL_MS);
  }
  if (opts.signal?.aborted) return null;
  await giveUp();
  deps.logger.warn('test delivery not picked up in time', { webhook_id: webhook.id, delivery_id: deliveryId });
  throw new AppError('SERVICE_UNAVAILABLE', 'The delivery worker did not pick up the test in time; is a worker running?');
}
