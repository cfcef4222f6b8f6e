import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { resolve } from 'node:path';
import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { startReceiver, type Receiver } from '../support/receiver';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-harness';

// Graceful shutdown of the two production processes, run as real processes:
// SIGTERM during a delivery lets it finish and be recorded once; SIGTERM
// during an API request lets that request get its answer.

const ROOT = resolve(__dirname, '../..');
const HOLD_MS = 1_000;

describe('graceful shutdown', () => {
  let h: ApiHarness;
  let receiver: Receiver;

  beforeAll(async () => {
    h = await startApiHarness();
    receiver = await startReceiver({ status: 200, body: '{"ok":true}', delayMs: HOLD_MS });
  });
  afterAll(async () => {
    await receiver.close();
    await h.close();
  });

  describe('worker', () => {
    let worker: WorkerProcess | undefined;
    afterAll(async () => {
      if (worker && worker.child.exitCode === null) await worker.kill('SIGKILL');
    });

    it('finishes the delivery in flight on SIGTERM, records it once and exits 0', async () => {
      const { accountId, auth } = await h.integrator();
      const created = await request(h.app).post('/v1/webhooks').set(auth).send({ url: receiver.url, events: ['quota.warning'] });
      expect(created.status).toBe(201);
      const webhookId = created.body.webhook.id as string;

      worker = await spawnWorkerProcess({
        DATABASE_URL: h.database.url,
        REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
        QUEUE_PREFIX: h.prefix,
        ENCRYPTION_KEY: h.encryptionKey.toString('base64'),
        ALLOW_PRIVATE_TARGETS: 'true',
        RETRY_SCHEDULE: '1s',
        DELIVERY_TIMEOUT: '5s',
      });

      const published = await h.platform.post('/internal/v1/events', { account_id: accountId, event: 'quota.warning', data: { usage: 80, limit: 100 } });
      expect(published.status).toBe(202);
      expect(published.body.event.deliveries).toBe(1);

      // The receiver has the request and holds its answer for HOLD_MS: stop the worker now.
      const [callback] = await receiver.waitFor(1);
      const signalledAt = Date.now();
      expect(signalledAt - callback.receivedAt).toBeLessThan(HOLD_MS / 2);
      // SIGTERM to the whole process group, as systemd and a terminal do: the node process gets it
      // twice (directly and relayed by tsx) and must still finish the delivery, not exit at once.
      process.kill(-worker.child.pid!, 'SIGTERM');
      const exit = await worker.exited;
      expect({ ...exit, output: exit.code === 0 ? [] : worker.output }).toEqual({ code: 0, signal: null, output: [] });
      // It waited for the answer instead of dropping the delivery.
      expect(Date.now() - callback.receivedAt).toBeGreaterThanOrEqual(HOLD_MS - 50);

      const deliveries = await request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`).set(auth);
      expect(deliveries.body.data).toHaveLength(1);
      const detail = await request(h.app).get(`/v1/deliveries/${deliveries.body.data[0].id}`).set(auth);
      expect(detail.body.delivery).toMatchObject({ status: 'succeeded', attempt_count: 1 });
      expect(detail.body.attempts).toHaveLength(1);
      expect(detail.body.attempts[0]).toMatchObject({ status: 'succeeded', response_status: 200, attempt_number: 1 });
      expect(receiver.received).toHaveLength(1);

      // Nothing was left behind for another worker to send again.
      const counts = await h.queue.getJobCounts('active', 'waiting', 'delayed', 'failed');
      expect(counts).toEqual({ active: 0, waiting: 0, delayed: 0, failed: 0 });
      const stopLine = worker.output.find((line) => line.includes('shutting down'));
      expect(stopLine).toBeDefined();
    });
  });

  describe('API', () => {
    let api: ChildProcess | undefined;
    afterAll(() => {
      if (api && api.exitCode === null) api.kill('SIGKILL');
    });

    it('answers a request in flight when SIGTERM arrives, refuses new connections, and exits 0', async () => {
      api = spawn(resolve(ROOT, 'node_modules/.bin/tsx'), ['apps/api/src/main.ts'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? ROOT,
          NODE_ENV: 'production',
          PORT: '0',
          DATABASE_URL: h.database.url,
          REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
          QUEUE_PREFIX: h.prefix,
          PLATFORM_TOKEN: h.platformToken,
          ENCRYPTION_KEY: h.encryptionKey.toString('base64'),
          LOG_LEVEL: 'info',
        },
      });
      const child = api;
      const output: string[] = [];
      const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
      const port = await new Promise<number>((ready, fail) => {
        const timer = setTimeout(() => fail(new Error(`API did not start:\n${output.join('')}`)), 30_000);
        const onData = (chunk: Buffer) => {
          output.push(chunk.toString('utf8'));
          const match = /api listening.*?127\.0\.0\.1:(\d+)/.exec(output.join(''));
          if (match) {
            clearTimeout(timer);
            ready(Number(match[1]));
          }
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        void exited.then((code) => fail(new Error(`API exited (${code}) before listening:\n${output.join('')}`)));
      });

      // A request whose body is still arriving when SIGTERM does.
      const body = JSON.stringify({ name: 'In Flight Inc', plan: 'pro' });
      const half = Math.floor(body.length / 2);
      let received = '';
      const answer = new Promise<{ status: number; body: string }>((done, fail) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, method: 'POST', path: '/internal/v1/accounts', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${h.platformToken}` } },
          (res) => {
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (received += chunk));
            res.on('end', () => done({ status: res.statusCode ?? 0, body: received }));
          },
        );
        req.on('error', fail);
        req.write(body.slice(0, half));
        setTimeout(() => {
          child.kill('SIGTERM');
          // The server has stopped listening: a new connection is refused while the old one is served.
          setTimeout(() => {
            const probe = httpRequest({ host: '127.0.0.1', port, path: '/healthz' });
            probe.on('error', (err: NodeJS.ErrnoException) => {
              if (err.code !== 'ECONNREFUSED') return fail(err);
              req.end(body.slice(half));
            });
            probe.on('response', () => fail(new Error('a new connection was accepted after SIGTERM')));
            probe.end();
          }, 300);
        }, 300);
      });

      const res = await answer;
      expect(res.status).toBe(201);
      expect(JSON.parse(res.body).account).toMatchObject({ name: 'In Flight Inc', plan: 'pro' });
      expect(await exited).toBe(0);
      expect(output.join('')).toContain('shutting down');
    });
  });
});
