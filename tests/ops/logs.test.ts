import { Writable } from 'node:stream';
import request from 'supertest';
import { createLogger } from '@hookline/config';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { startReceiver, type Receiver } from '../support/receiver';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';

// Logs (issue "Operations", item 8): one JSON line per request and per delivery
// attempt, carrying the ids an operator searches by — and, across a whole
// scenario, never a signing secret, static secret, API key or platform token.

type Line = Record<string, unknown>;

describe('logs of a full scenario', () => {
  const apiLines: Line[] = [];
  let h: ApiHarness;
  let worker: WorkerHarness;
  let receiver: Receiver;

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) apiLines.push(JSON.parse(line) as Line);
        done();
      },
    });
    h = await startApiHarness({ logger: createLogger({ level: 'debug', service: 'api', stream: sink }) });
    worker = await startWorkerHarness({ databaseUrl: h.database.url, prefix: h.prefix, encryptionKey: h.encryptionKey });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await worker.close();
    await receiver.close();
    await h.close();
  });

  it('has the ids on every line and no secret anywhere', async () => {
    const { accountId, key, auth } = await h.integrator();
    const staticSecret = 'static-verification-secret-42';
    const wrongKey = 'hk_test_' + 'x'.repeat(32);
    expect((await request(h.app).get('/v1/webhooks').set('Authorization', `Bearer ${wrongKey}`)).status).toBe(401);
    expect((await request(h.app).post('/internal/v1/accounts').set('Authorization', 'Bearer not-the-platform-token').send({ name: 'x' })).status).toBe(401);

    const created = await request(h.app).post('/v1/webhooks').set(auth).send({ url: receiver.url, events: ['quota.warning', 'extraction.job_completed'], secret: staticSecret });
    expect(created.status).toBe(201);
    const webhookId = created.body.webhook.id as string;
    const firstSecret = created.body.webhook.signing_secret as string;

    const event = await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.warning', data: { usage: 80, limit: 100 } });
    expect(event.status).toBe(202);
    await receiver.waitFor(1);

    const rotated = await request(h.app).post(`/v1/webhooks/${webhookId}/rotate-secret`).set('X-API-Key', key);
    expect(rotated.status).toBe(200);
    const secondSecret = rotated.body.webhook.signing_secret as string;
    const tested = await request(h.app).post(`/v1/webhooks/${webhookId}/test`).set(auth);
    expect(tested.status).toBe(200);
    const deliveries = await request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`).set(auth);
    const deliveryId = deliveries.body.data[0].id as string;
    expect((await request(h.app).post(`/v1/deliveries/${deliveryId}/retry`).set(auth)).status).toBe(202);
    await receiver.waitFor(3);
    await request(h.app).patch(`/v1/webhooks/${webhookId}`).set(auth).send({ secret: 'another-static-secret-43' });
    await waitUntil(() => worker.attemptLogs(deliveryId).length >= 2, 'the retry\'s attempt line logged');

    // One line per request, with its request id; webhook and delivery ids where the path names them.
    const requests = apiLines.filter((line) => line.message === 'request');
    expect(requests.length).toBeGreaterThanOrEqual(10);
    for (const line of requests) {
      expect(line).toMatchObject({ level: expect.any(String), request_id: expect.stringMatching(/^req_/), method: expect.any(String), path: expect.any(String), status: expect.any(Number), duration_ms: expect.any(Number) });
    }
    expect(requests.find((line) => line.path === `/v1/webhooks/${webhookId}/test`)).toMatchObject({ webhook_id: webhookId, status: 200, account_id: accountId });
    expect(requests.find((line) => line.path === `/v1/deliveries/${deliveryId}/retry`)).toMatchObject({ delivery_id: deliveryId, status: 202 });

    // One line per attempt, with delivery, webhook and attempt ids, outcome and duration.
    const attempts = worker.logs.filter((line) => line.message === 'delivery attempt');
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    for (const line of attempts) {
      expect(line).toMatchObject({ delivery_id: expect.stringMatching(/^dlv_/), webhook_id: webhookId, attempt_id: expect.stringMatching(/^att_/), outcome: 'succeeded', duration_ms: expect.any(Number) });
    }
    expect(worker.attemptLogs(deliveryId).map((line) => line.attempt_number)).toEqual([1, 2]);

    const everything = JSON.stringify(apiLines) + JSON.stringify(worker.logs);
    for (const secret of [h.platformToken, key, wrongKey, firstSecret, secondSecret, staticSecret, 'another-static-secret-43']) {
      expect(everything).not.toContain(secret);
    }
    // The signing secrets' key material, without the whsec_ prefix, neither.
    expect(everything).not.toContain(firstSecret.slice(6));
    expect(everything).not.toContain(secondSecret.slice(6));
  });
});
