import { request as httpRequest } from 'node:http';
import { Client } from 'pg';
import { startApiHarness, TEST_REDIS_URL, type ApiHarness } from '../support/api-harness';
import { spawnApiProcess, type ApiProcess } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';

// An API process killed between claiming an Idempotency-Key and answering
// (docs/api.md#pagination-and-idempotency): the key answers 409 "still being
// processed" only until IDEMPOTENCY_LEASE ends, then the client's retry runs.

const LEASE_MS = 3_000;
const KEY = 'create-account-killed';
const SCOPE = `platform:POST /internal/v1/accounts:${KEY}`;

let h: ApiHarness;
const running: ApiProcess[] = [];
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(async () => {
  for (const api of running) await api.kill('SIGKILL');
  await h.close();
});

async function startApi(): Promise<ApiProcess> {
  const api = await spawnApiProcess({
    NODE_ENV: 'production',
    DATABASE_URL: h.database.url,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: h.prefix,
    PLATFORM_TOKEN: h.platformToken,
    ENCRYPTION_KEY: h.encryptionKey.toString('base64'),
    IDEMPOTENCY_LEASE: `${LEASE_MS}ms`,
  });
  running.push(api);
  return api;
}

function createAccount(port: number): Promise<{ status: number; body: string }> {
  const body = JSON.stringify({ name: 'Killed Mid-Request Inc' });
  return new Promise((done, fail) => {
    const req = httpRequest(
      {
        host: '127.0.0.1', port, method: 'POST', path: '/internal/v1/accounts',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${h.platformToken}`, 'idempotency-key': KEY },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

const claimRow = async () =>
  (await h.database.db.sql.query<{ status: number }>('SELECT response_status AS status FROM idempotency_records WHERE scope = $1', [SCOPE]))[0];
/** The claim's expires_at has passed, by the database's clock (the one the API compares with). */
const leaseOver = async () =>
  (await h.database.db.sql.query<{ over: boolean }>('SELECT expires_at < now() AS over FROM idempotency_records WHERE scope = $1', [SCOPE]))[0]?.over;

it('a key claimed by a killed API process is free again once its lease ends', async () => {
  // Two replicas, as in production: the client's retry reaches the one that lives.
  const [first, second] = await Promise.all([startApi(), startApi()]);
  // Hold the request between its claim and its answer: the accounts table is locked, so the insert waits.
  const locker = new Client({ connectionString: h.database.url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE');
    const lost = createAccount(first.port).catch((err: Error) => ({ status: 0, body: err.message }));
    await waitUntil(claimRow, 'the request\'s claim written', { timeoutMs: 10_000 });
    expect(await claimRow()).toEqual({ status: 0 });

    await first.kill('SIGKILL');
    expect((await lost).status).toBe(0); // the connection died with the process
    await locker.query('ROLLBACK');
  } finally {
    await locker.end();
  }

  // Within the lease the key still belongs to the dead request.
  const early = await createAccount(second.port);
  expect(early.status).toBe(409);
  expect(JSON.parse(early.body).error).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', message: expect.stringMatching(/retry shortly/) });

  // Once the lease ends (measured from the claim), the retry runs and its answer is kept.
  await waitUntil(leaseOver, 'the claim\'s lease over', { timeoutMs: LEASE_MS + 5_000 });
  const retried = await createAccount(second.port);
  expect(retried.status).toBe(201);
  const replayed = await createAccount(second.port);
  expect(replayed.status).toBe(201);
  expect(JSON.parse(replayed.body)).toEqual(JSON.parse(retried.body));
  expect(await h.database.db.prisma.account.count({ where: { name: 'Killed Mid-Request Inc' } })).toBe(1);
});
