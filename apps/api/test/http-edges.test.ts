import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';

// Odd requests a reviewer threw at the HTTP surface: each must get the
// contract's envelope with a message that says what to do, never a 500.

let h: ApiHarness;
let acme: Awaited<ReturnType<ApiHarness['integrator']>>;
let platform: { Authorization: string };
beforeAll(async () => {
  h = await startApiHarness();
  acme = await h.integrator();
  platform = { Authorization: `Bearer ${h.platformToken}` };
});
afterAll(() => h.close());

function expectInvalid(res: request.Response, message: RegExp): void {
  expect(res.status).toBe(400);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.body.error.code).toBe('INVALID_PAYLOAD');
  expect(res.body.error.message).toMatch(message);
  // zod's own wording ("Invalid input: expected …") names no remedy
  expect(JSON.stringify(res.body)).not.toMatch(/Invalid input/);
}

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('deeply nested JSON', () => {
  it('is refused with 400 on the platform API instead of overflowing the stack (500)', async () => {
    const created = await request(h.app).post('/internal/v1/extractions').set(platform).send({ account_id: acme.accountId, document_count: 2 });
    const extractionId = created.body.extraction.extraction_id;
    const report = await request(h.app)
      .post(`/internal/v1/extractions/${extractionId}/documents/d1`)
      .set(platform)
      .set('Content-Type', 'application/json')
      .send(`{"status":"completed","result":{"a":${nested(5_000)}}}`);
    expectInvalid(report, /nested/);

    const event = await request(h.app)
      .post('/internal/v1/events')
      .set(platform)
      .set('Content-Type', 'application/json')
      .send(`{"account_id":"${acme.accountId}","event":"quota.warning","data":{"a":${nested(50_000)}}}`);
    expectInvalid(event, /nested/);
  });

  it('still accepts ordinary nesting', async () => {
    const created = await request(h.app).post('/internal/v1/extractions').set(platform).send({ account_id: acme.accountId, document_count: 2 });
    const res = await request(h.app)
      .post(`/internal/v1/extractions/${created.body.extraction.extraction_id}/documents/d1`)
      .set(platform)
      .set('Content-Type', 'application/json')
      .send(`{"status":"completed","result":{"a":${nested(120)}}}`);
    expect(res.status).toBe(202);
  });
});

describe('messages that say what to do', () => {
  it('a query parameter given twice', async () => {
    expectInvalid(await request(h.app).get('/v1/webhooks?limit=1&limit=2').set(acme.auth), /^limit: .*once/);
    expectInvalid(await request(h.app).get('/v1/webhooks?cursor=a&cursor=b').set(acme.auth), /^cursor: .*once/);
  });

  it('a missing or non-object body on the platform API', async () => {
    expectInvalid(await request(h.app).post('/internal/v1/accounts').set(platform), /must be a JSON object/);
    expectInvalid(await request(h.app).post(`/internal/v1/accounts/${acme.accountId}/api-keys`).set(platform).send([]), /must be a JSON object/);
    expectInvalid(await request(h.app).post('/internal/v1/events').set(platform).set('Content-Type', 'application/json').send('"x"'), /must be a JSON object/);
  });

  it('a path that is not valid percent-encoding', async () => {
    expectInvalid(await request(h.app).get('/v1/webhooks/%E0%A4%A').set(acme.auth), /percent-encod/);
  });
});

describe('webhook URLs with credentials', () => {
  it('are refused on create and on patch, pointing to the static secret', async () => {
    const created = await request(h.app).post('/v1/webhooks').set(acme.auth).send({ url: 'https://user:pa55@example.com/hooks', events: ['quota.warning'] });
    expect(created.status).toBe(400);
    expect(created.body.error.details).toEqual([{ path: 'url', message: expect.stringMatching(/username or password.*secret/) }]);
    expect(JSON.stringify(created.body)).not.toContain('pa55');
    const ok = await request(h.app).post('/v1/webhooks').set(acme.auth).send({ url: 'https://example.com/creds-free', events: ['quota.warning'] });
    expect(ok.status).toBe(201);
    const patched = await request(h.app).patch(`/v1/webhooks/${ok.body.webhook.id}`).set(acme.auth).send({ url: 'https://user@example.com/hooks' });
    expect(patched.status).toBe(400);
    expect(patched.body.error.code).toBe('INVALID_PAYLOAD');
  });
});
