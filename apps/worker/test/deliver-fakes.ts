import { randomBytes } from 'node:crypto';
import { createLogger } from '@hookline/config';
import { createSecretBox, generateSigningSecret } from '@hookline/domain';
import { createMetrics } from '@hookline/metrics';
import type { DeliverContext, DeliveryStorePort } from '../src/deliver/context';
import { createSecretCache } from '../src/deliver/send';
import type { AttemptRecord, LoadedDelivery } from '../src/delivery-store';
import type { Acquired, EndpointGate, Lease } from '../src/endpoint-gate';
import type { Sender, SendResult } from '../src/sender';

// In-memory stand-ins for the delivery phases' dependencies (deliver/context.ts):
// a store that keeps one delivery and its webhook's circuit, a gate that hands
// out leases and says what it was asked, a sender that counts its sends. The
// phases run on them without PostgreSQL or Redis.

export const secretBox = createSecretBox(randomBytes(32));
export const config = {
  WEBHOOK_BRAND: 'PerfectParser', RETRY_SCHEDULE: [300, 600, 1200], RETRY_JITTER: 0, AUTO_DISABLE_AFTER: 3 * 86_400_000, DELIVERY_TIMEOUT: 2_000,
  ENDPOINT_CONCURRENCY: 10, CIRCUIT_BREAKER_THRESHOLD: 5, CIRCUIT_BREAKER_COOLDOWN: 1_000,
};

let rows = 0;
/** A pending delivery of an ordinary event to an active webhook with a closed circuit. */
export function loadedRow(overrides: Partial<LoadedDelivery> = {}): LoadedDelivery {
  rows += 1;
  return {
    id: `dlv_${rows}`, account_id: 'acc_1', status: 'pending', attempt_count: 0, next_attempt_at: null, webhook_id: `wh_${rows}`,
    event_id: `evt_${rows}`, event: 'extraction.document_completed', url: 'https://receiver.example/hook', is_active: true,
    retry_enabled: true, max_retries: 3, signing_secret_enc: secretBox.encrypt(generateSigningSecret()), previous_secret_enc: null,
    previous_valid: false, static_secret_enc: null, custom_headers_enc: null, disabled_reason: null, failing_since: null,
    failing_announced: false, deleted: false, max_in_flight: null, rate_limit_per_second: null, circuit: 'closed',
    circuit_retry_at: null, circuit_cooldown_ms: null, data: { extraction_id: 'ext_1' }, test: false, event_created_at: new Date(),
    ...overrides,
  };
}

export type FakeStore = DeliveryStorePort & {
  /** Every call, by method name, with its arguments. */
  calls: Array<{ method: string; args: unknown[] }>;
  /** How many of the next record() calls reject (PostgreSQL gone) before one is written. */
  failNextRecords: number;
  /** The attempts written, in order. */
  written: AttemptRecord[];
  /** How long each record() takes (ms; PostgreSQL busy). */
  recordDelayMs: number;
  /** How many of the next record() calls the guard refuses (another run recorded an attempt meanwhile). */
  refuseNextRecords: number;
  /** What current() answers after a refusal (default: the row as loaded, no attempt of ours). */
  fresh: { status: LoadedDelivery['status']; attempt_count: number; mine: number | null } | null;
};

/** A store holding `row` (its webhook's circuit included, so a probe is claimed once, as the guarded UPDATE does). */
export function fakeStore(row: LoadedDelivery): FakeStore {
  const circuit = { state: row.circuit, retryAt: row.circuit_retry_at };
  const calls: FakeStore['calls'] = [];
  const call = (method: string, args: unknown[]) => calls.push({ method, args });
  const write = async (item: AttemptRecord) => {
    if (store.recordDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, store.recordDelayMs));
    if (store.failNextRecords > 0) {
      store.failNextRecords -= 1;
      throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    }
    if (store.refuseNextRecords > 0) {
      store.refuseNextRecords -= 1;
      return null;
    }
    store.written.push(item);
    return { wake: [] as string[] };
  };
  const store: FakeStore = {
    calls,
    failNextRecords: 0,
    recordDelayMs: 0,
    written: [],
    refuseNextRecords: 0,
    fresh: null,
    load: async (...args) => (call('load', args), row),
    cancel: async (...args) => (call('cancel', args), true),
    claimProbe: async (...args) => {
      call('claimProbe', args);
      const [, deadline, at] = args;
      if (circuit.state === 'closed' || (circuit.retryAt?.getTime() ?? 0) > at.getTime()) return false;
      circuit.state = 'half_open';
      circuit.retryAt = deadline;
      return true;
    },
    waitingDocuments: async (...args) => (call('waitingDocuments', args), { waiting: 0, latest: null }),
    record: async (...args) => (call('record', args), write(args[0])),
    recordExhausted: async (...args) => {
      call('recordExhausted', args);
      const done = await write(args[0]);
      return done && { ...done, deliveries: [] };
    },
    current: async (...args) => (call('current', args), store.fresh ?? { status: row.status, attempt_count: row.attempt_count, mine: null }),
    clearFailing: async (...args) => (call('clearFailing', args), true),
    disableGone: async (...args) => (call('disableGone', args), { won: true, deliveries: [] }),
    markFailing: async (...args) => (call('markFailing', args), { failingSince: args[1], deliveries: [] }),
    disableFailingTooLong: async (...args) => (call('disableFailingTooLong', args), { won: true, deliveries: [] }),
    openCircuit: async (...args) => (call('openCircuit', args), true),
    reopenCircuit: async (...args) => (call('reopenCircuit', args), true),
    closeCircuit: async (...args) => (call('closeCircuit', args), true),
  };
  return store;
}

export type FakeGate = EndpointGate & {
  calls: Array<{ method: keyof EndpointGate; input: unknown }>;
  /** What acquire answers (default: a slot, its lease good for a minute). */
  acquired: () => Acquired;
  /** What renew answers, when (default: true, at once). */
  renewed: () => Promise<boolean>;
};

export function fakeGate(): FakeGate {
  let leases = 0;
  const gate: FakeGate = {
    calls: [],
    acquired: () => ({ ok: true, lease: { id: `lease_${(leases += 1)}`, expiresAt: Date.now() + 60_000 } }),
    renewed: async () => true,
    acquire: async (input) => (gate.calls.push({ method: 'acquire', input }), gate.acquired()),
    release: async (input) => (gate.calls.push({ method: 'release', input }), 0),
    park: async (input) => void gate.calls.push({ method: 'park', input }),
    wakeAll: async (input) => void gate.calls.push({ method: 'wakeAll', input }),
    renew: async (input) => (gate.calls.push({ method: 'renew', input }), gate.renewed()),
    resetFailures: async (input) => void gate.calls.push({ method: 'resetFailures', input }),
    probeClaimed: async (input) => void gate.calls.push({ method: 'probeClaimed', input }),
    probeEnded: async (input) => void gate.calls.push({ method: 'probeEnded', input }),
    reclaim: async (...input) => void gate.calls.push({ method: 'reclaim', input }),
    inspect: async () => ({ held: 0, inFlight: 0, failures: 0 }),
  };
  return gate;
}

/** The gate's calls of one method. */
export const callsOf = (gate: FakeGate, method: keyof EndpointGate) => gate.calls.filter((c) => c.method === method);

export const answered = (status: number, overrides: Partial<SendResult> = {}): SendResult => ({
  ok: status >= 200 && status < 300, status, body: 'ok', error: null, durationMs: 20, retryAfterMs: null, ...overrides,
});

/** A sender that answers `result` and counts its sends. */
export function fakeSender(result: SendResult): Sender & { sent: number } {
  const sender = {
    sent: 0,
    send: async () => ((sender.sent += 1), result),
    close: () => undefined,
  };
  return sender;
}

export function fakeContext(parts: { store: FakeStore; gate?: FakeGate; sender?: Sender; line?: DeliverContext['line'] }): DeliverContext {
  return {
    store: parts.store,
    gate: parts.gate ?? fakeGate(),
    line: parts.line,
    sender: parts.sender ?? fakeSender(answered(200)),
    secrets: createSecretCache(secretBox, config.WEBHOOK_BRAND),
    logger: createLogger({ level: 'error', service: 'deliver-phases-test', silent: true }),
    metrics: createMetrics({ app: 'deliver-phases-test', defaultMetrics: false }),
    config,
    recordRetryMs: { first: 1, max: 5 },
  };
}

/** A lease that expires `ms` from now. */
export const leaseFor = (ms: number): Lease => ({ id: `lease_${randomBytes(3).toString('hex')}`, expiresAt: Date.now() + ms });
