import { eventually, startStack, type Stack } from '../../../tests/delivery/stack';
import { verifyCallback } from '../../../tests/support/verifier';

// A failed document's error, end to end: the platform reports an object, the
// worker delivers it, and the receiver's signed callback carries it unchanged
// in data.error; the fallback GET answers the same object.

describe('a failed document’s object error, delivered', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack?.close());

  it('reaches a real receiver in the callback’s data.error, as reported', async () => {
    const receiver = await stack.receiver();
    const webhook = await stack.createWebhook({ url: receiver.url, events: ['extraction.document_completed'] });
    const ext = await stack.api.platform.post('/internal/v1/extractions', { account_id: stack.account.accountId, parser_id: 'invoices', document_count: 2 });
    expect(ext.status).toBe(201);
    const extractionId = ext.body.extraction.extraction_id;
    const error = { code: 'password_protected', message: 'The PDF is encrypted; send it without a password.', hint: { field: 'file', retry: false }, pages: [] };

    const failed = await stack.api.platform.post(`/internal/v1/extractions/${extractionId}/documents/doc-1`, { status: 'failed', file_name: 'locked.pdf', error });
    expect(failed.status).toBe(202);
    const asText = await stack.api.platform.post(`/internal/v1/extractions/${extractionId}/documents/doc-2`, { status: 'failed', file_name: 'b.pdf', error: 'timeout after 30s' });
    expect(asText.status).toBe(202);

    const callbacks = await receiver.waitFor(2, 30_000);
    const bodies = callbacks.map((cb) => {
      expect(verifyCallback(webhook.signing_secret, cb.body, cb.headers)).toEqual({ standard: true, brand: true });
      return JSON.parse(cb.body) as { event: string; data: Record<string, unknown> };
    });
    const byDoc = Object.fromEntries(bodies.map((b) => [b.data.document_id, b]));
    expect(byDoc['doc-1']).toMatchObject({ event: 'extraction.document_completed' });
    expect(byDoc['doc-1'].data).toEqual({
      extraction_id: extractionId, document_id: 'doc-1', parser_id: 'invoices', status: 'failed', file_name: 'locked.pdf', error,
    });
    expect(byDoc['doc-2'].data.error).toBe('timeout after 30s');

    const stored = await eventually(async () => {
      const res = await stack.v1.get(`/v1/extractions/${extractionId}/documents/doc-1`);
      return res.status === 200 ? res.body : undefined;
    });
    expect(stored.error).toEqual(error);
  });
});
