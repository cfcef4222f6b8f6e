import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHooklineClient, type HooklineClient } from '@hookline/client';
import { INTEGRATOR_ROUTES, PLATFORM_ROUTES } from '../../apps/api/src/routes';
import { toOpenApiPath } from '../../apps/api/src/openapi';
// (`limit` is typed as a string: the document describes the query as sent, digits, before the schema turns it into a number.)
import { eventually, startStack, type Stack } from '../delivery/stack';

// @hookline/client against a running Hookline: the real app listening on a
// port, the real worker, PostgreSQL and Redis, and a real receiver. Every
// integrator and platform operation is driven through the client, and the
// test checks it called each one (the list comes from the route declarations).

let stack: Stack;
let server: http.Server;
let baseUrl: string;
const called = new Set<string>();

/** A client that records each operation it calls, by method and OpenAPI path. */
function recorded(client: HooklineClient): HooklineClient {
  client.use({
    onRequest({ request, schemaPath }) {
      called.add(`${request.method} ${schemaPath}`);
      return undefined;
    },
  });
  return client;
}

beforeAll(async () => {
  stack = await startStack();
  server = http.createServer(stack.api.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await stack?.close();
});

it('drives every integrator and platform operation through the typed client', async () => {
  const platform = recorded(createHooklineClient({ baseUrl, platformToken: stack.api.platformToken }));

  // ---- the platform: an account, keys, an extraction, a report, an event ----
  const account = await platform.POST('/internal/v1/accounts', { body: { name: 'Client Co', plan: 'pro' } });
  expect(account.response.status).toBe(201);
  const accountId = account.data!.account.id;
  const key = await platform.POST('/internal/v1/accounts/{id}/api-keys', { params: { path: { id: accountId } }, body: { mode: 'test' } });
  expect(key.data!.api_key.key).toMatch(/^hk_test_/);
  const spare = await platform.POST('/internal/v1/accounts/{id}/api-keys', { params: { path: { id: accountId } }, body: { mode: 'live' } });

  const api = recorded(createHooklineClient({ baseUrl, apiKey: key.data!.api_key.key }));
  const receiver = await stack.receiver();

  // ---- webhooks ----
  const types = await api.GET('/v1/event-types');
  expect(types.data!.data.map((t) => t.name)).toContain('quota.warning');
  const created = await api.POST('/v1/webhooks', {
    body: { url: receiver.url, events: ['quota.warning', 'extraction.document_completed'], headers: { 'X-Client': 'typed' }, max_retries: 0 },
    headers: { 'Idempotency-Key': 'client-test-1' },
  });
  expect(created.response.status).toBe(201);
  const webhook = created.data!.webhook;
  expect(webhook.signing_secret).toMatch(/^whsec_/);
  expect(webhook.headers).toEqual({ 'X-Client': 'typed' });

  const list = await api.GET('/v1/webhooks', { params: { query: { limit: '10' } } });
  expect(list.data!.data.map((w) => w.id)).toEqual([webhook.id]);
  const patched = await api.PATCH('/v1/webhooks/{id}', { params: { path: { id: webhook.id } }, body: { description: 'via the client' } });
  expect(patched.data!.webhook.description).toBe('via the client');
  const rotated = await api.POST('/v1/webhooks/{id}/rotate-secret', { params: { path: { id: webhook.id } } });
  expect(rotated.data!.webhook.signing_secret).not.toBe(webhook.signing_secret);
  const tested = await api.POST('/v1/webhooks/{id}/test', { params: { path: { id: webhook.id } } });
  expect(tested.data!.attempt).toMatchObject({ status: 'succeeded', response_status: 200 });
  expect((await receiver.waitFor(1))[0].headers['x-client']).toBe('typed');

  // ---- the platform's extraction and events reach the webhook ----
  const extraction = await platform.POST('/internal/v1/extractions', { body: { account_id: accountId, parser_id: null, document_count: 1 } });
  expect(extraction.response.status).toBe(201);
  const extractionId = extraction.data!.extraction.extraction_id;
  const report = await platform.POST('/internal/v1/extractions/{extraction_id}/documents/{document_id}', {
    params: { path: { extraction_id: extractionId, document_id: 'doc-1' } },
    body: { status: 'completed', file_name: 'a.pdf', result: { total: 1 } },
  });
  expect(report.response.status).toBe(202);
  const published = await platform.POST('/internal/v1/events', { body: { account_id: accountId, event: 'quota.warning', data: { usage: 80, limit: 100 } } });
  expect(published.data!.event.deliveries).toBe(1);
  await receiver.waitFor(3);

  const result = await api.GET('/v1/extractions/{extraction_id}/documents/{document_id}', { params: { path: { extraction_id: extractionId, document_id: 'doc-1' } } });
  expect(result.data).toMatchObject({ extraction_id: extractionId, document_id: 'doc-1', status: 'completed', result: { total: 1 } });

  // ---- deliveries: the log, one delivery, a retry, a recovery ----
  const deliveries = await eventually(async () => {
    const page = await api.GET('/v1/webhooks/{id}/deliveries', { params: { path: { id: webhook.id }, query: { status: 'succeeded', limit: '100' } } });
    return page.data!.data.length >= 3 ? page.data!.data : undefined;
  }, 10_000, 'three succeeded deliveries');
  const one = await api.GET('/v1/deliveries/{id}', { params: { path: { id: deliveries[0].id } } });
  expect(one.data!.attempts[0]).toMatchObject({ status: 'succeeded' });
  const retried = await api.POST('/v1/deliveries/{id}/retry', { params: { path: { id: deliveries[0].id } } });
  expect(retried.response.status).toBe(202);
  const recovered = await api.POST('/v1/webhooks/{id}/recover', { params: { path: { id: webhook.id } }, body: { since: new Date(Date.now() - 3_600_000).toISOString() } });
  expect(recovered.data).toEqual({ requeued: 0 });

  // ---- errors come back typed as the contract's envelope ----
  const refused = await api.POST('/v1/webhooks', { body: { url: receiver.url, events: ['quota.warning'], headers: { Connection: 'close' } } });
  expect(refused.response.status).toBe(400);
  expect(refused.error!.error).toMatchObject({ code: 'INVALID_PAYLOAD', details: [{ path: 'headers.Connection' }] });

  // ---- listen sessions (the WebSocket itself is driven by the hookline command: tests/delivery/listen.test.ts) ----
  const session = await api.POST('/v1/listen/sessions', { body: { events: ['quota.warning'] } });
  expect(session.response.status).toBe(201);
  expect(session.data!.signing_secret).toMatch(/^whsec_/);
  const sessionId = session.data!.session.id;
  expect((await api.GET('/v1/listen/sessions')).data!.data).toEqual([expect.objectContaining({ id: sessionId, connected: false })]);
  const plain = await api.GET('/v1/listen/sessions/{id}/connect', { params: { path: { id: sessionId } } });
  expect(plain.error!.error.code).toBe('INVALID_PAYLOAD');
  // No tool holds the session: the worker finds no holder, as for an endpoint that refuses connections.
  const triggered = await api.POST('/v1/listen/sessions/{id}/trigger', { params: { path: { id: sessionId } }, body: { event: 'quota.warning' } });
  expect(triggered.data!.attempt).toMatchObject({ status: 'failed', error: 'connection_refused', response_status: null });
  expect((await api.DELETE('/v1/listen/sessions/{id}', { params: { path: { id: sessionId } } })).response.status).toBe(204);

  // ---- and the ends of things ----
  expect((await api.DELETE('/v1/webhooks/{id}', { params: { path: { id: webhook.id } } })).response.status).toBe(204);
  expect((await api.GET('/v1/webhooks/{id}', { params: { path: { id: webhook.id } } })).error!.error.code).toBe('RESOURCE_NOT_FOUND');
  expect((await platform.DELETE('/internal/v1/api-keys/{id}', { params: { path: { id: spare.data!.api_key.id } } })).response.status).toBe(204);

  const every = [...INTEGRATOR_ROUTES, ...PLATFORM_ROUTES].map((route) => `${route.method.toUpperCase()} ${toOpenApiPath(route.path)}`);
  expect([...called].sort()).toEqual([...new Set(every)].sort());
});
