import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { startReceiver, type ReceivedCallback, type Receiver } from '../support/receiver';
import { installVerifyPackage, type InstalledVerifyPackage } from '../support/verify-package';
import { startWorkerHarness, type WorkerHarness } from '../support/worker-harness';
import { waitUntil } from '../support/wait-until';

// The runnable examples of docs/verifying-webhooks.md, against REAL callbacks:
// each example runs as a child process, is registered as a webhook, and the
// real worker delivers to it. Forged, tampered and stale requests (sent by the
// test) must be refused (401 by the standard-library examples; 400 with the
// error's code by the @hookline/verify one, which runs from a receiver project
// that installed the packed package with npm, as an integrator's would).

const ROOT = resolve(__dirname, '../..');
const STATIC_SECRET = 'static-verification-token';

type Example = {
  name: string;
  command: string;
  script: string;
  /** The status of a refusal. */
  refused: number;
  /** Refuses a callback without X-PerfectParser-Signature (the standard-library examples check both schemes; the package one needs only Standard Webhooks). */
  needsBrandHeader: boolean;
  /** Runs from a receiver project with @hookline/verify installed from its tarball. */
  installsPackage?: boolean;
};
const EXAMPLES: Example[] = [
  { name: 'Node.js', command: process.execPath, script: 'examples/verify-node.mjs', refused: 401, needsBrandHeader: true },
  { name: 'Python', command: 'python3', script: 'examples/verify_python.py', refused: 401, needsBrandHeader: true },
  { name: '@hookline/verify', command: process.execPath, script: 'examples/verify-package.mjs', refused: 400, needsBrandHeader: false, installsPackage: true },
];

type Verified = { verified: true; duplicate: boolean; delivery_id: string; event_id: string; event: string; test: boolean };

type RunningExample = {
  url: string;
  lines: Verified[];
  stderr: string[];
  waitForLine(predicate: (line: Verified) => boolean, timeoutMs?: number): Promise<Verified>;
  /** Resolves once `count` lines match (stdout is read asynchronously: a line may trail its HTTP answer). */
  waitForLines(predicate: (line: Verified) => boolean, count: number, timeoutMs?: number): Promise<Verified[]>;
  stop(): Promise<number | null>;
};

async function startExample(example: Example, env: Record<string, string>, installed?: InstalledVerifyPackage): Promise<RunningExample> {
  const script = installed ? await installed.copy(example.script) : resolve(ROOT, example.script);
  const child: ChildProcess = spawn(example.command, [script, '0'], {
    cwd: installed?.dir ?? ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Verified[] = [];
  const stderr: string[] = [];
  const wake: Array<() => void> = [];
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) if (part.trim()) lines.push(JSON.parse(part) as Verified);
    wake.splice(0).forEach((fn) => fn());
  });
  const port = await new Promise<number>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`${example.name} example did not start: ${stderr.join('')}`)), 15_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr.push(chunk.toString('utf8'));
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr.join(''));
      if (match) {
        clearTimeout(timer);
        ready(Number(match[1]));
      }
    });
    child.once('exit', (code) => fail(new Error(`${example.name} example exited with ${code}: ${stderr.join('')}`)));
  });
  const waitForLines: RunningExample['waitForLines'] = (predicate, count, timeoutMs = 15_000) =>
    new Promise((found, fail) => {
      const timer = setTimeout(() => fail(new Error(`fewer than ${count} matching lines from the ${example.name} example; got ${JSON.stringify(lines)}`)), timeoutMs);
      const check = () => {
        const matching = lines.filter(predicate);
        if (matching.length >= count) {
          clearTimeout(timer);
          found(matching);
        } else wake.push(check);
      };
      check();
    });
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    lines,
    stderr,
    waitForLines,
    async waitForLine(predicate, timeoutMs) {
      const [line] = await waitForLines(predicate, 1, timeoutMs);
      return line;
    },
    stop() {
      return new Promise((done) => {
        if (child.exitCode !== null) return done(child.exitCode);
        child.once('exit', (code) => done(code));
        child.kill('SIGTERM');
      });
    },
  };
}

/** The headers a callback carries, to replay a captured one. */
function callbackHeaders(received: ReceivedCallback): Record<string, string> {
  const names = ['content-type', 'x-perfectparser-signature', 'x-perfectparser-event', 'x-perfectparser-delivery', 'x-webhook-secret', 'webhook-id', 'webhook-timestamp', 'webhook-signature'];
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = received.headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

/** Signs like an integrator's reference would (node:crypto, not Hookline's code), for forged variants. */
function sign(secret: string, id: string, timestamp: number, body: string) {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return {
    'x-perfectparser-signature': createHmac('sha256', secret).update(body, 'utf8').digest('hex'),
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`, 'utf8').digest('base64')}`,
  };
}

const post = (url: string, headers: Record<string, string>, body: string) => fetch(url, { method: 'POST', headers, body });

describe.each(EXAMPLES)('$name verification example', (example) => {
  let h: ApiHarness;
  let worker: WorkerHarness;
  let receiver: Receiver;
  let running: RunningExample;
  let auth: { Authorization: string };
  let accountId: string;
  let webhookId: string;
  let signingSecret: string;
  let captured: ReceivedCallback;
  let installed: InstalledVerifyPackage | undefined;

  beforeAll(async () => {
    if (example.installsPackage) installed = await installVerifyPackage();
    h = await startApiHarness();
    worker = await startWorkerHarness({ databaseUrl: h.database.url, prefix: h.prefix, encryptionKey: h.encryptionKey });
    receiver = await startReceiver();
    const integrator = await h.integrator();
    auth = integrator.auth;
    accountId = integrator.accountId;

    // First to the test receiver, to capture one real callback with its real headers.
    const created = await request(h.app).post('/v1/webhooks').set(auth).send({
      url: receiver.url,
      events: ['extraction.document_completed', 'extraction.job_completed'],
      secret: STATIC_SECRET,
      parser_id: 'invoices',
    });
    expect(created.status).toBe(201);
    webhookId = created.body.webhook.id;
    signingSecret = created.body.webhook.signing_secret;
    const first = await request(h.app).post(`/v1/webhooks/${webhookId}/test`).set(auth);
    expect(first.body.attempt.status).toBe('succeeded');
    [captured] = await receiver.waitFor(1);

    // Then to the example, which knows the webhook's secrets.
    running = await startExample(example, { WEBHOOK_SIGNING_SECRET: signingSecret, WEBHOOK_STATIC_SECRET: STATIC_SECRET }, installed);
    const moved = await request(h.app).patch(`/v1/webhooks/${webhookId}`).set(auth).send({ url: running.url });
    expect(moved.status).toBe(200);
  });

  afterAll(async () => {
    expect(await running?.stop()).toBe(0);
    await receiver?.close();
    await worker?.close();
    await h?.close();
    await installed?.cleanup();
  });

  it('accepts a real test callback delivered by the worker (200, one JSON line)', async () => {
    const res = await request(h.app).post(`/v1/webhooks/${webhookId}/test`).set(auth);
    expect(res.status).toBe(200);
    expect(res.body.attempt).toMatchObject({ status: 'succeeded', response_status: 200 });
    const line = await running.waitForLine((l) => l.delivery_id === res.body.attempt.delivery_id);
    expect(line).toEqual({ verified: true, duplicate: false, delivery_id: res.body.attempt.delivery_id, event_id: res.body.attempt.event_id, event: 'extraction.document_completed', test: true });
  });

  it('accepts the real callbacks of a finished extraction', async () => {
    const extraction = await h.platform.post('/internal/v1/extractions', { account_id: accountId, parser_id: 'invoices', document_count: 1 });
    expect(extraction.status).toBe(201);
    const report = await h.platform.post(`/internal/v1/extractions/${extraction.body.extraction.extraction_id}/documents/doc-1`, { status: 'completed', file_name: 'a.pdf', result: { total: 12.5 } });
    expect(report.status).toBe(202);
    const document = await running.waitForLine((l) => l.event === 'extraction.document_completed' && !l.test);
    const job = await running.waitForLine((l) => l.event === 'extraction.job_completed' && !l.test);
    expect(document).toMatchObject({ verified: true, duplicate: false, test: false });
    expect(job).toMatchObject({ verified: true, duplicate: false, test: false });
    // The worker records the attempt once it has the answer, just after the example printed its line.
    const succeeded = async () => {
      const res = await request(h.app).get(`/v1/webhooks/${webhookId}/deliveries`).set(auth).query({ status: 'succeeded' });
      return (res.body.data as Array<{ id: string }>).map((d) => d.id);
    };
    await waitUntil(async () => (await succeeded()).includes(job.delivery_id), 'the job callback recorded as succeeded', { intervalMs: 100 });
    expect(await succeeded()).toEqual(expect.arrayContaining([document.delivery_id, job.delivery_id]));
  });

  it('accepts a replayed real callback once, then reports it as a duplicate (dedupe by delivery id)', async () => {
    const headers = callbackHeaders(captured);
    const first = await post(running.url, headers, captured.body);
    expect(first.status).toBe(200);
    const again = await post(running.url, headers, captured.body);
    expect(again.status).toBe(200);
    const seen = await running.waitForLines((l) => l.delivery_id === headers['x-perfectparser-delivery'], 2);
    expect(seen.map((l) => l.duplicate)).toEqual([false, true]);
  });

  it('rejects a tampered body', async () => {
    const tampered = captured.body.replace('"test":true', '"test":false');
    expect(tampered).not.toBe(captured.body);
    const res = await post(running.url, callbackHeaders(captured), tampered);
    expect(res.status).toBe(example.refused);
    // The package's answer names the reason (Hookline shows it in the delivery log).
    if (example.installsPackage) expect(await res.json()).toEqual({ error: { code: 'invalid_signature', message: 'no webhook-signature matches the secret' } });
  });

  it('rejects signatures made with a wrong secret', async () => {
    const wrong = `whsec_${randomBytes(32).toString('base64')}`;
    const id = `dlv_forged${randomBytes(6).toString('hex')}`;
    const headers = { 'content-type': 'application/json', 'x-webhook-secret': STATIC_SECRET, 'x-perfectparser-delivery': id, ...sign(wrong, id, Math.floor(Date.now() / 1000), captured.body) };
    expect((await post(running.url, headers, captured.body)).status).toBe(example.refused);
  });

  it('rejects a wrong or missing X-Webhook-Secret, even when signed correctly', async () => {
    const id = `dlv_static${randomBytes(6).toString('hex')}`;
    const signed = { 'content-type': 'application/json', 'x-perfectparser-delivery': id, ...sign(signingSecret, id, Math.floor(Date.now() / 1000), captured.body) };
    expect((await post(running.url, { ...signed, 'x-webhook-secret': 'not-the-static-secret' }, captured.body)).status).toBe(example.refused);
    expect((await post(running.url, signed, captured.body)).status).toBe(example.refused);
    // The same request with the right static secret passes: the two above failed on it alone.
    expect((await post(running.url, { ...signed, 'x-webhook-secret': STATIC_SECRET }, captured.body)).status).toBe(200);
  });

  it('rejects a correctly signed callback whose webhook-timestamp is more than 5 minutes off', async () => {
    const id = `dlv_stale${randomBytes(6).toString('hex')}`;
    for (const offset of [-6 * 60, 6 * 60]) {
      const headers = { 'content-type': 'application/json', 'x-webhook-secret': STATIC_SECRET, 'x-perfectparser-delivery': id, ...sign(signingSecret, id, Math.floor(Date.now() / 1000) + offset, captured.body) };
      expect((await post(running.url, headers, captured.body)).status).toBe(example.refused);
    }
  });

  it('rejects a callback without its Standard Webhooks signature (and, where the example checks both, without X-PerfectParser-Signature)', async () => {
    const headers = callbackHeaders(captured);
    const { 'x-perfectparser-signature': _brand, ...withoutBrand } = headers;
    const { 'webhook-signature': _standard, ...withoutStandard } = headers;
    expect((await post(running.url, withoutStandard, captured.body)).status).toBe(example.refused);
    expect((await post(running.url, withoutBrand, captured.body)).status).toBe(example.needsBrandHeader ? example.refused : 200);
  });

  it('keeps accepting real callbacks during a secret rotation (old secret, two signatures per header)', async () => {
    const rotated = await request(h.app).post(`/v1/webhooks/${webhookId}/rotate-secret`).set(auth);
    expect(rotated.status).toBe(200);
    expect(rotated.body.webhook.signing_secret).not.toBe(signingSecret);
    const res = await request(h.app).post(`/v1/webhooks/${webhookId}/test`).set(auth);
    expect(res.body.attempt).toMatchObject({ status: 'succeeded', response_status: 200 });
    await running.waitForLine((l) => l.delivery_id === res.body.attempt.delivery_id);
  });

  it('wrote nothing but verified-callback lines to stdout', () => {
    expect(running.lines.length).toBeGreaterThanOrEqual(6);
    for (const line of running.lines) expect(line.verified).toBe(true);
    expect(running.stderr.join('')).not.toContain(signingSecret);
  });
});
