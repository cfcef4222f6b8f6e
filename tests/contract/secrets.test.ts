import { Writable } from 'node:stream';
import request from 'supertest';
import { createLogger } from '@hookline/config';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { startReceiver, type Receiver } from '../support/receiver';
import { verifyCallback } from '../support/verifier';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { eventually } from '../delivery/stack';

// Secrets (docs/api.md: configuration, authentication, webhooks): signing secrets, static secrets,
// API keys, the platform token and ENCRYPTION_KEY never appear in a log line
// (API at debug level, worker), an error message or a read/list answer, and
// are stored only encrypted or hashed: a full scenario runs, then every log
// line, every error body, every database row and every Redis value under the
// deployment's prefix is searched for each secret.

type Secret = { name: string; value: string };

const apiLines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) apiLines.push(line);
    done();
  },
});

let h: ApiHarness;
let worker: WorkerHarness;
let receiver: Receiver;
const secrets: Secret[] = [];
const readAnswers: Array<{ label: string; text: string }> = [];
const errorAnswers: Array<{ label: string; text: string }> = [];

function remember(name: string, value: string): string {
  secrets.push({ name, value });
  // A signing secret's base64 part is the HMAC key of Standard Webhooks: it is a secret on its own.
  if (value.startsWith('whsec_')) secrets.push({ name: `${name} (base64 part)`, value: value.slice(6) });
  return value;
}

function leaks(text: string): string[] {
  return secrets.filter((s) => text.includes(s.value)).map((s) => s.name);
}

beforeAll(async () => {
  h = await startApiHarness({ logger: createLogger({ level: 'debug', service: 'api-secrets', stream: sink }) });
  worker = await startWorkerHarness({ databaseUrl: h.database.url, prefix: h.prefix, encryptionKey: h.encryptionKey, config: { RETRY_SCHEDULE: [200] } });
  receiver = await startReceiver((_req, i) => (i === 1 ? { status: 500, body: 'try again' } : { status: 200, body: 'ok' }));
  remember('platform token', h.platformToken);
  remember('ENCRYPTION_KEY (base64)', h.encryptionKey.toString('base64'));
  remember('ENCRYPTION_KEY (hex)', h.encryptionKey.toString('hex'));

  // ---- the scenario: platform set-up, integrator calls, deliveries, rotation, failures ----
  const account = await h.platform.post('/internal/v1/accounts', { name: 'Secretive', plan: 'pro' }).set('Idempotency-Key', 'acct-1').expect(201);
  const accountId: string = account.body.account.id;
  const testKey = await h.platform.post(`/internal/v1/accounts/${accountId}/api-keys`, { mode: 'test' }).set('Idempotency-Key', 'key-1').expect(201);
  const replayed = await h.platform.post(`/internal/v1/accounts/${accountId}/api-keys`, { mode: 'test' }).set('Idempotency-Key', 'key-1').expect(201);
  expect(replayed.body.api_key.key).toBe(testKey.body.api_key.key);
  const key = remember('test API key', testKey.body.api_key.key);
  const liveKey = remember('live API key', (await h.platform.post(`/internal/v1/accounts/${accountId}/api-keys`, { mode: 'live' }).expect(201)).body.api_key.key);
  const doomed = (await h.platform.post(`/internal/v1/accounts/${accountId}/api-keys`, { mode: 'test' }).expect(201)).body.api_key;
  remember('revoked API key', doomed.key);
  await h.platform.delete(`/internal/v1/api-keys/${doomed.id}`).expect(204);

  const auth = { Authorization: `Bearer ${key}` };
  const staticSecret = remember('static secret', 'static-secret-7f3a9c1e5b');
  const created = await request(h.app).post('/v1/webhooks').set(auth).set('Idempotency-Key', 'wh-1')
    .send({ url: receiver.url, events: ['quota.warning', 'extraction.document_completed', 'extraction.job_completed'], secret: staticSecret }).expect(201);
  const webhookId: string = created.body.webhook.id;
  remember('signing secret', created.body.webhook.signing_secret);
  await request(h.app).post('/v1/webhooks').set('X-API-Key', key).set('Idempotency-Key', 'wh-1')
    .send({ url: receiver.url, events: ['quota.warning', 'extraction.document_completed', 'extraction.job_completed'], secret: staticSecret }).expect(201);

  const read = async (label: string, test: request.Test, status = 200) => {
    const res = await test;
    expect([label, res.status]).toEqual([label, status]);
    readAnswers.push({ label, text: res.text });
    return res;
  };
  const fail = async (label: string, test: request.Test, status: number) => {
    const res = await test;
    expect([label, res.status]).toEqual([label, status]);
    errorAnswers.push({ label, text: res.text });
    return res;
  };

  // Test send (synchronous attempt), an event that fails once then succeeds, an extraction.
  await read('test send', request(h.app).post(`/v1/webhooks/${webhookId}/test`).set(auth));
  const published = await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.warning', data: { usage: 80, limit: 100 } }).expect(202);
  const delivery = await h.deps.db.prisma.delivery.findFirstOrThrow({ where: { eventId: published.body.event.id } });
  const ext = await h.platform.post('/internal/v1/extractions', { account_id: accountId, parser_id: 'invoices', document_count: 1 }).expect(201);
  await h.platform.post(`/internal/v1/extractions/${ext.body.extraction.extraction_id}/documents/doc-1`, { status: 'completed', result: { total: 1 } }).expect(202);
  await eventually(async () => (await h.deps.db.prisma.delivery.findUniqueOrThrow({ where: { id: delivery.id } })).status === 'succeeded', 15_000, 'event delivered');
  await receiver.waitFor(5);

  // Rotation, and a callback signed by both secrets; then a new static secret.
  const rotated = await request(h.app).post(`/v1/webhooks/${webhookId}/rotate-secret`).set(auth).expect(200);
  remember('rotated signing secret', rotated.body.webhook.signing_secret);
  const newStatic = remember('replaced static secret', 'static-secret-second-44d1e0');
  await read('patch answer', request(h.app).patch(`/v1/webhooks/${webhookId}`).set(auth).send({ secret: newStatic, description: 'rotated' }));
  await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.warning', data: { usage: 90, limit: 100 } }).expect(202);
  const [last] = (await receiver.waitFor(6)).slice(-1);
  expect(verifyCallback(rotated.body.webhook.signing_secret, last.body, last.headers)).toEqual({ standard: true, brand: true });
  expect(verifyCallback(created.body.webhook.signing_secret, last.body, last.headers)).toEqual({ standard: true, brand: true });
  expect(last.headers['x-webhook-secret']).toBe(newStatic);
  const lastDelivery = String(last.headers['x-perfectparser-delivery']);
  await eventually(async () => (await h.deps.db.prisma.delivery.findUniqueOrThrow({ where: { id: lastDelivery } })).status === 'succeeded', 10_000, 'last delivered');

  // Reads an integrator makes.
  await read('list webhooks', request(h.app).get('/v1/webhooks').set(auth));
  await read('get webhook', request(h.app).get(`/v1/webhooks/${webhookId}`).set(auth));
  await read('list deliveries', request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`).set(auth));
  await read('get delivery', request(h.app).get(`/v1/deliveries/${delivery.id}`).set(auth));
  await read('retry', request(h.app).post(`/v1/deliveries/${delivery.id}/retry`).set(auth).set('Idempotency-Key', 'retry-1'), 202);
  await read('recover', request(h.app).post(`/v1/webhooks/${webhookId}/recover`).set(auth).send({ since: '2020-01-01T00:00:00Z' }), 202);
  await read('event types', request(h.app).get('/v1/event-types').set(auth));
  await read('document result', request(h.app).get(`/v1/extractions/${ext.body.extraction.extraction_id}/documents/doc-1`).set(auth));
  // The manual retry's attempt, so the worker's logs include it.
  await eventually(async () => (await h.deps.db.prisma.attempt.count({ where: { deliveryId: delivery.id } })) >= 2, 10_000, 'manual retry sent');

  // Failures that carry a secret in what was sent: none may echo it back.
  await fail('revoked key', request(h.app).get('/v1/webhooks').set('X-API-Key', doomed.key), 401);
  await fail('unknown key', request(h.app).get('/v1/webhooks').set('Authorization', `Bearer ${key}x`), 401);
  await fail('api key as platform token', h.platform.post('/internal/v1/accounts', { name: 'x' }).set('Authorization', `Bearer ${key}`), 401);
  await fail('platform token as api key', request(h.app).get('/v1/webhooks').set('Authorization', `Bearer ${h.platformToken}`), 401);
  await fail('secret too long', request(h.app).post('/v1/webhooks').set(auth).send({ url: 'https://a.example/x', events: ['quota.warning'], secret: `${staticSecret}${'z'.repeat(300)}` }), 400);
  await fail('secret wrong type', request(h.app).patch(`/v1/webhooks/${webhookId}`).set(auth).send({ secret: [newStatic] }), 400);
  await fail('secret as an unknown field', request(h.app).post('/v1/webhooks').set(auth).send({ url: 'https://a.example/y', events: ['quota.warning'], signing_secret: created.body.webhook.signing_secret }), 400);
  await fail('http with a live key', request(h.app).post('/v1/webhooks').set('X-API-Key', liveKey).send({ url: `http://a.example/${staticSecret}`, events: ['quota.warning'], secret: staticSecret }), 400);
  await fail('duplicate', request(h.app).post('/v1/webhooks').set(auth).send({ url: receiver.url, events: ['quota.warning'], secret: staticSecret }), 409);
  await fail('idempotency conflict', request(h.app).post('/v1/webhooks').set(auth).set('Idempotency-Key', 'wh-1').send({ url: 'https://a.example/z', events: ['quota.warning'], secret: staticSecret }), 409);
  await fail('bad JSON with a secret', request(h.app).post('/v1/webhooks').set(auth).set('Content-Type', 'application/json').send(`{"secret":"${staticSecret}",`), 400);
  await fail('unknown route with a key', request(h.app).get('/v1/nowhere').set('X-API-Key', key), 404);
});

afterAll(async () => {
  await receiver?.close();
  await worker?.close();
  await h?.close();
});

describe('secrets', () => {
  it('the scenario produced log lines, error bodies and reads to search', () => {
    expect(apiLines.filter((line) => line.includes('"message":"request"')).length).toBeGreaterThan(20);
    expect(worker.logs.filter((line) => line.message === 'delivery attempt').length).toBeGreaterThanOrEqual(6);
    expect(errorAnswers).toHaveLength(12);
    expect(secrets.length).toBeGreaterThanOrEqual(12);
    // The search itself finds a secret where one legitimately is: the callback's X-Webhook-Secret.
    expect(leaks(JSON.stringify(receiver.received.map((cb) => cb.headers)))).toEqual(expect.arrayContaining(['static secret', 'replaced static secret']));
  });

  it('no secret appears in any API log line (debug level) or worker log line', () => {
    const found = [...apiLines, ...worker.logs.map((line) => JSON.stringify(line))].flatMap((line) => leaks(line).map((name) => `${name} in ${line.slice(0, 200)}`));
    expect(found).toEqual([]);
  });

  it('no secret appears in an error message, and every error is the envelope', () => {
    for (const { label, text } of errorAnswers) {
      expect([label, leaks(text)]).toEqual([label, []]);
      expect([label, Object.keys(JSON.parse(text))]).toEqual([label, ['error']]);
    }
  });

  it('no read or list answer carries a signing secret, a static secret or a key', () => {
    for (const { label, text } of readAnswers) {
      expect([label, leaks(text)]).toEqual([label, []]);
      expect([label, text.includes('signing_secret')]).toEqual([label, false]);
    }
  });

  it('at rest, every secret is encrypted or hashed: no database row holds one in clear', async () => {
    const tables = await h.database.db.sql.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
    expect(tables.map((t) => t.tablename)).toEqual(expect.arrayContaining(['webhooks', 'api_keys', 'idempotency_records', 'attempts', 'events']));
    const found: string[] = [];
    for (const { tablename } of tables) {
      const rows = await h.database.db.sql.query<{ row: string }>(`SELECT t::text AS row FROM "${tablename}" t`);
      for (const { row } of rows) found.push(...leaks(row).map((name) => `${name} in ${tablename}`));
    }
    expect(found).toEqual([]);
    // The stored answers that held a key or a signing secret are there, sealed.
    const idem = await h.database.db.sql.query<{ body: string }>('SELECT response_body::text AS body FROM idempotency_records');
    expect(idem.length).toBeGreaterThanOrEqual(3);
  });

  it('no Redis value under the deployment’s prefix holds a secret (jobs carry ids only)', async () => {
    const found: string[] = [];
    let cursor = '0';
    let keys = 0;
    do {
      const [next, batch] = await h.redis.scan(cursor, 'MATCH', `${h.prefix}*`, 'COUNT', 500);
      cursor = next;
      for (const name of batch) {
        keys += 1;
        const type = await h.redis.type(name);
        const value =
          type === 'string' ? await h.redis.get(name)
          : type === 'hash' ? JSON.stringify(await h.redis.hgetall(name))
          : type === 'list' ? JSON.stringify(await h.redis.lrange(name, 0, -1))
          : type === 'zset' ? JSON.stringify(await h.redis.zrange(name, 0, -1))
          : type === 'set' ? JSON.stringify(await h.redis.smembers(name))
          : type === 'stream' ? JSON.stringify(await h.redis.xrange(name, '-', '+'))
          : '';
        found.push(...leaks(`${name} ${value ?? ''}`).map((secret) => `${secret} in ${name}`));
      }
    } while (cursor !== '0');
    expect(keys).toBeGreaterThan(0);
    expect(found).toEqual([]);
  });
});
