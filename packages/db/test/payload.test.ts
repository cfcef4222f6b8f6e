import { newId } from '@hookline/domain';
import { COMPRESS_FROM_BYTES, createDb, packPayload, runMigrations, unpackPayload, writeEventBatch, type Prisma } from '../src';
import { createTestDatabase, type TestDatabase } from '../../../tests/support/test-database';

// An event's payload is stored once, on its event row, however many webhooks it
// goes to; with the compact history a large one is stored compressed and reads
// back equal, and events.data keeps the keys SQL reads from it (extraction_id).

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});

afterAll(async () => {
  t.db.compact = false;
  await t?.drop();
});

const DOC = 'extraction.document_completed';

/** Extraction-like data of about `bytes` of JSON: field names repeat, values vary. */
function bigData(bytes: number, extractionId: string): Prisma.InputJsonObject {
  const fields: { name: string; value: string; confidence: number }[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const row = { name: `field_${i % 40}`, value: `${(i * 2_654_435_761) % 1_000_003}-${i.toString(36)}`, confidence: (i % 1000) / 1000 };
    size += JSON.stringify(row).length + 1;
    fields.push(row);
  }
  return { extraction_id: extractionId, document_id: 'doc_1', status: 'completed', file_name: 'invoice.pdf', result: { fields, note: 'naïve ✓ "quoted"' } };
}

async function fourWebhooks(): Promise<string> {
  const accountId = newId('account');
  await t.db.prisma.account.create({ data: { id: accountId, name: 'Payloads', plan: 'pro' } });
  for (let i = 0; i < 4; i++) {
    const id = newId('webhook');
    await t.db.prisma.webhook.create({ data: { id, accountId, url: `https://hooks.example.com/${id}`, events: [DOC, 'quota.warning'], signingSecretEnc: 'v1:not-used-here' } });
  }
  return accountId;
}

type EventRow = { data: unknown; data_z: Uint8Array | null; raw: number };
const eventRow = async (id: string) =>
  (await t.db.sql.query<EventRow>('SELECT data, data_z, octet_length(data_z) AS raw FROM events WHERE id = $1', [id]))[0];

describe('packPayload / unpackPayload', () => {
  it('leave small payloads, and every payload when not compact, whole', () => {
    const small = { extraction_id: 'ext_1', n: 1 };
    expect(packPayload(small, true)).toEqual({ data: small, dataZ: null });
    const big = bigData(4096, 'ext_2');
    expect(packPayload(big, false)).toEqual({ data: big, dataZ: null });
    expect(unpackPayload(small, null)).toEqual(small);
  });

  it('compress a large payload, keep only extraction_id beside it, and give it back equal', () => {
    const big = bigData(4096, 'ext_3');
    const packed = packPayload(big, true);
    expect(packed.data).toEqual({ extraction_id: 'ext_3' });
    expect(packed.dataZ!.length).toBeLessThan(Buffer.byteLength(JSON.stringify(big)) / 2);
    expect(unpackPayload(packed.data, packed.dataZ)).toEqual(big);
    // No extraction_id: nothing for SQL to read, data is NULL.
    const { extraction_id: _ignored, ...noExtraction } = big;
    expect(packPayload(noExtraction, true).data).toBeNull();
  });

  it('leave whole a large payload with \\u0000, which JSONB refuses (as it always did)', () => {
    const nul = { text: `a\u0000b${'x'.repeat(COMPRESS_FROM_BYTES)}` };
    expect(packPayload(nul, true)).toEqual({ data: nul, dataZ: null });
  });
});

describe('the outbox stores a payload once per event', () => {
  it('compact: one event row holds the large payload compressed; its four deliveries hold no copy, nor its name or account', async () => {
    t.db.compact = true;
    const accountId = await fourWebhooks();
    const data = bigData(4096, 'ext_once');
    const [written] = await writeEventBatch(t.db.sql, [{ accountId, event: DOC, parserId: null, data }], t.db);
    expect(written!.deliveryIds).toHaveLength(4);

    const row = await eventRow(written!.eventId);
    expect(row.data).toEqual({ extraction_id: 'ext_once' });
    expect(row.raw).toBeLessThan(Buffer.byteLength(JSON.stringify(data)) / 2);
    expect(unpackPayload(row.data, row.data_z)).toEqual(data);

    // No table but events has a column a payload could be copied into.
    const payloadColumns = await t.db.sql.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type IN ('jsonb', 'json', 'bytea') AND table_name IN ('deliveries', 'attempts')`,
    );
    expect(payloadColumns).toEqual([]);
    const deliveries = await t.db.sql.query<{ account_id: string | null; event: string | null; updated_at: Date | null }>(
      'SELECT account_id, event, updated_at FROM deliveries WHERE event_id = $1', [written!.eventId],
    );
    expect(deliveries).toEqual(Array.from({ length: 4 }, () => ({ account_id: null, event: null, updated_at: null })));
  });

  it('compact: a small payload stays whole in data', async () => {
    t.db.compact = true;
    const accountId = await fourWebhooks();
    const data = { usage: 8_000, limit: 10_000 };
    const [written] = await writeEventBatch(t.db.sql, [{ accountId, event: 'quota.warning', parserId: null, data }], t.db);
    const row = await eventRow(written!.eventId);
    expect(row).toEqual({ data, data_z: null, raw: null });
  });

  it('not compact (the default): rows as the previous version writes them', async () => {
    t.db.compact = false;
    const accountId = await fourWebhooks();
    const data = bigData(4096, 'ext_legacy');
    const [written] = await writeEventBatch(t.db.sql, [{ accountId, event: DOC, parserId: null, data }]);
    const row = await eventRow(written!.eventId);
    expect(row).toEqual({ data, data_z: null, raw: null });
    const deliveries = await t.db.sql.query<{ account_id: string; event: string }>('SELECT account_id, event FROM deliveries WHERE event_id = $1', [written!.eventId]);
    expect(deliveries).toEqual(Array.from({ length: 4 }, () => ({ account_id: accountId, event: DOC })));
  });
});

describe('on PGlite (npm start, which always writes the compact history)', () => {
  it('a large payload is stored compressed and reads back equal', async () => {
    const db = await createDb({ pgliteDir: 'memory://' });
    try {
      await runMigrations(db.sql);
      db.compact = true;
      const accountId = newId('account');
      await db.prisma.account.create({ data: { id: accountId, name: 'Local', plan: 'pro' } });
      const webhookId = newId('webhook');
      await db.prisma.webhook.create({ data: { id: webhookId, accountId, url: 'https://hooks.example.com/local', events: [DOC], signingSecretEnc: 'v1:not-used-here' } });
      const data = bigData(4096, 'ext_pglite');
      const [written] = await writeEventBatch(db.sql, [{ accountId, event: DOC, parserId: null, data }], db);
      const [row] = await db.sql.query<EventRow>('SELECT data, data_z, octet_length(data_z) AS raw FROM events WHERE id = $1', [written!.eventId]);
      expect(row.data).toEqual({ extraction_id: 'ext_pglite' });
      expect(row.raw).toBeLessThan(Buffer.byteLength(JSON.stringify(data)) / 2);
      expect(unpackPayload(row.data, row.data_z)).toEqual(data);
      const [delivery] = await db.sql.query('SELECT account_id, event, webhook_id FROM deliveries WHERE event_id = $1', [written!.eventId]);
      expect(delivery).toEqual({ account_id: null, event: null, webhook_id: webhookId });
    } finally {
      await db.close();
    }
  }, 60_000);
});
