import { writeEventBatch } from '@hookline/db';
import { newId } from '@hookline/domain';
import { accountWithWebhooks, DOC, historyDatabase } from './support/history-fixtures';
import { createDeliveryStore, type AttemptRecord } from '../src/delivery-store';

// The worker's load and record over rows of both shapes (docs/operations.md,
// "Rolling upgrades and the compact history"): a delivery the previous version
// wrote (its own account and event name, the payload whole in events.data) and
// one of the compact history (those copies NULL, a large payload compressed in
// events.data_z) load the same; recording an attempt in the compact history
// leaves the attempt's copies of its delivery's event id and name NULL.

const database = historyDatabase();


const bigData = (extractionId: string) => ({
  extraction_id: extractionId, document_id: 'doc_1', status: 'completed', file_name: 'a.pdf',
  result: { fields: Array.from({ length: 120 }, (_, i) => ({ name: `field_${i % 30}`, value: `v${i * 7919}`, confidence: (i % 100) / 100 })) },
});

const succeeded = (deliveryId: string): AttemptRecord => ({
  deliveryId, status: 'succeeded', at: new Date(), nextAttemptAt: null, expectedCount: 0, attemptId: newId('attempt'), attemptStatus: 'succeeded',
  responseStatus: 200, responseBody: '{}', error: null, durationMs: 5, wakeExtraction: null,
});

describe('the delivery store over both shapes of history', () => {
  it('loads a delivery of the previous version (written by hand, as it wrote it) and one of the compact history alike', async () => {
    const { accountId, webhookIds: [webhookId] } = await accountWithWebhooks(database(), 1);
    const data = bigData('ext_shapes');
    // The previous version's rows, as its outbox wrote them: 24-character ids, every copy set, the payload whole.
    const oldEvent = `evt_${'A1b2C3d4E5f6G7h8I9j0K1l2'}`;
    const oldDelivery = `dlv_${'Z9y8X7w6V5u4T3s2R1q0P9o8'}`;
    await database().db.sql.query('INSERT INTO events (id, account_id, event, parser_id, data, test, created_at) VALUES ($1, $2, $3, NULL, $4::jsonb, false, now())', [oldEvent, accountId, DOC, JSON.stringify(data)]);
    await database().db.sql.query(
      `INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, status, attempt_count, next_attempt_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, 'pending', 0, now(), now(), now())`,
      [oldDelivery, accountId, webhookId, oldEvent, DOC],
    );
    database().db.compact = true;
    const [written] = await writeEventBatch(database().db.sql, [{ accountId, event: DOC, parserId: null, data }], database().db);
    const [compactRow] = await database().db.sql.query<{ data_z: Uint8Array | null }>('SELECT data_z FROM events WHERE id = $1', [written!.eventId]);
    expect(compactRow.data_z).not.toBeNull();

    const store = createDeliveryStore(database().db);
    const [previous, compact] = await Promise.all([store.load(oldDelivery), store.load(written!.deliveryIds[0])]);
    for (const [row, eventId] of [[previous, oldEvent], [compact, written!.eventId]] as const) {
      expect(row).toMatchObject({ account_id: accountId, webhook_id: webhookId, event_id: eventId, event: DOC, status: 'pending', attempt_count: 0 });
      expect(row!.data).toEqual(data);
      expect(row).not.toHaveProperty('data_z');
    }
  });

  it('records an attempt: the compact history leaves its copies NULL, the previous shape sets them', async () => {
    const { accountId, webhookIds: [webhookId] } = await accountWithWebhooks(database(), 1);
    for (const compact of [false, true]) {
      database().db.compact = compact;
      const store = createDeliveryStore(database().db);
      const [written] = await writeEventBatch(database().db.sql, [{ accountId, event: DOC, parserId: null, data: { extraction_id: `ext_${compact}` } }], database().db);
      const deliveryId = written!.deliveryIds[0];
      expect(await store.record(succeeded(deliveryId))).toEqual({ wake: [] });
      const [attempt] = await database().db.sql.query<{ event_id: string | null; event: string | null; webhook_id: string }>(
        'SELECT event_id, event, webhook_id FROM attempts WHERE delivery_id = $1', [deliveryId],
      );
      const [delivery] = await database().db.sql.query<{ status: string; updated_at: Date | null }>('SELECT status, updated_at FROM deliveries WHERE id = $1', [deliveryId]);
      expect(attempt).toEqual(compact ? { event_id: null, event: null, webhook_id: webhookId } : { event_id: written!.eventId, event: DOC, webhook_id: webhookId });
      expect(delivery.status).toBe('succeeded');
      expect(delivery.updated_at === null).toBe(compact);
    }
  });
});
