import { Writable } from 'node:stream';
import express from 'express';
import request from 'supertest';
import { ZodError, z } from 'zod';
import { createLogger } from '@hookline/config';
import { createDb, type Db } from '@hookline/db';
import { AppError, ERROR_STATUS } from '@hookline/domain';
import { createApp } from '@hookline/api';
import { errorHandler, toAppError } from '../src/middleware/errors';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';

// The error table (docs/api.md#errors) as the webhook and platform APIs meet it:
// one envelope for everything, never HTML, never a stack trace.

let h: ApiHarness;
let acme: Awaited<ReturnType<ApiHarness['integrator']>>;
beforeAll(async () => {
  h = await startApiHarness();
  acme = await h.integrator();
});
afterAll(() => h.close());

function expectEnvelope(res: request.Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.body).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
  expect(Object.keys(res.body.error).every((k) => ['code', 'message', 'details'].includes(k))).toBe(true);
  expect(res.body.error.message.length).toBeGreaterThan(0);
  expect(ERROR_STATUS[code as keyof typeof ERROR_STATUS]).toBe(status);
}

describe('400 INVALID_PAYLOAD', () => {
  it('bad JSON', async () => {
    const res = await request(h.app).post('/v1/webhooks').set(acme.auth).set('Content-Type', 'application/json').send('{"url": "https://x.example",');
    expectEnvelope(res, 400, 'INVALID_PAYLOAD');
    expect(res.body.error.message).toMatch(/not valid JSON/);
  });

  it('bad JSON on the platform API', async () => {
    const res = await request(h.app).post('/internal/v1/accounts').set('Authorization', `Bearer ${h.platformToken}`).set('Content-Type', 'application/json').send('{name:');
    expectEnvelope(res, 400, 'INVALID_PAYLOAD');
  });

  it('a body that is not application/json', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await request(h.app).post('/v1/webhooks').set(acme.auth).set('Content-Type', type).send('url=https://x.example');
      expectEnvelope(res, 400, 'INVALID_PAYLOAD');
      expect(res.body.error.message).toMatch(/Content-Type must be application\/json/);
    }
  });

  it('an unsupported charset or encoding', async () => {
    const charset = await request(h.app).post('/v1/webhooks').set(acme.auth).set('Content-Type', 'application/json; charset=latin9').send('{}');
    expectEnvelope(charset, 400, 'INVALID_PAYLOAD');
    const encoding = await request(h.app).post('/v1/webhooks').set(acme.auth).set('Content-Type', 'application/json').set('Content-Encoding', 'br2').send('{}');
    expectEnvelope(encoding, 400, 'INVALID_PAYLOAD');
  });

  it('unknown field, unknown event, http URL with a live key: details name the field', async () => {
    const live = await h.integrator({ mode: 'live' });
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'https://a.example/1', events: ['quota.warning'], surprise: 1 }, 'surprise'],
      [{ url: 'https://a.example/2', events: ['quota.nope'] }, 'events.0'],
      [{ url: 'http://a.example/3', events: ['quota.warning'] }, 'url'],
    ];
    for (const [body, path] of cases) {
      const res = await request(h.app).post('/v1/webhooks').set(live.auth).send(body);
      expectEnvelope(res, 400, 'INVALID_PAYLOAD');
      expect(res.body.error.details[0].path).toBe(path);
      expect(res.body.error.message).toContain(path);
    }
  });

  it('limit > 100, 0, abc and a bad cursor', async () => {
    for (const query of ['limit=101', 'limit=0', 'limit=abc', 'cursor=bad']) {
      expectEnvelope(await request(h.app).get(`/v1/webhooks?${query}`).set(acme.auth), 400, 'INVALID_PAYLOAD');
    }
  });

  it('a malformed percent-encoding in the path', async () => {
    const res = await request(h.app).get('/v1/webhooks/%E0%A4%A').set(acme.auth);
    expect(res.status).toBeLessThan(500);
    expect(res.body.error.code).toBe(res.status === 404 ? 'RESOURCE_NOT_FOUND' : 'INVALID_PAYLOAD');
  });

  it('a bad Idempotency-Key', async () => {
    const res = await request(h.app).post('/v1/webhooks').set(acme.auth).set('Idempotency-Key', 'x'.repeat(300)).send({ url: 'https://a.example/ik', events: ['quota.warning'] });
    expectEnvelope(res, 400, 'INVALID_PAYLOAD');
  });
});

describe('401 UNAUTHORIZED', () => {
  it('missing, unknown and revoked keys; wrong platform token', async () => {
    const revoked = await h.integrator();
    await h.platform.delete(`/internal/v1/api-keys/${revoked.keyId}`);
    const calls = [
      request(h.app).get('/v1/webhooks'),
      request(h.app).get('/v1/webhooks').set('Authorization', 'Bearer hk_live_00000000000000000000000000000000'),
      request(h.app).get('/v1/webhooks').set('X-API-Key', 'x'.repeat(5000)),
      request(h.app).get('/v1/webhooks').set(revoked.auth),
      request(h.app).post('/internal/v1/accounts').set('Authorization', 'Bearer wrong-platform-token').send({ name: 'x' }),
      request(h.app).post('/internal/v1/accounts').send({ name: 'x' }),
    ];
    for (const res of await Promise.all(calls)) expectEnvelope(res, 401, 'UNAUTHORIZED');
  });

  it('an unauthenticated request is refused before its body is validated', async () => {
    const res = await request(h.app).post('/v1/webhooks').send({ nonsense: true });
    expectEnvelope(res, 401, 'UNAUTHORIZED');
  });

  it('credentials are checked before the body is read: bad JSON, a wrong Content-Type or an oversized body without a key is 401', async () => {
    const badJson = '{"url": "https://x.example",';
    const calls = [
      request(h.app).post('/v1/webhooks').set('Content-Type', 'application/json').send(badJson),
      request(h.app).post('/v1/webhooks').set('Authorization', 'Bearer hk_test_unknown').set('Content-Type', 'application/json').send(badJson),
      request(h.app).post('/v1/webhooks').set('Content-Type', 'text/plain').send('url=https://x.example'),
      request(h.app).post('/v1/webhooks').set('Content-Type', 'application/json').send(`{"a":"${'x'.repeat(300 * 1024)}"}`),
      request(h.app).patch('/v1/webhooks/wh_x').set('Content-Type', 'application/json').send(badJson),
      request(h.app).post('/internal/v1/accounts').set('Content-Type', 'application/json').send('{name:'),
      request(h.app).post('/internal/v1/events').set('Authorization', 'Bearer wrong-platform-token').set('Content-Type', 'application/json').send(`{"a":"${'x'.repeat(300 * 1024)}"}`),
    ];
    for (const res of await Promise.all(calls)) expectEnvelope(res, 401, 'UNAUTHORIZED');
  });
});

describe('403 PLAN_REQUIRED', () => {
  it('a free account cannot use webhooks', async () => {
    const free = await h.integrator({ plan: 'free' });
    const res = await request(h.app).post('/v1/webhooks').set(free.auth).send({ url: 'https://a.example/free', events: ['quota.warning'] });
    expectEnvelope(res, 403, 'PLAN_REQUIRED');
  });
});

describe('404 RESOURCE_NOT_FOUND', () => {
  it('unknown routes and wrong methods, with or without a key', async () => {
    const calls = [
      request(h.app).get('/v1/nope').set(acme.auth),
      request(h.app).get('/v1/nope'),
      request(h.app).get('/nope'),
      request(h.app).put('/v1/webhooks').set(acme.auth).send({}),
      request(h.app).delete('/v1/webhooks').set(acme.auth),
      request(h.app).put('/v1/webhooks/wh_abc').set(acme.auth).send({}),
      request(h.app).post('/v1/event-types').set(acme.auth).send({}),
      request(h.app).get('/internal/v1/accounts').set('Authorization', `Bearer ${h.platformToken}`),
      request(h.app).get('/internal/v1/nope').set('Authorization', `Bearer ${h.platformToken}`),
    ];
    for (const res of await Promise.all(calls)) {
      expectEnvelope(res, 404, 'RESOURCE_NOT_FOUND');
      expect(res.text).not.toMatch(/<html|<pre/i);
    }
  });

  it('unknown, deleted and other accounts\' webhooks', async () => {
    const other = await h.integrator();
    const created = await request(h.app).post('/v1/webhooks').set(acme.auth).send({ url: 'https://a.example/404', events: ['quota.warning'] });
    const id = created.body.webhook.id;
    expectEnvelope(await request(h.app).get(`/v1/webhooks/${id}`).set(other.auth), 404, 'RESOURCE_NOT_FOUND');
    expectEnvelope(await request(h.app).get('/v1/webhooks/wh_000000000000000000000000').set(acme.auth), 404, 'RESOURCE_NOT_FOUND');
    await request(h.app).delete(`/v1/webhooks/${id}`).set(acme.auth);
    expectEnvelope(await request(h.app).get(`/v1/webhooks/${id}`).set(acme.auth), 404, 'RESOURCE_NOT_FOUND');
  });
});

describe('409', () => {
  it('DUPLICATE_WEBHOOK and IDEMPOTENCY_CONFLICT', async () => {
    const body = { url: 'https://a.example/409', events: ['quota.warning'] };
    await request(h.app).post('/v1/webhooks').set(acme.auth).send(body);
    expectEnvelope(await request(h.app).post('/v1/webhooks').set(acme.auth).send(body), 409, 'DUPLICATE_WEBHOOK');
    const key = 'conflict-key';
    await request(h.app).post('/v1/webhooks').set(acme.auth).set('Idempotency-Key', key).send({ ...body, url: 'https://a.example/409b' });
    expectEnvelope(await request(h.app).post('/v1/webhooks').set(acme.auth).set('Idempotency-Key', key).send({ ...body, url: 'https://a.example/409c' }), 409, 'IDEMPOTENCY_CONFLICT');
  });
});

describe('413 PAYLOAD_TOO_LARGE', () => {
  it('a body over 256 KiB, on both APIs', async () => {
    const big = JSON.stringify({ url: 'https://a.example/big', events: ['quota.warning'], description: 'x'.repeat(256 * 1024) });
    const res = await request(h.app).post('/v1/webhooks').set(acme.auth).set('Content-Type', 'application/json').send(big);
    expectEnvelope(res, 413, 'PAYLOAD_TOO_LARGE');
    const platform = await request(h.app).post('/internal/v1/accounts').set('Authorization', `Bearer ${h.platformToken}`).set('Content-Type', 'application/json').send(big);
    expectEnvelope(platform, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('just under 256 KiB is parsed (and then validated)', async () => {
    const body = JSON.stringify({ url: 'https://a.example/almost', events: ['quota.warning'], description: 'x'.repeat(250 * 1024) });
    const res = await request(h.app).post('/v1/webhooks').set(acme.auth).set('Content-Type', 'application/json').send(body);
    expectEnvelope(res, 400, 'INVALID_PAYLOAD');
    expect(res.body.error.details[0].path).toBe('description');
  });
});

describe('503 SERVICE_UNAVAILABLE', () => {
  let downDb: Db;
  beforeAll(async () => {
    // Nothing listens on port 1: every query fails to connect.
    downDb = await createDb({ databaseUrl: 'postgresql://postgres@127.0.0.1:1/x', poolSize: 2 });
  });
  afterAll(() => downDb.close().catch(() => undefined));

  it('when the database is unreachable, /v1 and the platform API answer 503 with the envelope', async () => {
    const app = createApp({ ...h.deps, db: downDb });
    const v1 = await request(app).get('/v1/webhooks').set(acme.auth);
    expectEnvelope(v1, 503, 'SERVICE_UNAVAILABLE');
    expect(v1.body.error.message).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|postgres/i);
    const create = await request(app).post('/v1/webhooks').set(acme.auth).send({ url: 'https://a.example/down', events: ['quota.warning'] });
    expectEnvelope(create, 503, 'SERVICE_UNAVAILABLE');
    const platform = await request(app).post('/internal/v1/accounts').set('Authorization', `Bearer ${h.platformToken}`).send({ name: 'down' });
    expectEnvelope(platform, 503, 'SERVICE_UNAVAILABLE');
  });
});

describe('500 INTERNAL_ERROR', () => {
  it('a plain Error becomes INTERNAL_ERROR whose message reveals nothing', () => {
    const err = toAppError(new Error('relation "webhooks" does not exist at /srv/app/secret.ts:12'));
    expect(err.code).toBe('INTERNAL_ERROR');
    expect(err.status).toBe(500);
    expect(err.message).not.toMatch(/relation|webhooks|secret|srv/);
    expect(toAppError('a string').code).toBe('INTERNAL_ERROR');
    expect(toAppError(undefined).code).toBe('INTERNAL_ERROR');
  });

  it('the error handler answers the envelope, logs the detail, and shows no stack', async () => {
    const lines: string[] = [];
    const stream = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
    const logger = createLogger({ level: 'error', service: 'errors-test', stream });
    const app = express();
    app.get('/boom', () => {
      throw new Error('db password is hunter2');
    });
    app.use(errorHandler(logger));
    const res = await request(app).get('/boom');
    expectEnvelope(res, 500, 'INTERNAL_ERROR');
    expect(res.text).not.toMatch(/hunter2|at .*\.ts|Error:/);
    expect(lines.join('')).toContain('request failed');
  });

  it('ZodError and AppError keep their meaning', () => {
    const zod = (() => {
      try {
        z.strictObject({ a: z.string() }).parse({ a: 1 });
      } catch (err) {
        return err as ZodError;
      }
      throw new Error('unreachable');
    })();
    expect(toAppError(zod)).toMatchObject({ code: 'INVALID_PAYLOAD', details: [{ path: 'a' }] });
    const headers = { 'Retry-After': '3' };
    expect(toAppError(new AppError('RATE_LIMITED', 'slow down', undefined, headers))).toMatchObject({ status: 429, headers });
  });
});
