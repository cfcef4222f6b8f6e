import { CIRCUIT_STATES, type CircuitState } from './delivery-policy';

// Database rows → the JSON objects of docs/api.md#objects. The row types name only the
// fields read here, so Prisma's generated types satisfy them structurally.

export type WebhookRow = {
  id: string; url: string; events: string[]; description: string | null; parserId: string | null; source: string;
  isActive: boolean; retryEnabled: boolean; maxRetries: number; staticSecretEnc: string | null;
  disabledReason: string | null; failingSince: Date | null; createdAt: Date; updatedAt: Date;
  maxInFlight: number | null; rateLimitPerSecond: number | null; circuit: string; circuitRetryAt: Date | null;
  // circuit_cooldown_ms is the worker's own bookkeeping (the next open period): never shown, so not named here.
};


/** The column is free text; anything unexpected reads as closed rather than leaking an unknown value. */
export function circuitState(value: string): CircuitState {
  return (CIRCUIT_STATES as readonly string[]).includes(value) ? (value as CircuitState) : 'closed';
}

export type WebhookStatus = 'active' | 'paused' | 'failing' | 'disabled';

export function webhookStatus(row: Pick<WebhookRow, 'isActive' | 'disabledReason' | 'failingSince'>): WebhookStatus {
  if (row.disabledReason) return 'disabled';
  if (!row.isActive) return 'paused';
  if (row.failingSince) return 'failing';
  return 'active';
}

export function webhookResource(row: WebhookRow) {
  const circuit = circuitState(row.circuit);
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    description: row.description,
    parser_id: row.parserId,
    source: row.source,
    is_active: row.isActive && !row.disabledReason,
    status: webhookStatus(row),
    retry_enabled: row.retryEnabled,
    max_retries: row.maxRetries,
    has_static_secret: row.staticSecretEnc !== null,
    disabled_reason: row.disabledReason,
    failing_since: row.failingSince?.toISOString() ?? null,
    max_in_flight: row.maxInFlight,
    rate_limit_per_second: row.rateLimitPerSecond,
    circuit,
    // A closed circuit holds nothing back, so a time left over from its last opening means nothing.
    circuit_retry_at: circuit === 'closed' ? null : (row.circuitRetryAt?.toISOString() ?? null),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export type DeliveryRow = {
  id: string; webhookId: string; eventId: string; event: string; status: string; attemptCount: number;
  nextAttemptAt: Date | null; lastAttemptAt: Date | null; createdAt: Date;
};

export function deliveryResource(row: DeliveryRow) {
  const waiting = row.status === 'pending' || row.status === 'pending_retry';
  return {
    id: row.id,
    webhook_id: row.webhookId,
    event_id: row.eventId,
    event: row.event,
    status: row.status,
    attempt_count: row.attemptCount,
    next_attempt_at: waiting ? (row.nextAttemptAt?.toISOString() ?? null) : null,
    last_attempt_at: row.lastAttemptAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}

export type AttemptRow = {
  id: string; deliveryId: string; eventId: string; event: string; attemptNumber: number; status: string;
  responseStatus: number | null; responseBody: string | null; error: string | null; durationMs: number;
  createdAt: Date; nextRetryAt: Date | null;
};

export function attemptResource(row: AttemptRow) {
  return {
    id: row.id,
    delivery_id: row.deliveryId,
    event_id: row.eventId,
    event: row.event,
    attempt_number: row.attemptNumber,
    status: row.status,
    response_status: row.responseStatus,
    response_body: row.responseBody,
    error: row.error,
    duration_ms: row.durationMs,
    created_at: row.createdAt.toISOString(),
    next_retry_at: row.nextRetryAt?.toISOString() ?? null,
  };
}

export type AccountRow = { id: string; name: string; plan: string; monthlyQuota: number | null; createdAt: Date };

export function accountResource(row: AccountRow) {
  return { id: row.id, name: row.name, plan: row.plan, monthly_quota: row.monthlyQuota, created_at: row.createdAt.toISOString() };
}

export type ExtractionRow = {
  id: string; accountId: string; parserId: string | null; documentCount: number; completedCount: number;
  failedCount: number; status: string; completedAt: Date | null; createdAt: Date;
};

export function extractionResource(row: ExtractionRow) {
  return {
    extraction_id: row.id,
    account_id: row.accountId,
    parser_id: row.parserId,
    document_count: row.documentCount,
    completed_count: row.completedCount,
    failed_count: row.failedCount,
    status: row.status,
    completed_at: row.completedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}

/** The callback body (docs/api.md#callbacks). Its serialised bytes are what is signed. */
export function callbackBody(event: { id: string; event: string; createdAt: Date; test: boolean; data: unknown }): string {
  return JSON.stringify({ id: event.id, event: event.event, created_at: event.createdAt.toISOString(), test: event.test, data: event.data });
}
