import { deliver } from '../src/deliver';
import type { KnownOutcome } from '../src/deliver';
import { answered, config, fakeContext, fakeGate, fakeSender, fakeStore, loadedRow } from './deliver-fakes';

// Recording an attempt (deliver/record.ts) on an in-memory store: an answered
// callback is written once, however many tries that takes, and never sent
// again for it; the decision after it (a retry, or the end) is what is written.

it('retries a record that fails until it is written: the outcome kept, the callback not sent again', async () => {
  const row = loadedRow();
  const store = fakeStore(row);
  store.failNextRecords = 3;
  const sender = fakeSender(answered(200, { body: 'thanks', durationMs: 42 }));
  const ctx = fakeContext({ store, sender });

  await expect(deliver(ctx, { deliveryId: row.id, jobId: row.id })).resolves.toMatchObject({ outcome: 'succeeded', attemptNumber: 1, next: { kind: 'done' } });
  expect(sender.sent).toBe(1);
  const tries = store.calls.filter((c) => c.method === 'record');
  expect(tries).toHaveLength(4);
  // Every try is the same attempt (one id: a try that committed unanswered is found by it, not written twice).
  expect(new Set(tries.map((c) => (c.args[0] as { attemptId: string }).attemptId)).size).toBe(1);
  expect(store.written).toHaveLength(1);
  expect(store.written[0]).toMatchObject({
    deliveryId: row.id, status: 'succeeded', expectedCount: 0, attemptStatus: 'succeeded', responseStatus: 200, responseBody: 'thanks', durationMs: 42,
  });
});

it('records a failure with retries left as pending_retry, due after the schedule\'s delay: the job retries', async () => {
  const row = loadedRow({ max_retries: 3 });
  const store = fakeStore(row);
  const ctx = fakeContext({ store, sender: fakeSender(answered(500)) });

  const before = Date.now();
  const result = await deliver(ctx, { deliveryId: row.id, jobId: row.id });
  expect(result).toMatchObject({ outcome: 'retrying', delayMs: config.RETRY_SCHEDULE[0], next: { kind: 'retry', delayMs: config.RETRY_SCHEDULE[0] } });
  expect(store.written).toHaveLength(1);
  expect(store.written[0]).toMatchObject({ status: 'pending_retry', attemptStatus: 'failed', responseStatus: 500 });
  expect(store.written[0].nextAttemptAt!.getTime()).toBeGreaterThanOrEqual(before + config.RETRY_SCHEDULE[0]);
  expect(store.calls.map((c) => c.method)).not.toContain('recordExhausted');
  expect(store.calls.map((c) => c.method)).not.toContain('markFailing');
});

it('records the last retry\'s failure as final: failed, delivery.exhausted written with it, the webhook marked failing, the job stops', async () => {
  const row = loadedRow({ max_retries: 3, status: 'pending_retry', attempt_count: 3, next_attempt_at: new Date(Date.now() - 1_000) });
  const store = fakeStore(row);
  const ctx = fakeContext({ store, sender: fakeSender(answered(500)) });

  const result = await deliver(ctx, { deliveryId: row.id, jobId: row.id });
  expect(result).toMatchObject({ outcome: 'failed', attemptNumber: 4, next: { kind: 'stop' } });
  expect(store.written).toHaveLength(1);
  expect(store.written[0]).toMatchObject({ status: 'failed', nextAttemptAt: null, expectedCount: 3 });
  const exhausted = store.calls.filter((c) => c.method === 'recordExhausted');
  expect(exhausted).toHaveLength(1);
  expect(exhausted[0].args[1]).toMatchObject({ event: 'delivery.exhausted', aboutWebhookId: row.webhook_id, data: { delivery_id: row.id, attempt_count: 4, last_response_status: 500 } });
  expect(store.calls.filter((c) => c.method === 'markFailing')).toHaveLength(1);
});

it('decides again on the fresh count when the guard refuses the record: another run recorded an attempt meanwhile', async () => {
  const row = loadedRow({ max_retries: 3 });
  const store = fakeStore(row);
  store.refuseNextRecords = 1;
  store.fresh = { status: 'pending_retry', attempt_count: 1, mine: null };
  const ctx = fakeContext({ store, sender: fakeSender(answered(500)) });

  await expect(deliver(ctx, { deliveryId: row.id, jobId: row.id })).resolves.toMatchObject({
    outcome: 'retrying', attemptNumber: 2, next: { kind: 'retry', delayMs: config.RETRY_SCHEDULE[1] },
  });
  expect(store.written).toHaveLength(1);
  expect(store.written[0]).toMatchObject({ status: 'pending_retry', expectedCount: 1 });
});

it('keeps the decision of a try that committed although its answer was lost: found by its attempt id, not written twice', async () => {
  const row = loadedRow();
  const store = fakeStore(row);
  store.refuseNextRecords = 1;
  store.fresh = { status: 'succeeded', attempt_count: 1, mine: 1 };
  const ctx = fakeContext({ store, sender: fakeSender(answered(200)) });

  await expect(deliver(ctx, { deliveryId: row.id, jobId: row.id })).resolves.toMatchObject({ outcome: 'succeeded', attemptNumber: 1, next: { kind: 'done' } });
  expect(store.calls.filter((c) => c.method === 'record')).toHaveLength(1);
  expect(store.written).toEqual([]);
  const [asked] = store.calls.filter((c) => c.method === 'current');
  expect(asked.args).toEqual([row.id, (store.calls.find((c) => c.method === 'record')!.args[0] as { attemptId: string }).attemptId]);
});

/** An in-memory outcome journal of one job (worker.ts keeps it in Redis beside the job). */
function memoryJournal(rerun: boolean) {
  const journal = {
    entry: null as KnownOutcome | null,
    kept: 0,
    forgotten: 0,
    keep: async (outcome: KnownOutcome) => {
      journal.entry = outcome;
      journal.kept += 1;
    },
    forget: async () => {
      journal.entry = null;
      journal.forgotten += 1;
    },
    ...(rerun ? { find: async () => journal.entry } : {}),
  };
  return journal;
}

it('keeps an answered attempt in the job\'s outcome journal when the first record fails, and forgets it once written', async () => {
  const row = loadedRow();
  const store = fakeStore(row);
  store.failNextRecords = 2;
  const journal = memoryJournal(false);
  const ctx = fakeContext({ store, sender: fakeSender(answered(200, { body: 'thanks', durationMs: 42 })) });

  await expect(deliver(ctx, { deliveryId: row.id, jobId: row.id, journal })).resolves.toMatchObject({ outcome: 'succeeded' });
  // Kept once (at the first failure), with the attempt's id and the count it was sent at; forgotten after the write.
  expect(journal.kept).toBe(1);
  expect(journal.forgotten).toBe(1);
  expect(journal.entry).toBeNull();
  // A record that succeeds at once keeps nothing: no Redis round trip on the usual path.
  const quiet = memoryJournal(false);
  const other = loadedRow();
  await deliver(fakeContext({ store: fakeStore(other), sender: fakeSender(answered(200)) }), { deliveryId: other.id, jobId: other.id, journal: quiet });
  expect([quiet.kept, quiet.forgotten]).toEqual([0, 0]);
});

it('keeps an answered attempt in the outcome journal when PostgreSQL is slow to take it, and forgets it once written', async () => {
  const row = loadedRow();
  const store = fakeStore(row);
  store.recordDelayMs = 300;
  const journal = memoryJournal(false);
  const kept: Array<KnownOutcome | null> = [];
  const keep = journal.keep;
  journal.keep = async (outcome) => {
    kept.push(outcome);
    await keep(outcome);
  };
  const ctx = fakeContext({ store, sender: fakeSender(answered(200)) });
  await expect(deliver(ctx, { deliveryId: row.id, jobId: row.id, journal })).resolves.toMatchObject({ outcome: 'succeeded' });
  expect((await ctx.metrics.outcomeJournal.get()).values).toEqual([expect.objectContaining({ labels: { event: 'kept_slow' }, value: 1 })]);
  expect(kept).toHaveLength(1);
  expect(kept[0]).toMatchObject({ attemptId: store.written[0].attemptId, attemptCount: 0, result: { ok: true, status: 200 } });
  expect([journal.forgotten, journal.entry]).toEqual([1, null]);
});

it('a job run again after its worker died records the attempt found in its outcome journal: no slot, no send, the same attempt id', async () => {
  const row = loadedRow();
  const store = fakeStore(row);
  const sender = fakeSender(answered(200));
  const ctx = fakeContext({ store, sender });
  const journal = memoryJournal(true);
  journal.entry = {
    attemptId: 'attempt_kept', attemptCount: 0,
    result: { ok: true, status: 200, body: 'first run', error: null, durationMs: 12, retryAfterMs: null },
  };

  await expect(deliver(ctx, { deliveryId: row.id, jobId: row.id, journal })).resolves.toMatchObject({ outcome: 'succeeded', attemptId: 'attempt_kept', attemptNumber: 1, next: { kind: 'done' } });
  expect(sender.sent).toBe(0);
  expect(store.written).toHaveLength(1);
  expect(store.written[0]).toMatchObject({ attemptId: 'attempt_kept', status: 'succeeded', expectedCount: 0, responseBody: 'first run', durationMs: 12 });
  expect(journal.entry).toBeNull();
});

it('an outcome journal entry the row has moved past (recorded after all) is dropped, and the job goes on as usual', async () => {
  // The first run's record committed before its worker died: the count is 1 and the delivery waits for its retry.
  const row = loadedRow({ max_retries: 3, status: 'pending_retry', attempt_count: 1, next_attempt_at: new Date(Date.now() - 1_000) });
  const store = fakeStore(row);
  const sender = fakeSender(answered(200));
  const journal = memoryJournal(true);
  journal.entry = { attemptId: 'attempt_old', attemptCount: 0, result: { ok: false, status: 500, body: null, error: null, durationMs: 5, retryAfterMs: null } };

  await expect(deliver(fakeContext({ store, sender }), { deliveryId: row.id, jobId: row.id, journal })).resolves.toMatchObject({ outcome: 'succeeded', attemptNumber: 2 });
  expect(sender.sent).toBe(1);
  expect(store.written.map((w) => w.attemptId)).not.toContain('attempt_old');
  expect(journal.entry).toBeNull();
});

it('an attempt waiting for PostgreSQL is tried again the moment the outage ends, not at the end of its back-off', async () => {
  const row = loadedRow();
  const store = fakeStore(row);
  store.failNextRecords = 1;
  let ended!: () => void;
  const outageOver = new Promise<void>((resolve) => (ended = resolve));
  const ctx = fakeContext({ store, sender: fakeSender(answered(200)) });
  Object.assign(ctx, { recordRetryMs: { first: 60_000, max: 60_000 }, isOutage: async () => true, outageEnded: () => outageOver });

  const started = Date.now();
  const done = deliver(ctx, { deliveryId: row.id, jobId: row.id });
  setTimeout(ended, 50);
  await expect(done).resolves.toMatchObject({ outcome: 'succeeded' });
  expect(Date.now() - started).toBeLessThan(30_000);
  expect(store.written).toHaveLength(1);
});

it('records the attempt while the slot is being freed: a Redis that hangs on the release does not hold the record back', async () => {
  const row = loadedRow();
  const store = fakeStore(row);
  const gate = fakeGate();
  let releaseNow!: () => void;
  const released = new Promise<void>((resolve) => (releaseNow = resolve));
  gate.release = async (input) => {
    gate.calls.push({ method: 'release', input });
    await released;
    return 0;
  };
  const done = deliver(fakeContext({ store, gate, sender: fakeSender(answered(200)) }), { deliveryId: row.id, jobId: row.id });
  // The release has not answered, and the attempt is already written.
  for (let i = 0; i < 50 && store.written.length === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(store.written).toHaveLength(1);
  expect(gate.calls.filter((c) => c.method === 'release')).toHaveLength(1);
  releaseNow();
  await expect(done).resolves.toMatchObject({ outcome: 'succeeded' });
});

it('a journal lookup that hangs (Redis failing over) holds a run back 2 s at most, then the job goes on without it', async () => {
  const row = loadedRow();
  const store = fakeStore(row);
  const sender = fakeSender(answered(200));
  const journal = { ...memoryJournal(true), find: () => new Promise<KnownOutcome | null>(() => undefined) };
  const started = Date.now();
  await expect(deliver(fakeContext({ store, sender }), { deliveryId: row.id, jobId: row.id, journal })).resolves.toMatchObject({ outcome: 'succeeded' });
  expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(sender.sent).toBe(1);
});
