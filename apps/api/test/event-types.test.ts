import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import request from 'supertest';
import { EVENT_TYPES, JSON_SCHEMA_DIALECT, eventDataComponentName, eventDataJsonSchema } from '@hookline/domain';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { createExtraction, report } from './support/pipeline-fixtures';

// Typed events over the real app, PostgreSQL and Redis: GET /v1/event-types
// serves each event's data schema (JSON Schema 2020-12), POST /internal/v1/events
// refuses data that does not match it (400 naming the data.… path), /openapi.json
// shows the same schemas, and the extraction events Hookline writes itself are
// held to the served schemas by ajv, a validator independent of the zod schemas
// they are generated from.

type Json = Record<string, any>;

let h: ApiHarness;
let served: Json[];

beforeAll(async () => {
  h = await startApiHarness();
  const { auth } = await h.integrator();
  const res = await request(h.app).get('/v1/event-types').set(auth);
  expect(res.status).toBe(200);
  served = res.body.data;
});

afterAll(async () => {
  await h?.close();
});

/**
 * A validator for each event, compiled from the schemas GET /v1/event-types
 * served (strict: unknown keywords fail). webhook.failing's failing_since is a
 * date-time: a format strict ajv must be told of (its value is zod's to check).
 */
function servedValidators(): Record<string, ValidateFunction> {
  const ajv = new Ajv2020({ strict: true, allErrors: true, formats: { 'date-time': true } });
  return Object.fromEntries(served.map((type) => [type.name, ajv.compile(type.schema)]));
}

describe('GET /v1/event-types', () => {
  it('lists every catalog event with the JSON Schema (2020-12) of its data', () => {
    expect(served.map((type) => type.name)).toEqual(EVENT_TYPES.map((type) => type.name));
    for (const type of served) {
      const entry = EVENT_TYPES.find((e) => e.name === type.name)!;
      expect(type).toEqual({ name: entry.name, description: entry.description, source: entry.source, schema: eventDataJsonSchema(entry.name) });
      expect(type.schema.$schema).toBe(JSON_SCHEMA_DIALECT);
      expect(type.schema.title).toBe(`${type.name} data`);
    }
    expect(() => servedValidators()).not.toThrow();
  });

  it('quota.* schemas require usage (integer ≥ 0) and limit (integer ≥ 1) and allow other fields', () => {
    const validate = servedValidators();
    for (const name of ['quota.warning', 'quota.exceeded']) {
      expect(validate[name]({ usage: 0, limit: 1, period: '2026-11' })).toBe(true);
      expect(validate[name]({ usage: -1, limit: 1 })).toBe(false);
      expect(validate[name]({ usage: 1, limit: 0 })).toBe(false);
      expect(validate[name]({ usage: 1.5, limit: 2 })).toBe(false);
      expect(validate[name]({ usage: 1 })).toBe(false);
    }
  });
});

describe('POST /internal/v1/events checks data against the event type\'s schema', () => {
  const publish = (accountId: string, event: string, data?: unknown) =>
    h.platform.post('/internal/v1/events', { account_id: accountId, event, ...(data === undefined ? {} : { data }) });
  const eventCount = (accountId: string) => h.deps.db.prisma.event.count({ where: { accountId } });

  it.each([
    ['a negative usage', 'quota.warning', { usage: -1, limit: 100 }, ['data.usage']],
    ['a missing limit', 'quota.warning', { usage: 80 }, ['data.limit']],
    ['no data at all', 'quota.exceeded', undefined, ['data.usage', 'data.limit']],
    ['a fractional usage and a zero limit', 'quota.exceeded', { usage: 10.5, limit: 0 }, ['data.usage', 'data.limit']],
    ['a usage given as text', 'quota.warning', { usage: '80', limit: 100 }, ['data.usage']],
    ['a batch.failed that says completed', 'batch.failed', { extraction_id: 'e', parser_id: null, status: 'completed', document_count: 1, completed_count: 1, failed_count: 0 }, ['data.status']],
    ['a document report with a field Hookline never sends', 'extraction.document_completed', { extraction_id: 'e', document_id: 'd', parser_id: null, status: 'completed', file_name: null, result: {}, surprise: 1 }, ['data.surprise']],
    ['a failed document whose error is a number', 'extraction.document_completed', { extraction_id: 'e', document_id: 'd', parser_id: null, status: 'failed', file_name: null, error: 42 }, ['data.error']],
  ])('%s: 400 INVALID_PAYLOAD naming the data path, nothing written', async (_label, event, data, paths) => {
    const { accountId } = await h.integrator();
    const res = await publish(accountId, event, data);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(paths);
    for (const detail of res.body.error.details) expect(detail.message).toEqual(expect.any(String));
    expect(res.body.error.message).toMatch(new RegExp(`^${paths[0].replace('.', '\\.')}: `));
    expect(await eventCount(accountId)).toBe(0);
  });

  it('the messages say what is expected', async () => {
    const { accountId } = await h.integrator();
    const res = await publish(accountId, 'quota.warning', { usage: -1 });
    expect(res.body.error.details).toEqual([
      { path: 'data.usage', message: 'must be 0 or more' },
      { path: 'data.limit', message: 'is required' },
    ]);
  });

  it('accepts matching data, and the platform\'s own fields beside usage and limit are stored and passed on', async () => {
    const { accountId } = await h.integrator();
    const data = { usage: 8000, limit: 10_000, period: '2026-11', plan: { name: 'pro' } };
    const res = await publish(accountId, 'quota.warning', data);
    expect(res.status).toBe(202);
    const stored = await h.deps.db.prisma.event.findUniqueOrThrow({ where: { id: res.body.event.id } });
    expect(stored.data).toEqual(data);
  });

  it('an event Hookline usually writes itself may be published too, when its data matches', async () => {
    const { accountId } = await h.integrator();
    const data = { extraction_id: 'ext_manual', parser_id: null, status: 'partial', document_count: 2, completed_count: 1, failed_count: 1 };
    expect((await publish(accountId, 'batch.partial', data)).status).toBe(202);
    expect((await publish(accountId, 'extraction.job_completed', data)).status).toBe(202);
    expect((await publish(accountId, 'batch.completed', data)).status).toBe(400);
  });
});

describe('POST /internal/v1/events with random data', () => {
  const ODD: unknown[] = [null, true, 0, -1, 1, 2.5, 1e308, '', 'x', '80', 'completed', 'partial', [], [1], {}, { code: 'E' }];
  const BASE: Record<string, Json> = {
    'quota.warning': { usage: 80, limit: 100 },
    'quota.exceeded': { usage: 101, limit: 100, period: '2026-11' },
    'batch.partial': { extraction_id: 'e', parser_id: null, status: 'partial', document_count: 2, completed_count: 1, failed_count: 1 },
    'extraction.document_completed': { extraction_id: 'e', document_id: 'd', parser_id: 'p', status: 'failed', file_name: null, error: 'x' },
  };

  it('answers 202 exactly when the served JSON Schema accepts the data, else 400 on data.… paths; never a 5xx', async () => {
    const { accountId } = await h.integrator();
    const validate = servedValidators();
    let seed = 20261130;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const pick = <T>(items: readonly T[]): T => items[rand(items.length)];
    const verdicts = { accepted: 0, refused: 0 };
    for (let i = 0; i < 120; i++) {
      const event = pick(Object.keys(BASE));
      const data: Json = { ...BASE[event] };
      for (let k = rand(3); k > 0; k--) {
        const key = pick([...Object.keys(data), 'extra']);
        if (rand(4) === 0) delete data[key];
        else data[key] = pick(ODD);
      }
      const res = await h.platform.post('/internal/v1/events', { account_id: accountId, event, data });
      const expected = validate[event](data) ? 202 : 400;
      expect({ event, data, status: res.status }).toEqual({ event, data, status: expected });
      if (res.status === 400) {
        expect(res.body.error.code).toBe('INVALID_PAYLOAD');
        for (const detail of res.body.error.details) expect(detail.path).toMatch(/^data\./);
        verdicts.refused++;
      } else verdicts.accepted++;
    }
    expect(verdicts.accepted).toBeGreaterThan(10);
    expect(verdicts.refused).toBeGreaterThan(10);
  });
});

describe('the extraction events Hookline emits itself match the served schemas', () => {
  it('documents completed (with and without result) and failed (string and object error), and the job and batch events', async () => {
    const { accountId } = await h.integrator();
    const validate = servedValidators();

    // partial: every kind of document report.
    const mixed = await createExtraction(h, accountId, { documentCount: 4, parserId: 'invoices' });
    await report(h, mixed.extraction_id, 'doc-1', { status: 'completed', file_name: 'a.pdf', result: { total: 42.5, lines: [{ sku: 'A', qty: 2 }] } }).expect(202);
    await report(h, mixed.extraction_id, 'doc-2', { status: 'failed', file_name: 'b.pdf', error: 'unreadable scan' }).expect(202);
    await h.platform.post(`/internal/v1/extractions/${mixed.extraction_id}/documents/doc-3`, { status: 'failed', error: { code: 'OCR_TIMEOUT', message: 'gave up after 60 s', retryable: true } }).expect(202);
    await h.platform.post(`/internal/v1/extractions/${mixed.extraction_id}/documents/doc-4`, { status: 'completed' }).expect(202);
    // completed and failed, without a parser.
    const allDone = await createExtraction(h, accountId, { documentCount: 1, parserId: null });
    await report(h, allDone.extraction_id, 'only', { status: 'completed', file_name: 'c.pdf', result: {} }).expect(202);
    const allFailed = await createExtraction(h, accountId, { documentCount: 1 });
    await h.platform.post(`/internal/v1/extractions/${allFailed.extraction_id}/documents/only`, { status: 'failed' }).expect(202);

    const events = await h.deps.db.prisma.event.findMany({ where: { accountId }, orderBy: { createdAt: 'asc' } });
    expect(events.map((e) => e.event).sort()).toEqual([
      'batch.completed', 'batch.failed', 'batch.partial',
      ...Array(6).fill('extraction.document_completed'),
      ...Array(3).fill('extraction.job_completed'),
    ].sort());
    for (const event of events) {
      const ok = validate[event.event](event.data);
      expect({ event: event.event, data: event.data, errors: ok ? null : validate[event.event].errors }).toEqual({ event: event.event, data: event.data, errors: null });
    }

    // The errors were passed on as sent: a string and an object.
    const documents = events.filter((e) => e.event === 'extraction.document_completed').map((e) => e.data as Json);
    expect(documents.map((d) => d.error).filter((error) => error !== undefined)).toEqual(expect.arrayContaining(['unreadable scan', { code: 'OCR_TIMEOUT', message: 'gave up after 60 s', retryable: true }, null]));

    // The check has teeth: the same data, one field off, is refused.
    const [first] = documents;
    expect(validate['extraction.document_completed']({ ...first, document_id: undefined })).toBe(false);
    expect(validate['extraction.document_completed']({ ...first, extra: true })).toBe(false);
  });
});

describe('/openapi.json', () => {
  it('has each catalog event\'s data schema as a component, the same fields as the served JSON Schema', async () => {
    const doc = (await request(h.app).get('/openapi.json')).body as Json;
    const branches = (schema: Json): Json[] => schema.oneOf ?? schema.anyOf ?? [schema];
    for (const type of served) {
      const component = doc.components.schemas[eventDataComponentName(type.name)] as Json;
      expect([type.name, component === undefined]).toEqual([type.name, false]);
      const fields = (schema: Json) => branches(schema).map((branch) => ({ properties: Object.keys(branch.properties).sort(), required: [...branch.required].sort() }));
      expect([type.name, fields(component)]).toEqual([type.name, fields(type.schema)]);
    }
    expect(doc.components.schemas.EventType.properties.schema.description).toMatch(/JSON Schema \(draft 2020-12\)/);
    expect(JSON.stringify(doc.components.schemas.EventType.required)).toContain('schema');
  });
});
