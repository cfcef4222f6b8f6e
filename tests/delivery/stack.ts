import request from 'supertest';
import type { RedisTarget } from '@hookline/queue';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { startReceiver, type Receiver, type Reply, type Responder } from '../support/receiver';
import { startWorkerHarness, type WorkerHarness, type WorkerHarnessOptions } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';
import { WAITING_STATUSES } from '@hookline/domain';

// The end-to-end delivery stack: the real API (over HTTP, via supertest) and
// the real worker on one fresh database and BullMQ prefix, plus real
// receivers on 127.0.0.1. Webhooks are created and events emitted through the
// public APIs, exactly as an integrator and the platform would.

export type Stack = {
  api: ApiHarness;
  worker: WorkerHarness;
  /** A pro account with a test-mode key (http:// URLs allowed); every call below acts for it. */
  account: { accountId: string; key: string; auth: { Authorization: string } };
  /** Switches to a new account, so events of one test reach none of another test's webhooks. */
  freshAccount(): Promise<void>;
  receivers: Receiver[];
  receiver(initial?: Responder | Reply): Promise<Receiver>;
  v1: {
    get(path: string): request.Test;
    post(path: string, body?: unknown): request.Test;
    patch(path: string, body: unknown): request.Test;
    delete(path: string): request.Test;
  };
  createWebhook(body: Record<string, unknown>): Promise<CreatedWebhook>;
  /** POST /internal/v1/events; resolves to the event id. */
  publish(event: string, data?: Record<string, unknown>, expectedDeliveries?: number): Promise<string>;
  /** The deliveries of one webhook, through the API. */
  deliveries(webhookId: string): Promise<ApiDelivery[]>;
  /** GET /v1/deliveries/:id. */
  delivery(deliveryId: string): Promise<{ delivery: ApiDelivery; attempts: ApiAttempt[] }>;
  webhook(webhookId: string): Promise<Record<string, unknown> & { status: string; disabled_reason: string | null; failing_since: string | null }>;
  close(): Promise<void>;
};

export type CreatedWebhook = { id: string; url: string; signing_secret: string } & Record<string, unknown>;
export type ApiDelivery = { id: string; webhook_id: string; event_id: string; event: string; status: string; attempt_count: number; next_attempt_at: string | null };
export type ApiAttempt = {
  id: string; attempt_number: number; status: string; response_status: number | null; response_body: string | null;
  error: string | null; duration_ms: number; created_at: string; next_retry_at: string | null;
};

export type StackOptions = {
  worker?: Partial<Omit<WorkerHarnessOptions, 'databaseUrl' | 'prefix' | 'encryptionKey'>>;
  redisUrl?: string;
  /** Another Redis topology (a test's own cluster or Sentinel), for the API and the worker. */
  redis?: RedisTarget;
  /** DELIVERY_QUEUE_SHARDS for the API and the worker; default: the topology's. */
  shards?: number;
  /** false: build the API only; start workers yourself with startWorkerHarness. */
  startWorker?: boolean;
};

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const api = await startApiHarness({ redisUrl: opts.redisUrl, redis: opts.redis, shards: opts.shards });
  const worker = opts.startWorker === false
    ? (undefined as unknown as WorkerHarness)
    : await startWorkerHarness({ databaseUrl: api.database.url, prefix: api.prefix, encryptionKey: api.encryptionKey, redisUrl: opts.redisUrl, redis: opts.redis, shards: opts.shards, ...opts.worker });
  const account = await api.integrator({ plan: 'pro', mode: 'test' });
  const receivers: Receiver[] = [];
  const v1 = {
    get: (path: string) => request(api.app).get(path).set(stack.account.auth),
    post: (path: string, body?: unknown) => request(api.app).post(path).set(stack.account.auth).send(body as object),
    patch: (path: string, body: unknown) => request(api.app).patch(path).set(stack.account.auth).send(body as object),
    delete: (path: string) => request(api.app).delete(path).set(stack.account.auth),
  };
  const stack: Stack = {
    api,
    worker,
    account,
    receivers,
    v1,
    async freshAccount() {
      stack.account = await api.integrator({ plan: 'pro', mode: 'test' });
    },
    async receiver(initial) {
      const r = await startReceiver(initial);
      receivers.push(r);
      return r;
    },
    async createWebhook(body) {
      const res = await v1.post('/v1/webhooks', { events: ['quota.warning'], ...body });
      if (res.status !== 201) throw new Error(`create webhook: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.webhook;
    },
    async publish(event, data = {}, expectedDeliveries) {
      // quota.* data needs usage and limit (the event's data schema); a test names only what it checks.
      const body = { account_id: stack.account.accountId, event, data: event.startsWith('quota.') ? { usage: 80, limit: 100, ...data } : data };
      const res = await api.platform.post('/internal/v1/events', body);
      if (res.status !== 202) throw new Error(`publish: ${res.status} ${JSON.stringify(res.body)}`);
      if (expectedDeliveries !== undefined && res.body.event.deliveries !== expectedDeliveries) {
        throw new Error(`publish: expected ${expectedDeliveries} deliveries, got ${res.body.event.deliveries}`);
      }
      return res.body.event.id;
    },
    async deliveries(webhookId) {
      const res = await v1.get(`/v1/webhooks/${webhookId}/deliveries?limit=100`);
      if (res.status !== 200) throw new Error(`list deliveries: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.data;
    },
    async delivery(deliveryId) {
      const res = await v1.get(`/v1/deliveries/${deliveryId}`);
      if (res.status !== 200) throw new Error(`get delivery: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async webhook(webhookId) {
      const res = await v1.get(`/v1/webhooks/${webhookId}`);
      if (res.status !== 200) throw new Error(`get webhook: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.webhook;
    },
    async close() {
      await Promise.all(receivers.map((r) => r.close()));
      await worker?.close();
      await api.close();
    },
  };
  return stack;
}

/** Polls `check` until it returns a value other than undefined/false (or throws after timeoutMs). */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const found = await waitUntil(async () => {
    const value = await check();
    // waitUntil wants a truthy value; 0 and '' are answers here.
    return value !== undefined && value !== false ? { value } : undefined;
  }, `${what} reached`, { timeoutMs, intervalMs: 50 });
  return found.value;
}

/**
 * Waits until no delivery of the stack's account is waiting (pending or
 * pending_retry): every callback that anything written so far will cause has
 * been tried for the last time. A check that nothing (more) arrived follows it.
 */
export async function allDeliveriesFinal(stack: Stack, timeoutMs = 15_000): Promise<void> {
  await waitUntil(
    async () => (await stack.api.deps.db.prisma.delivery.count({ where: { status: { in: [...WAITING_STATUSES] }, webhook: { accountId: stack.account.accountId } } })) === 0,
    'every delivery of the account final',
    { timeoutMs, intervalMs: 50 },
  );
}

/**
 * Waits until the delivery's job has ended (completed, and so removed, or
 * failed): no attempt of it is still to come, not even a retry scheduled before
 * the delivery ended. A check that the receiver saw nothing more follows it.
 */
export async function jobEnded(stack: Stack, deliveryId: string, timeoutMs = 15_000): Promise<void> {
  await waitUntil(async () => {
    const job = await stack.api.queue.getJob(deliveryId);
    return !job || ['completed', 'failed'].includes(await job.getState());
  }, `the job of ${deliveryId} ended`, { timeoutMs, intervalMs: 50 });
}

/** The delivery once it reached `status` (through the API). */
export function deliveryReaches(stack: Stack, deliveryId: string, status: string, timeoutMs = 15_000) {
  return eventually(async () => {
    const found = await stack.delivery(deliveryId);
    return found.delivery.status === status ? found : undefined;
  }, timeoutMs, `delivery ${deliveryId} ${status}`);
}

/** The single delivery of `webhookId`, once it exists. */
export async function onlyDelivery(stack: Stack, webhookId: string): Promise<ApiDelivery> {
  return eventually(async () => {
    const list = await stack.deliveries(webhookId);
    return list.length === 1 ? list[0] : undefined;
  }, 5_000, `one delivery for ${webhookId}`);
}


/** For a test about time itself (a retry's due time passing); to wait for a state, use waitUntil. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
