import { randomBytes } from 'node:crypto';
import { createSecretBox, generateSigningSecret, newId } from '@hookline/domain';
import { createTestDatabase, type TestDatabase } from '../../../../tests/support/test-database';

// A fresh database for a history test file, and an account with webhooks
// subscribed to document callbacks (delivery-store-history and rolling-upgrade).

export const DOC = 'extraction.document_completed';
const secretBox = createSecretBox(randomBytes(32));

/** A fresh database before the file's tests, dropped after them (and its compact mode reset). */
export function historyDatabase(opts: { contract?: boolean } = {}): () => TestDatabase {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(opts);
  });
  afterAll(async () => {
    if (!database) return;
    database.db.compact = false;
    await database.drop();
  });
  return () => database;
}

/** A new account with `count` webhooks on DOC. */
export async function accountWithWebhooks(database: TestDatabase, count: number): Promise<{ accountId: string; webhookIds: string[] }> {
  const prisma = database.db.prisma;
  const account = await prisma.account.create({ data: { id: newId('account'), name: 'Acme', plan: 'pro' } });
  const webhookIds: string[] = [];
  for (let i = 0; i < count; i++) {
    const webhook = await prisma.webhook.create({
      data: { id: newId('webhook'), accountId: account.id, url: `https://example.com/${randomBytes(4).toString('hex')}`, events: [DOC], signingSecretEnc: secretBox.encrypt(generateSigningSecret()) },
    });
    webhookIds.push(webhook.id);
  }
  return { accountId: account.id, webhookIds };
}
