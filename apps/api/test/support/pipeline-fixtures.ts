import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { generateSigningSecret, newId } from '@hookline/domain';
import type { ApiHarness } from '../../../../tests/support/api-harness';

// Fixtures shared by the delivery-pipeline tests (ingest, outbox, delivery API).

export type WebhookFixture = {
  events?: string[];
  parserId?: string | null;
  source?: 'api' | 'dashboard';
  isActive?: boolean;
  disabledReason?: string | null;
  deleted?: boolean;
  url?: string;
};

/**
 * A webhook row written directly, for states the public API cannot create in
 * one call (dashboard source, disabled, deleted). Returns its signing secret.
 */
export async function insertWebhook(h: ApiHarness, accountId: string, fx: WebhookFixture = {}) {
  const signingSecret = generateSigningSecret();
  const id = newId('webhook');
  const row = await h.deps.db.prisma.webhook.create({
    data: {
      id,
      accountId,
      url: fx.url ?? `https://hooks.example.com/${id}`,
      events: fx.events ?? ['extraction.document_completed', 'extraction.job_completed'],
      parserId: fx.parserId ?? null,
      source: fx.source ?? 'api',
      isActive: fx.isActive ?? true,
      disabledReason: fx.disabledReason ?? null,
      disabledAt: fx.disabledReason ? new Date() : null,
      deletedAt: fx.deleted ? new Date() : null,
      signingSecretEnc: h.deps.secretBox.encrypt(signingSecret),
    },
  });
  return { ...row, signingSecret };
}

export const DASHBOARD_EVENTS = ['batch.completed', 'batch.failed', 'batch.partial'];

export async function createExtraction(h: ApiHarness, accountId: string, opts: { documentCount: number; parserId?: string | null; extractionId?: string }) {
  const res = await h.platform.post('/internal/v1/extractions', {
    account_id: accountId,
    document_count: opts.documentCount,
    ...(opts.parserId !== undefined ? { parser_id: opts.parserId } : {}),
    ...(opts.extractionId ? { extraction_id: opts.extractionId } : {}),
  });
  if (res.status !== 201) throw new Error(`create extraction: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.extraction as { extraction_id: string; parser_id: string | null; document_count: number };
}

export type Report = { status: 'completed' | 'failed'; file_name?: string; result?: Record<string, unknown>; error?: string };

export const completedReport = (documentId: string): Report => ({ status: 'completed', file_name: `${documentId}.pdf`, result: { total: 42, document: documentId } });
export const failedReport = (documentId: string): Report => ({ status: 'failed', file_name: `${documentId}.pdf`, error: 'unreadable scan' });

export function report(h: ApiHarness, extractionId: string, documentId: string, body: Report) {
  return h.platform.post(`/internal/v1/extractions/${extractionId}/documents/${documentId}`, body);
}

/**
 * The app on one real listening socket: racing requests then share one server
 * (supertest's default is one ephemeral server per request).
 */
export async function listen(h: ApiHarness): Promise<{ server: Server; agent: ReturnType<typeof request>; close(): Promise<void> }> {
  const server = createServer(h.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    agent: request(`http://127.0.0.1:${port}`),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Counts of events by name for one account. */
export async function eventCounts(h: ApiHarness, accountId: string): Promise<Record<string, number>> {
  const rows = await h.deps.db.prisma.event.groupBy({ by: ['event'], where: { accountId }, _count: { _all: true } });
  return Object.fromEntries(rows.map((row) => [row.event, row._count._all]));
}
