import request from 'supertest';
import type { z } from 'zod';
import {
  ERROR_STATUS,
  errorEnvelopeSchema,
  createAccountBody,
  createApiKeyBody,
  createExtractionBody,
  createWebhookBody,
  deliveryListQuery,
  documentReportBody,
  listQuery,
  publishEventBody,
  recoverBody,
  updateWebhookBody,
} from '@hookline/domain';
import { RESPONSE_SCHEMAS, buildOpenApiDocument, toOpenApiPath } from '../../apps/api/src/openapi';
import { API_ROUTES, getOpenApiDocument } from '../../apps/api/src/routes';
import { startApiHarness, type ApiHarness } from '../support/api-harness';

// /openapi.json is checked three ways: it is a well-formed OpenAPI 3.1 document
// (no validator package is installed, so the structure is checked here), its
// paths are exactly the routes the app serves (both come from one declaration
// per operation, API_ROUTES; the app is asked for each), and real answers of
// the app match the response schemas it declares.

type Json = Record<string, any>;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];


function resolvePointer(doc: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Json)[key] : undefined), doc);
}

function collectRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((item) => collectRefs(item, out));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') out.push(value);
      else collectRefs(value, out);
    }
  }
  return out;
}

const deref = (doc: Json, node: Json): Json => (node && typeof node.$ref === 'string' ? deref(doc, resolvePointer(doc, node.$ref) as Json) : node);

function operations(doc: Json) {
  return Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ path, method, op: op as Json })),
  );
}

describe('OpenAPI document', () => {
  let h: ApiHarness;
  let doc: Json;

  beforeAll(async () => {
    h = await startApiHarness({ config: { ADMIN_PASSWORD: 'admin-password-for-tests' } });
    const res = await request(h.app).get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = res.body;
  });
  afterAll(() => h.close());

  describe('structure', () => {
    it('is OpenAPI 3.1 with info, paths, components and the three security schemes', () => {
      expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
      expect(typeof doc.info.title).toBe('string');
      expect(typeof doc.info.version).toBe('string');
      expect(Object.keys(doc.paths).length).toBeGreaterThan(15);
      expect(doc.components.securitySchemes).toEqual({
        ApiKeyBearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
        ApiKeyHeader: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
        PlatformToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      });
    });

    it('resolves every $ref', () => {
      const refs = collectRefs(doc);
      expect(refs.length).toBeGreaterThan(50);
      const broken = refs.filter((ref) => resolvePointer(doc, ref) === undefined);
      expect(broken).toEqual([]);
    });

    it('gives every operation a unique operationId, a summary, a 2xx and described responses', () => {
      const ids = new Set<string>();
      for (const { path, method, op } of operations(doc)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect({ where, operationId: typeof op.operationId }).toEqual({ where, operationId: 'string' });
        expect(ids.has(op.operationId)).toBe(false);
        ids.add(op.operationId);
        expect(typeof op.summary).toBe('string');
        const statuses = Object.keys(op.responses ?? {});
        // A WebSocket endpoint's success is its 101 (the upgrade), not a 2xx.
        expect({ where, has2xx: statuses.some((s) => /^2\d\d$/.test(s) || (s === '101' && where.endsWith('/connect'))) }).toEqual({ where, has2xx: true });
        for (const status of statuses) {
          expect(statuses).toContain(status);
          expect(typeof deref(doc, op.responses[status]).description).toBe('string');
        }
      }
    });

    it('declares every path template parameter, and only those', () => {
      for (const { path, method, op } of operations(doc)) {
        const inTemplate = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
        const declared = ((op.parameters ?? []) as Json[]).map((p) => deref(doc, p)).filter((p) => p.in === 'path');
        expect({ where: `${method} ${path}`, params: declared.map((p) => p.name).sort() }).toEqual({ where: `${method} ${path}`, params: inTemplate });
        for (const param of declared) expect(param.required).toBe(true);
      }
    });

    it('secures /v1 with an API key (bearer or X-API-Key) and /internal/v1 with the platform token', () => {
      const schemes = new Set(Object.keys(doc.components.securitySchemes));
      for (const { path, op } of operations(doc)) {
        for (const requirement of (op.security ?? []) as Json[]) for (const name of Object.keys(requirement)) expect(schemes).toContain(name);
        if (path.startsWith('/v1/')) expect(op.security).toEqual([{ ApiKeyBearer: [] }, { ApiKeyHeader: [] }]);
        else if (path.startsWith('/internal/v1/')) expect(op.security).toEqual([{ PlatformToken: [] }]);
        else expect(op.security).toEqual([]);
      }
    });

    it('describes the errors of every authenticated operation with the contract envelope', () => {
      for (const { path, method, op } of operations(doc)) {
        if (!path.startsWith('/v1/') && !path.startsWith('/internal/v1/')) continue;
        const statuses = Object.keys(op.responses);
        expect({ where: `${method} ${path}`, required: ['401', '500', '503'].filter((s) => !statuses.includes(s)) }).toEqual({ where: `${method} ${path}`, required: [] });
        if (op.requestBody) expect(statuses).toEqual(expect.arrayContaining(['400', '413']));
        for (const status of statuses.filter((s) => Number(s) >= 400)) {
          const schema = deref(doc, op.responses[status]).content['application/json'].schema;
          expect(schema).toEqual({ $ref: '#/components/schemas/Error' });
        }
      }
      const envelope = doc.components.schemas.Error;
      expect(envelope.required).toEqual(['error']);
      expect(envelope.properties.error.properties.code.enum).toEqual(expect.arrayContaining(['INVALID_PAYLOAD', 'UNAUTHORIZED', 'PLAN_REQUIRED', 'RESOURCE_NOT_FOUND', 'DUPLICATE_WEBHOOK', 'IDEMPOTENCY_CONFLICT', 'PAYLOAD_TOO_LARGE', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE', 'INTERNAL_ERROR']));
    });

    it('gives each error status an example of its own, with a code that status carries', () => {
      const examples = new Map<string, string>();
      for (const { path, method, op } of operations(doc)) {
        // The API's operations; the probes answer 503 with a readiness report, not an error.
        if (!path.startsWith('/v1/') && !path.startsWith('/internal/v1/')) continue;
        for (const status of Object.keys(op.responses).filter((s) => Number(s) >= 400)) {
          const example = deref(doc, op.responses[status]).content['application/json'].example as { error: { code: keyof typeof ERROR_STATUS } };
          expect({ where: `${method} ${path} ${status}`, valid: errorEnvelopeSchema.safeParse(example).success, status: ERROR_STATUS[example?.error?.code] })
            .toEqual({ where: `${method} ${path} ${status}`, valid: true, status: Number(status) });
          examples.set(status, JSON.stringify(example));
        }
      }
      // One example per status, and no two statuses share one.
      expect([...examples.keys()].sort()).toEqual(['400', '401', '403', '404', '409', '413', '429', '500', '503']);
      expect(new Set(examples.values()).size).toBe(examples.size);
    });

    it('documents Idempotency-Key where the API honours it', () => {
      const idempotent = operations(doc).filter(({ op }) => ((op.parameters ?? []) as Json[]).some((p) => deref(doc, p).in === 'header' && deref(doc, p).name === 'idempotency-key'));
      const names = idempotent.map(({ method, path }) => `${method.toUpperCase()} ${path}`).sort();
      const platformPosts = operations(doc).filter(({ method, path }) => method === 'post' && path.startsWith('/internal/v1/')).map(({ path }) => `POST ${path}`);
      expect(names).toEqual(['POST /v1/deliveries/{id}/retry', 'POST /v1/webhooks', 'POST /v1/webhooks/{id}/recover', ...platformPosts].sort());
    });

    it('has examples that match their schemas', () => {
      for (const [name, schema] of Object.entries(RESPONSE_SCHEMAS)) {
        const example = doc.components.schemas[name]?.example;
        if (example === undefined) continue;
        const parsed = (schema as z.ZodType).safeParse(example);
        expect({ name, issues: parsed.success ? [] : parsed.error.issues }).toEqual({ name, issues: [] });
      }
      expect(doc.components.schemas.Webhook.example).toBeDefined();
      expect(doc.components.schemas.Error.example).toBeDefined();
    });

    it('is built once and cached', async () => {
      expect(getOpenApiDocument()).toBe(getOpenApiDocument());
      const again = await request(h.app).get('/openapi.json');
      expect(again.body).toEqual(doc);
    });
  });

  describe('generated from the request schemas that validate requests', () => {
    const bodies: Array<[string, string, z.ZodObject]> = [
      ['post', '/v1/webhooks', createWebhookBody],
      ['patch', '/v1/webhooks/{id}', updateWebhookBody],
      ['post', '/v1/webhooks/{id}/recover', recoverBody],
      ['post', '/internal/v1/accounts', createAccountBody],
      ['post', '/internal/v1/accounts/{id}/api-keys', createApiKeyBody],
      ['post', '/internal/v1/extractions', createExtractionBody],
      ['post', '/internal/v1/extractions/{extraction_id}/documents/{document_id}', documentReportBody],
      ['post', '/internal/v1/events', publishEventBody],
    ];

    it.each(bodies)('%s %s: the body schema has exactly the zod schema\'s fields, unknown fields refused', (method, path, schema) => {
      const body = deref(doc, doc.paths[path][method].requestBody.content['application/json'].schema);
      expect(Object.keys(body.properties).sort()).toEqual(Object.keys(schema.shape).sort());
      expect(body.additionalProperties).toBe(false);
      const required = Object.entries(schema.shape).filter(([, field]) => !(field as z.ZodType).safeParse(undefined).success).map(([key]) => key);
      expect((body.required ?? []).sort()).toEqual(required.sort());
    });

    it('the webhook bodies take max_in_flight (1–100) and rate_limit_per_second (1–1000), each nullable', () => {
      for (const [method, path] of [['post', '/v1/webhooks'], ['patch', '/v1/webhooks/{id}']]) {
        const body = deref(doc, doc.paths[path][method].requestBody.content['application/json'].schema);
        for (const [field, max] of [['max_in_flight', 100], ['rate_limit_per_second', 1000]] as const) {
          const schema = body.properties[field];
          expect([path, field, JSON.stringify(schema)]).toEqual([path, field, expect.stringContaining('"integer"')]);
          const variants: Json[] = schema.anyOf ?? schema.oneOf ?? [schema];
          const integer = variants.find((v) => v.type === 'integer' || (Array.isArray(v.type) && v.type.includes('integer')));
          expect(integer).toMatchObject({ minimum: 1, maximum: max });
          expect(variants.some((v) => v.type === 'null' || (Array.isArray(v.type) && v.type.includes('null')))).toBe(true);
          expect(typeof (schema.description ?? integer?.description)).toBe('string');
        }
      }
    });

    it('the Webhook object shows the isolation fields and the circuit, never the cooldown', () => {
      const webhook = deref(doc, doc.components.schemas.Webhook);
      const keys = Object.keys(webhook.properties);
      // In the order the answers carry them: after failing_since, before created_at.
      expect(keys.slice(keys.indexOf('failing_since'), keys.indexOf('created_at') + 1)).toEqual(['failing_since', 'filter', 'max_in_flight', 'rate_limit_per_second', 'headers', 'circuit', 'circuit_retry_at', 'created_at']);
      expect(webhook.required).toEqual(expect.arrayContaining(['max_in_flight', 'rate_limit_per_second', 'circuit', 'circuit_retry_at']));
      expect(webhook.properties.circuit.enum).toEqual(['closed', 'open', 'half_open']);
      expect(JSON.stringify(webhook.properties.circuit_retry_at)).toContain('date-time');
      expect(JSON.stringify(doc)).not.toMatch(/cooldown_ms/i);
      expect(Object.keys(deref(doc, doc.components.schemas.WebhookWithSecret).properties)).toEqual(expect.arrayContaining(['max_in_flight', 'rate_limit_per_second', 'circuit', 'circuit_retry_at']));
    });

    it('the webhook events enum is the API event list, as validated', () => {
      const body = doc.paths['/v1/webhooks'].post.requestBody.content['application/json'].schema;
      expect(body.properties.events.items.enum).toEqual([
        'extraction.document_completed', 'extraction.job_completed', 'quota.warning', 'quota.exceeded', 'webhook.failing', 'webhook.disabled', 'delivery.exhausted',
      ]);
      expect(createWebhookBody.safeParse({ url: 'https://example.com/h', events: ['batch.completed'] }).success).toBe(false);
    });

    it('the platform may publish every event but the operational ones, whose data schemas are components all the same', () => {
      const body = deref(doc, doc.paths['/internal/v1/events'].post.requestBody.content['application/json'].schema);
      const published: string[] = deref(doc, body.properties.event).enum;
      expect(published).toEqual(expect.arrayContaining(['extraction.document_completed', 'quota.warning', 'batch.partial']));
      for (const name of ['webhook.failing', 'webhook.disabled', 'delivery.exhausted']) expect(published).not.toContain(name);
      expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['WebhookFailingData', 'WebhookDisabledData', 'DeliveryExhaustedData']));
    });

    it.each([
      ['/v1/webhooks', listQuery],
      ['/v1/webhooks/{id}/deliveries', deliveryListQuery],
    ])('GET %s: the query parameters are the zod query schema\'s', (path, schema) => {
      const names = (doc.paths[path].get.parameters as Json[]).filter((p) => p.in === 'query').map((p) => p.name).sort();
      expect(names).toEqual(Object.keys(schema.shape).sort());
    });
  });

  describe('matches the routes the app serves', () => {
    /** A concrete URL for a path template. */
    const concrete = (path: string) => path.replace(/\{[^}]+\}/g, 'x1');
    const isNoRoute = (res: request.Response) => res.status === 404 && /^No route /.test(res.body?.error?.message ?? '');
    const call = (method: string, url: string) => (request(h.app) as unknown as Record<string, (url: string) => request.Test>)[method](url);

    it('documents exactly the declared operations, once each', () => {
      const documented = operations(doc).map(({ method, path }) => `${method.toUpperCase()} ${path}`).sort();
      const declared = API_ROUTES.map((route) => `${route.method.toUpperCase()} ${toOpenApiPath(route.path)}`).sort();
      expect(documented).toEqual(declared);
      expect(new Set(declared).size).toBe(declared.length);
      expect(new Set(API_ROUTES.map((route) => route.operationId)).size).toBe(API_ROUTES.length);
    });

    it('serves every documented operation, and no other method on its path', async () => {
      const unserved: string[] = [];
      const extra: string[] = [];
      for (const [path, item] of Object.entries(doc.paths as Json)) {
        for (const method of ['get', 'post', 'patch', 'delete', 'put']) {
          const res = await call(method, concrete(path)).set('Idempotency-Key', 'route-check');
          const documented = method in (item as Json);
          if (documented && isNoRoute(res)) unserved.push(`${method.toUpperCase()} ${path}`);
          if (!documented && !isNoRoute(res)) extra.push(`${method.toUpperCase()} ${path} → ${res.status}`);
        }
      }
      expect({ unserved, extra }).toEqual({ unserved: [], extra: [] });
    });

    it('guards each operation as declared: API key (and plan) on /v1, the platform token on /internal/v1, nothing on the probes', async () => {
      const free = await h.platform.post('/internal/v1/accounts', { name: 'Free Co', plan: 'free' });
      const freeKey = await h.platform.post(`/internal/v1/accounts/${free.body.account.id}/api-keys`, { mode: 'test' });
      for (const route of API_ROUTES) {
        const url = concrete(toOpenApiPath(route.path));
        const where = `${route.method.toUpperCase()} ${route.path}`;
        const anonymous = await call(route.method, url);
        if (route.access === 'public') {
          expect({ where, status: anonymous.status }).toEqual({ where, status: 200 });
          continue;
        }
        expect({ where, status: anonymous.status }).toEqual({ where, status: 401 });
        if (route.access === 'api_key') {
          const onFreePlan = await call(route.method, url).set('Authorization', `Bearer ${freeKey.body.api_key.key}`);
          expect({ where, planRefused: onFreePlan.status === 403 }).toEqual({ where, planRefused: Boolean(route.plan) });
        }
      }
    });

    it('builds the document from the routes it is given', () => {
      const only = API_ROUTES.filter((route) => route.operationId === 'healthz');
      expect(Object.keys(buildOpenApiDocument(only).paths ?? {})).toEqual(['/healthz']);
    });
  });

  describe('real answers match the declared response schemas', () => {
    /** The declared zod schema for an answer; strict: a field the document does not declare fails. */
    function expectDeclared(method: string, path: string, res: request.Response) {
      const op = API_ROUTES.find((o) => o.method === method && o.path === path);
      if (!op) throw new Error(`no operation ${method} ${path} in API_ROUTES`);
      const declared = op.responses[res.status];
      const schema = (declared?.content?.['application/json'] as { schema?: z.ZodType } | undefined)?.schema
        ?? (res.status >= 400 ? RESPONSE_SCHEMAS.Error : undefined);
      expect({ route: `${method} ${path}`, status: res.status, declared: Boolean(schema || (declared && !declared.content)) }).toEqual({ route: `${method} ${path}`, status: res.status, declared: true });
      if (!schema) return;
      const parsed = schema.safeParse(res.body);
      expect({ route: `${method} ${path}`, issues: parsed.success ? [] : parsed.error.issues }).toEqual({ route: `${method} ${path}`, issues: [] });
      // zod drops undeclared fields: a difference means the answer carries something the document hides.
      if (parsed.success) expect(parsed.data).toEqual(res.body);
    }

    it('platform and integrator calls answer what the document says', async () => {
      const account = await h.platform.post('/internal/v1/accounts', { name: 'Spec Co', plan: 'pro' });
      expectDeclared('post', '/internal/v1/accounts', account);
      const key = await h.platform.post(`/internal/v1/accounts/${account.body.account.id}/api-keys`, { mode: 'test' });
      expectDeclared('post', '/internal/v1/accounts/:id/api-keys', key);
      const auth = { Authorization: `Bearer ${key.body.api_key.key}` };

      const created = await request(h.app).post('/v1/webhooks').set(auth).send({ url: 'https://example.com/spec-hook', events: ['extraction.document_completed'], secret: 'static-secret-1', max_in_flight: 4, rate_limit_per_second: 20 });
      expectDeclared('post', '/v1/webhooks', created);
      const id = created.body.webhook.id as string;

      expectDeclared('get', '/v1/webhooks', await request(h.app).get('/v1/webhooks').set(auth));
      expectDeclared('get', '/v1/webhooks/:id', await request(h.app).get(`/v1/webhooks/${id}`).set(auth));
      // An open circuit, as the worker writes it, is declared too.
      await h.deps.db.prisma.webhook.update({ where: { id }, data: { circuit: 'open', circuitRetryAt: new Date(Date.now() + 30_000), circuitCooldownMs: 30_000 } });
      const open = await request(h.app).get(`/v1/webhooks/${id}`).set(auth);
      expect(open.body.webhook).toMatchObject({ max_in_flight: 4, rate_limit_per_second: 20, circuit: 'open', circuit_retry_at: expect.any(String) });
      expectDeclared('get', '/v1/webhooks/:id', open);
      expectDeclared('patch', '/v1/webhooks/:id', await request(h.app).patch(`/v1/webhooks/${id}`).set(auth).send({ description: 'spec' }));
      expectDeclared('post', '/v1/webhooks/:id/rotate-secret', await request(h.app).post(`/v1/webhooks/${id}/rotate-secret`).set(auth));
      expectDeclared('get', '/v1/webhooks/:id/deliveries', await request(h.app).get(`/v1/webhooks/${id}/deliveries`).set(auth));
      expectDeclared('get', '/v1/event-types', await request(h.app).get('/v1/event-types').set(auth));

      const extraction = await h.platform.post('/internal/v1/extractions', { account_id: account.body.account.id, parser_id: 'invoices', document_count: 1 });
      expectDeclared('post', '/internal/v1/extractions', extraction);
      const extractionId = extraction.body.extraction.extraction_id as string;
      const report = await h.platform.post(`/internal/v1/extractions/${extractionId}/documents/doc-1`, { status: 'completed', file_name: 'a.pdf', result: { total: 1 } });
      expectDeclared('post', '/internal/v1/extractions/:extraction_id/documents/:document_id', report);
      expectDeclared('get', '/v1/extractions/:extraction_id/documents/:document_id', await request(h.app).get(`/v1/extractions/${extractionId}/documents/doc-1`).set(auth));

      const deliveries = await request(h.app).get(`/v1/webhooks/${id}/deliveries`).set(auth);
      expectDeclared('get', '/v1/webhooks/:id/deliveries', deliveries);
      expect(deliveries.body.data.length).toBeGreaterThan(0);
      const deliveryId = deliveries.body.data[0].id as string;
      expectDeclared('get', '/v1/deliveries/:id', await request(h.app).get(`/v1/deliveries/${deliveryId}`).set(auth));
      expectDeclared('post', '/v1/deliveries/:id/retry', await request(h.app).post(`/v1/deliveries/${deliveryId}/retry`).set(auth));
      expectDeclared('post', '/v1/webhooks/:id/recover', await request(h.app).post(`/v1/webhooks/${id}/recover`).set(auth).send({ since: '2020-01-01T00:00:00Z' }));

      expectDeclared('post', '/internal/v1/events', await h.platform.post('/internal/v1/events', { account_id: account.body.account.id, event: 'quota.warning', data: { usage: 80, limit: 100 } }));
      expectDeclared('delete', '/v1/webhooks/:id', await request(h.app).delete(`/v1/webhooks/${id}`).set(auth));
      expectDeclared('delete', '/internal/v1/api-keys/:id', await h.platform.delete(`/internal/v1/api-keys/${key.body.api_key.id}`));
    });

    it('errors answer with the declared envelope', async () => {
      expectDeclared('get', '/v1/webhooks', await request(h.app).get('/v1/webhooks'));
      expectDeclared('post', '/internal/v1/accounts', await h.platform.post('/internal/v1/accounts', { name: '' }));
      expectDeclared('get', '/v1/webhooks/:id', await request(h.app).get('/v1/webhooks/wh_nope').set({ Authorization: 'Bearer hk_test_nope' }));
    });

    it('the probes answer what the document says', async () => {
      expectDeclared('get', '/healthz', await request(h.app).get('/healthz'));
      expectDeclared('get', '/readyz', await request(h.app).get('/readyz'));
    });
  });

  describe('/docs', () => {
    it('renders the document with Swagger UI from local assets only, and every asset loads', async () => {
      const res = await request(h.app).get('/docs');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      const urls = [...res.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
      expect(urls).toEqual(expect.arrayContaining(['/docs/assets/swagger-ui.css', '/docs/assets/swagger-ui-bundle.js', '/docs/init.js']));
      for (const url of urls) {
        expect(url).toMatch(/^\/docs\//);
        const asset = await request(h.app).get(url);
        expect({ url, status: asset.status }).toEqual({ url, status: 200 });
        if (url.endsWith('.js')) expect(asset.headers['content-type']).toMatch(/javascript/);
        if (url.endsWith('.css')) expect(asset.headers['content-type']).toMatch(/^text\/css/);
      }
    });

    it('points Swagger UI at /openapi.json with the online validator off', async () => {
      const init = await request(h.app).get('/docs/init.js');
      expect(init.text).toContain("url: '/openapi.json'");
      expect(init.text).toContain('validatorUrl: null');
      expect(init.text).not.toMatch(/https?:\/\//);
    });

    it('answers a missing asset with the 404 envelope, not the package\'s demo page', async () => {
      const missing = await request(h.app).get('/docs/assets/nope.js');
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('RESOURCE_NOT_FOUND');
      const index = await request(h.app).get('/docs/assets/');
      expect(index.status).toBe(404);
    });

    it('does not serve Swagger\'s demo pages, which would make the browser fetch the third-party petstore spec', async () => {
      for (const demo of ['index.html', 'swagger-initializer.js', 'oauth2-redirect.html', 'index.js', 'package.json']) {
        const res = await request(h.app).get(`/docs/assets/${demo}`);
        expect({ demo, status: res.status, code: res.body.error?.code }).toEqual({ demo, status: 404, code: 'RESOURCE_NOT_FOUND' });
      }
      // The page's own assets and their source maps still load.
      expect((await request(h.app).get('/docs/assets/swagger-ui-bundle.js.map')).status).toBe(200);
    });
  });
});
