import { spawn, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import request from 'supertest';
import { createApp, createHttpServer, listenHubOf } from '@hookline/api';
import { listen, run, type ListenHandle } from '@hookline/cli';
import { verify } from '@hookline/verify';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { waitUntil } from '../support/wait-until';
import { deliveryReaches, eventually, startStack, type Stack } from './stack';

// `hookline listen` (docs/listen.md) end to end: the real API serving the
// session's WebSocket on a real HTTP server, the real worker relaying the
// session's callbacks through Redis, the tool (in this process, or as the
// `hookline` command in a child process) forwarding them to a real local
// receiver. The tool reaches the API through a TCP proxy, so a test can drop
// its connection without stopping the API.

const ROOT = resolve(__dirname, '../..');

describe('hookline listen', () => {
  let stack: Stack;
  let server: Server;
  let apiUrl: string;
  let proxy: TcpProxy;
  const handles: ListenHandle[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    stack = await startStack();
    server = createHttpServer(stack.api.app);
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    const { port } = server.address() as AddressInfo;
    proxy = await startTcpProxy({ host: '127.0.0.1', port });
    apiUrl = `http://127.0.0.1:${proxy.port}`;
  });
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(handles.map((h) => h.stop().catch(() => undefined)));
    await proxy?.close();
    await listenHubOf(stack.api.app)?.close();
    server?.closeAllConnections();
    await new Promise((done) => server?.close(done));
    await stack?.close();
  });
  beforeEach(() => stack.freshAccount());

  /** The tool, in this process, for the stack's account; its output lines are collected. */
  async function startListening(forwardTo: string, events = ['quota.warning']) {
    const lines: string[] = [];
    const handle = await listen({ url: apiUrl, apiKey: stack.account.key, forwardTo, events, print: (line) => lines.push(line), reconnectMs: { first: 100, max: 500 } });
    handles.push(handle);
    await waitUntil(() => handle.connected(), 'the session connected');
    return { handle, lines };
  }

  it('forwards a callback published for the account to the local URL, signed as sent; the local answer is the attempt in the delivery log', async () => {
    const local = await stack.receiver({ status: 202, body: 'accepted locally' });
    const { handle, lines } = await startListening(local.url);
    expect(lines.join('\n')).toContain(handle.signingSecret);

    await stack.publish('quota.warning', { usage: 81 }, 1);
    const [cb] = await local.waitFor(1);
    // The integrator's own verification code, unchanged, accepts what the tool forwarded.
    const event = verify(cb.body, cb.headers as Record<string, string>, handle.signingSecret);
    expect(event).toMatchObject({ event: 'quota.warning', test: false, data: { usage: 81 } });
    expect(cb.headers['user-agent']).toMatch(/^Hookline\//);
    const deliveryId = String(cb.headers['x-perfectparser-delivery']);
    expect(cb.headers['webhook-id']).toBe(deliveryId);

    const { attempts } = await deliveryReaches(stack, deliveryId, 'succeeded');
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ status: 'succeeded', response_status: 202, response_body: 'accepted locally', error: null });
    await waitUntil(() => lines.find((line) => line.includes(deliveryId)), 'the callback\'s line printed');
    expect(lines.find((line) => line.includes(deliveryId))).toMatch(new RegExp(`^\\S+Z\\s+quota\\.warning\\s+${deliveryId}\\s+202\\s+\\d+ ms$`));

    // The session is a webhook of the account, listed as connected.
    const sessions = await stack.v1.get('/v1/listen/sessions');
    expect(sessions.body.data).toEqual([expect.objectContaining({ id: handle.sessionId, connected: true, events: ['quota.warning'] })]);
    expect((await stack.v1.get(`/v1/webhooks/${handle.sessionId}`)).status).toBe(200);
    // Its URL names the session, not an endpoint: it cannot be pointed elsewhere.
    const moved = await stack.v1.patch(`/v1/webhooks/${handle.sessionId}`, { url: 'https://example.com/hooks' });
    expect(moved.status).toBe(400);
    expect(moved.body.error.details).toEqual([{ path: 'url', message: 'cannot be changed on a hookline listen session' }]);
  });

  it('retries a local 500 by the usual rules', async () => {
    const local = await stack.receiver((_req, index) => (index === 0 ? { status: 500, body: 'local bug' } : { status: 200 }));
    await startListening(local.url);
    await stack.publish('quota.warning', {}, 1);
    const [first] = await local.waitFor(2);
    const { attempts } = await deliveryReaches(stack, String(first.headers['x-perfectparser-delivery']), 'succeeded');
    expect(attempts.map((a) => [a.attempt_number, a.status, a.response_status])).toEqual([[1, 'failed', 500], [2, 'succeeded', 200]]);
    expect(attempts[0]).toMatchObject({ response_body: 'local bug', error: null });
    expect(attempts[0].next_retry_at).not.toBeNull();
  });

  it('a dropped connection\'s callback fails as unreachable, then arrives once the tool has reconnected', async () => {
    const local = await stack.receiver();
    const { handle, lines } = await startListening(local.url);
    proxy.cut();
    await waitUntil(() => !handle.connected(), 'the tool saw its connection drop');
    // The API let go of the session: no process holds it now.
    await eventually(async () => (await stack.v1.get('/v1/listen/sessions')).body.data[0]?.connected === false, 5_000, 'the session not held');

    await stack.publish('quota.warning', {}, 1);
    const [delivery] = await eventually(async () => {
      const list = await stack.deliveries(handle.sessionId);
      return list.length === 1 && list[0].attempt_count >= 1 ? list : undefined;
    }, 10_000, 'a first attempt');
    const { attempts: before } = await stack.delivery(delivery.id);
    expect(before[0]).toMatchObject({ status: 'failed', error: 'connection_refused', response_status: null });
    expect(local.received).toHaveLength(0);

    proxy.restore();
    const [cb] = await local.waitFor(1);
    expect(String(cb.headers['x-perfectparser-delivery'])).toBe(delivery.id);
    expect(verify(cb.body, cb.headers as Record<string, string>, handle.signingSecret).event).toBe('quota.warning');
    const { attempts } = await deliveryReaches(stack, delivery.id, 'succeeded');
    expect(attempts.at(-1)).toMatchObject({ status: 'succeeded', response_status: 200 });
    expect(lines.some((line) => line.startsWith('Reconnected'))).toBe(true);
  });

  it('`hookline listen` prints the secret and a line per callback; `hookline trigger` reaches the session; ending the tool removes it', async () => {
    const local = await stack.receiver();
    const child = spawn(process.execPath, [resolve(ROOT, 'packages/cli/bin/hookline.cjs'), 'listen', '--forward-to', local.url, '--events', 'quota.warning,extraction.job_completed'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, HOOKLINE_URL: apiUrl, HOOKLINE_API_KEY: stack.account.key },
    });
    children.push(child);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));

    const secret = (await waitUntil(() => /Signing secret: (whsec_\S+)/.exec(output), 'the signing secret printed', { timeoutMs: 30_000 }))[1];
    await eventually(async () => (await stack.v1.get('/v1/listen/sessions')).body.data[0]?.connected === true, 15_000, 'the command connected');

    const said: string[] = [];
    const io = { out: (line: string) => said.push(line), err: (line: string) => said.push(line), env: { HOOKLINE_URL: apiUrl, HOOKLINE_API_KEY: stack.account.key } };
    expect(await run(['trigger', 'extraction.job_completed'], io)).toBe(0);
    const [cb] = await local.waitFor(1);
    const event = verify(cb.body, cb.headers as Record<string, string>, secret);
    expect(event).toMatchObject({ event: 'extraction.job_completed', test: true });
    const deliveryId = String(cb.headers['x-perfectparser-delivery']);
    expect(said.join('\n')).toContain(deliveryId);
    await waitUntil(() => output.includes(deliveryId), 'the command printed the callback');
    expect(output.split('\n').find((line) => line.includes(deliveryId))).toMatch(/extraction\.job_completed\s+dlv_\S+\s+200\s+\d+ ms/);

    // An event the session does not listen for is refused, with the reason.
    expect(await run(['trigger', 'quota.exceeded'], io)).toBe(1);
    expect(said.at(-1)).toMatch(/does not listen for quota\.exceeded/);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect((await stack.v1.get('/v1/listen/sessions')).body.data).toEqual([]);
  });

  it('removes a session LISTEN_SESSION_GRACE after its tool went away (or never came), not while it is connected', async () => {
    const app = createApp({ ...stack.api.deps, config: { ...stack.api.deps.config, LISTEN_SESSION_GRACE: 1_000 } });
    const graceServer = createHttpServer(app);
    await new Promise<void>((ready) => graceServer.listen(0, '127.0.0.1', ready));
    const graceProxy = await startTcpProxy({ host: '127.0.0.1', port: (graceServer.address() as AddressInfo).port });
    try {
      const never = await request(app).post('/v1/listen/sessions').set(stack.account.auth).send({ events: ['quota.warning'] });
      expect(never.status).toBe(201);
      const local = await stack.receiver();
      const lines: string[] = [];
      const held = await listen({ url: `http://127.0.0.1:${graceProxy.port}`, apiKey: stack.account.key, forwardTo: local.url, events: ['quota.warning'], print: (line) => lines.push(line), reconnectMs: { first: 100, max: 300 } });
      handles.push(held);
      await waitUntil(() => held.connected(), 'the session connected');

      // The sweep that removes the never-connected session looks at the connected one too (both older than the grace).
      await eventually(async () => (await stack.v1.get(`/v1/webhooks/${never.body.session.id}`)).status === 404, 15_000, 'the never-connected session removed');
      expect((await stack.v1.get(`/v1/webhooks/${held.sessionId}`)).status).toBe(200);

      // Gone longer than the grace: removed, and the tool, back, is told the session ended.
      graceProxy.cut();
      await eventually(async () => (await stack.v1.get(`/v1/webhooks/${held.sessionId}`)).status === 404, 15_000, 'the dropped session removed');
      graceProxy.restore();
      await expect(held.done).rejects.toThrow(/session cannot go on/);
    } finally {
      await graceProxy.close();
      await listenHubOf(app)?.close();
      graceServer.closeAllConnections();
      await new Promise((done) => graceServer.close(done));
    }
  });

  it('refuses a live key unless the operator allows live sessions; a session counts toward the webhook limit', async () => {
    const live = await stack.api.integrator({ plan: 'pro', mode: 'live' });
    const refused = await request(stack.api.app).post('/v1/listen/sessions').set(live.auth).send({});
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('FORBIDDEN');
    await expect(listen({ url: apiUrl, apiKey: live.key, forwardTo: 'http://127.0.0.1:9/hooks', print: () => undefined })).rejects.toThrow(/test-mode API key/);

    const allowing = createApp({ ...stack.api.deps, config: { ...stack.api.deps.config, LISTEN_ALLOW_LIVE_KEYS: true } });
    const opened = await request(allowing).post('/v1/listen/sessions').set(live.auth).send({ events: ['quota.warning'] });
    expect(opened.status).toBe(201);
    expect(opened.body.signing_secret).toMatch(/^whsec_/);

    const limited = createApp({ ...stack.api.deps, config: { ...stack.api.deps.config, MAX_WEBHOOKS_PER_ACCOUNT: 1 } });
    const full = await request(limited).post('/v1/listen/sessions').set(stack.account.auth).send({});
    expect(full.status).toBe(201);
    const over = await request(limited).post('/v1/webhooks').set(stack.account.auth).send({ url: 'https://example.com/hooks', events: ['quota.warning'] });
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('LIMIT_REACHED');
  });
});
