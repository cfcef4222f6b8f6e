import { deliver } from '../src/deliver';
import { answered, config, fakeContext, fakeSender, fakeStore, loadedRow } from './deliver-fakes';

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
