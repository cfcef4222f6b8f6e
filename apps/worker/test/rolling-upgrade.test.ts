import { randomBytes } from 'node:crypto';
import { writeEventBatch } from '@hookline/db';
import { newId } from '@hookline/domain';
import { accountWithWebhooks, DOC, historyDatabase } from './support/history-fixtures';
import { createDeliveryStore } from '../src/delivery-store';
import { PREVIOUS_CURRENT_SQL, PREVIOUS_INSERT_SQL, PREVIOUS_LOAD_SQL, PREVIOUS_RECORD_SQL } from './support/previous-version-sql';

// A rolling restart (docs/operations.md, "Rolling upgrades and the compact
// history"): the previous version's outbox, load, record and current run, as
// they were, against the schema this version migrated, side by side with this
// version's. With COMPACT_HISTORY off (the default, and the rule until no
// process of the previous version runs) each reads what the other writes; with
// it on, the previous version could not, which is why it waits.

// Mid-rollout: the contract steps have not run (they wait until no process of the previous version runs).
const database = historyDatabase({ contract: false });

const waiting = async (ids: string[]) =>
  (await database().db.sql.query<{ id: string }>('SELECT id FROM waiting_deliveries WHERE id = ANY($1::text[]) ORDER BY id', [ids])).map((r) => r.id);


const payload = (extractionId: string) => ({
  extraction_id: extractionId, document_id: 'doc_1', status: 'completed', file_name: 'a.pdf',
  result: { fields: Array.from({ length: 60 }, (_, i) => ({ name: `field_${i % 20}`, value: `v${i * 7919}`, confidence: (i % 100) / 100 })) },
});

type Loaded = { id: string; account_id: string | null; event: string | null; event_id: string; webhook_id: string; data: unknown; status: string; attempt_count: number };

/** The previous version's record of one succeeded first attempt (its 12 parameters). */
const previousRecord = (deliveryId: string) =>
  database().db.sql.query<{ delivery_id: string }>(PREVIOUS_RECORD_SQL, [
    [deliveryId], ['succeeded'], [new Date()], [null], [0], [newId('attempt')], ['succeeded'], [200], ['{}'], [null], [7], [null],
  ]);

describe('the previous version and this one, on the migrated schema', () => {
  it('COMPACT_HISTORY off: the previous version loads, records and checks what this version wrote', async () => {
    database().db.compact = false;
    const { accountId, webhookIds } = await accountWithWebhooks(database(), 2);
    const data = payload('ext_roll_1');
    const [written] = await writeEventBatch(database().db.sql, [{ accountId, event: DOC, parserId: null, data }], database().db);
    const loaded = await database().db.sql.query<Loaded>(PREVIOUS_LOAD_SQL, [written!.deliveryIds]);
    expect(loaded).toHaveLength(2);
    for (const row of loaded) {
      expect(row).toMatchObject({ account_id: accountId, event: DOC, event_id: written!.eventId, status: 'pending', attempt_count: 0 });
      expect(webhookIds).toContain(row.webhook_id);
      expect(row.data).toEqual(data);
    }
    const [deliveryId, other] = written!.deliveryIds;
    expect(await previousRecord(deliveryId)).toEqual([{ delivery_id: deliveryId, wake: null }]);
    // The previous version's record takes its delivery out of the waiting set (the trigger, not this version's code).
    expect(await waiting(written!.deliveryIds)).toEqual([other]);
    const [attempt] = await database().db.sql.query<{ id: string; event_id: string; event: string }>('SELECT id, event_id, event FROM attempts WHERE delivery_id = $1', [deliveryId]);
    expect(attempt).toMatchObject({ event_id: written!.eventId, event: DOC });
    expect(await database().db.sql.query(PREVIOUS_CURRENT_SQL, [deliveryId, attempt.id])).toEqual([{ status: 'succeeded', attempt_count: 1, mine: 1 }]);
  });

  it('this version loads and records what the previous version wrote', async () => {
    const { accountId, webhookIds } = await accountWithWebhooks(database(), 2);
    const data = payload('ext_roll_2');
    const at = new Date().toISOString();
    const eventId = `evt_${randomBytes(12).toString('hex').slice(0, 24)}`;
    const deliveryIds = webhookIds.map(() => `dlv_${randomBytes(12).toString('hex').slice(0, 24)}`);
    const rows = await database().db.sql.query<{ id: string }>(PREVIOUS_INSERT_SQL, [
      JSON.stringify([{ id: eventId, account_id: accountId, event: DOC, parser_id: null, data, test: false, created_at: at, key_scope: null }]),
      JSON.stringify(deliveryIds.map((id, i) => ({ id, account_id: accountId, webhook_id: webhookIds[i], event_id: eventId, event: DOC, created_at: at }))),
      JSON.stringify([]),
    ]);
    expect(rows).toEqual([{ id: eventId }]);
    // Its deliveries are in the waiting set this version's relay scans.
    expect(await waiting(deliveryIds)).toEqual([...deliveryIds].sort());
    for (const compact of [false, true]) {
      database().db.compact = compact;
      const store = createDeliveryStore(database().db);
      const deliveryId = deliveryIds[compact ? 1 : 0];
      expect(await store.load(deliveryId)).toMatchObject({ account_id: accountId, event: DOC, event_id: eventId, data });
      const attemptId = newId('attempt');
      expect(await store.record({
        deliveryId, status: 'succeeded', at: new Date(), nextAttemptAt: null, expectedCount: 0, attemptId, attemptStatus: 'succeeded',
        responseStatus: 200, responseBody: '{}', error: null, durationMs: 5, wakeExtraction: null,
      })).toEqual({ wake: [] });
      expect(await store.current(deliveryId, attemptId)).toEqual({ status: 'succeeded', attempt_count: 1, mine: 1 });
    }
    expect(await waiting(deliveryIds)).toEqual([]);
  });

  it('COMPACT_HISTORY on: the previous version would read a compact row without its copies and with only extraction_id as payload (why the switch waits)', async () => {
    database().db.compact = true;
    const { accountId } = await accountWithWebhooks(database(), 2);
    const [written] = await writeEventBatch(database().db.sql, [{ accountId, event: DOC, parserId: null, data: payload('ext_roll_3') }], database().db);
    const [row] = await database().db.sql.query<Loaded>(PREVIOUS_LOAD_SQL, [[written!.deliveryIds[0]]]);
    expect(row).toMatchObject({ account_id: null, event: null, data: { extraction_id: 'ext_roll_3' } });
  });
});
