import Ajv2020 from 'ajv/dist/2020';
import { prng } from '../../../tests/support/prng';
import {
  EVENT_NAMES,
  EVENT_TYPES,
  JSON_SCHEMA_DIALECT,
  OPERATIONAL_EVENT_NAMES,
  eventDataComponentName,
  eventDataJsonSchema,
  eventDataSchemas,
  publishEventBody,
  type EventDataName,
} from '../src';

// The event data schemas are written once in zod; the JSON Schema served by
// GET /v1/event-types is generated from them. ajv (a validator that shares no
// code with zod) judges random data by the generated JSON Schema, and must
// agree with zod on every value: then the schema an integrator reads means
// what the API enforces.

const NAMES = Object.keys(eventDataSchemas) as EventDataName[];

/** ajv in strict mode: an unknown keyword in a generated schema is an error, not ignored. */
function compile(name: EventDataName) {
  const ajv = new Ajv2020({ strict: true, allErrors: true, formats: { 'date-time': true } });
  return ajv.compile(eventDataJsonSchema(name));
}


const VALID: Record<EventDataName, Record<string, unknown>> = {
  'extraction.document_completed': { extraction_id: 'ext_1', document_id: 'doc-1', parser_id: 'invoices', status: 'completed', file_name: 'a.pdf', result: { total: 1 } },
  'extraction.job_completed': { extraction_id: 'ext_1', parser_id: null, status: 'partial', document_count: 2, completed_count: 1, failed_count: 1 },
  'batch.completed': { extraction_id: 'ext_1', parser_id: null, status: 'completed', document_count: 1, completed_count: 1, failed_count: 0 },
  'batch.failed': { extraction_id: 'ext_1', parser_id: 'p', status: 'failed', document_count: 1, completed_count: 0, failed_count: 1 },
  'batch.partial': { extraction_id: 'ext_1', parser_id: 'p', status: 'partial', document_count: 2, completed_count: 1, failed_count: 1 },
  'quota.warning': { usage: 800, limit: 1000 },
  'quota.exceeded': { usage: 1001, limit: 1000, period: '2026-11' },
  'webhook.failing': { webhook_id: 'wh_1', url: 'https://example.com/h', failing_since: '2026-11-23T10:00:00.000Z', last_error: 'timeout', last_response_status: null },
  'webhook.disabled': { webhook_id: 'wh_1', url: 'https://example.com/h', reason: 'failing_too_long' },
  'delivery.exhausted': { delivery_id: 'dlv_1', webhook_id: 'wh_1', event_id: 'evt_1', event: 'quota.warning', attempt_count: 6, last_error: null, last_response_status: 500 },
};

const ODD_VALUES: unknown[] = [
  null, undefined, true, 0, -1, 1, 1.5, 100, 599, 600, 2 ** 53, -(2 ** 53), 1e308, '', 'x', 'completed', 'failed', 'partial', 'gone',
  'failing_too_long', 'quota.warning', 'webhook.failing', '2026-11-23T10:00:00Z', '2026-02-30T10:00:00Z', 'yesterday', [], ['a'], {}, { code: 'E', message: 'm' },
];

/** A variant of a valid value: one field changed, removed or added. */
function mutate(rng: ReturnType<typeof prng>, base: Record<string, unknown>): unknown {
  const data: Record<string, unknown> = { ...base };
  const keys = Object.keys(data);
  for (let i = 0, n = 1 + rng.int(2); i < n; i++) {
    const roll = rng.int(10);
    if (roll < 6) data[rng.pick(keys)] = rng.pick(ODD_VALUES);
    else if (roll < 8) delete data[rng.pick(keys)];
    else data[rng.pick(['extra', 'note', 'status', 'result', 'error'])] = rng.pick(ODD_VALUES);
  }
  // undefined is not JSON: what arrives over HTTP has no such field.
  return rng.int(20) === 0 ? rng.pick(ODD_VALUES) : JSON.parse(JSON.stringify(data));
}

describe('event data schemas', () => {
  it('cover every catalog event, the operational events among them', () => {
    expect(Object.keys(eventDataSchemas).sort()).toEqual([...EVENT_NAMES].sort());
    expect(OPERATIONAL_EVENT_NAMES.filter((name) => !(EVENT_NAMES as string[]).includes(name))).toEqual([]);
    expect(EVENT_TYPES.every((type) => type.name in eventDataSchemas)).toBe(true);
  });

  it.each(NAMES)('%s: generated as a JSON Schema 2020-12 that ajv compiles in strict mode, with a title and a description', (name) => {
    const schema = eventDataJsonSchema(name);
    expect(schema.$schema).toBe(JSON_SCHEMA_DIALECT);
    expect(schema).toEqual(expect.objectContaining({ title: `${name} data`, description: expect.any(String) }));
    expect(() => compile(name)).not.toThrow();
  });

  it.each(NAMES)('%s: its examples and the test value pass both zod and ajv', (name) => {
    const validate = compile(name);
    const examples = (eventDataJsonSchema(name).examples ?? []) as unknown[];
    expect(examples.length).toBeGreaterThan(0);
    for (const example of [...examples, VALID[name]]) {
      expect([example, eventDataSchemas[name].safeParse(example).success]).toEqual([example, true]);
      expect([example, validate(example), validate.errors]).toEqual([example, true, null]);
    }
  });

  it('the events Hookline writes itself allow no other field; quota.* allow any', () => {
    for (const name of NAMES) {
      const schema = eventDataJsonSchema(name);
      const branches = (schema.oneOf ?? [schema]) as Array<Record<string, unknown>>;
      for (const branch of branches) expect([name, branch.additionalProperties]).toEqual([name, name.startsWith('quota.') ? {} : false]);
    }
  });

  it('document_completed: completed carries result (an object or null), failed carries error (a string, an object or null)', () => {
    const schema = eventDataSchemas['extraction.document_completed'];
    const base = { extraction_id: 'e', document_id: 'd', parser_id: null, file_name: null };
    expect(schema.safeParse({ ...base, status: 'completed', result: null }).success).toBe(true);
    expect(schema.safeParse({ ...base, status: 'failed', error: 'unreadable' }).success).toBe(true);
    expect(schema.safeParse({ ...base, status: 'failed', error: { code: 'E1', message: 'm' } }).success).toBe(true);
    expect(schema.safeParse({ ...base, status: 'failed', error: null }).success).toBe(true);
    expect(schema.safeParse({ ...base, status: 'failed', error: 42 }).success).toBe(false);
    expect(schema.safeParse({ ...base, status: 'completed', result: 'text' }).success).toBe(false);
    expect(schema.safeParse({ ...base, status: 'completed', error: 'x', result: {} }).success).toBe(false);
    expect(schema.safeParse({ ...base, status: 'failed', result: {}, error: 'x' }).success).toBe(false);
  });

  it('batch.* each carry their own status; extraction.job_completed any terminal one', () => {
    const summary = VALID['extraction.job_completed'];
    for (const status of ['completed', 'failed', 'partial']) {
      expect(eventDataSchemas['extraction.job_completed'].safeParse({ ...summary, status }).success).toBe(true);
      for (const name of ['batch.completed', 'batch.failed', 'batch.partial'] as const) {
        expect([name, status, eventDataSchemas[name].safeParse({ ...summary, status }).success]).toEqual([name, status, name === `batch.${status}`]);
      }
    }
  });

  it('zod and ajv (on the generated JSON Schema) agree on 4,000 mutated values', () => {
    const rng = prng(Number(process.env.FUZZ_SEED ?? 20261130));
    const validators = Object.fromEntries(NAMES.map((name) => [name, compile(name)]));
    let accepted = 0;
    for (let i = 0; i < 4000; i++) {
      const name = rng.pick(NAMES);
      const data = mutate(rng, VALID[name]);
      const byZod = eventDataSchemas[name].safeParse(data).success;
      const byAjv = validators[name](data);
      expect({ name, data, byZod }).toEqual({ name, data, byZod: byAjv });
      if (byZod) accepted++;
    }
    // Both verdicts occur: the comparison is not a run of one answer.
    expect(accepted).toBeGreaterThan(200);
    expect(accepted).toBeLessThan(3800);
  });

  it('the component names of /openapi.json', () => {
    expect(eventDataComponentName('quota.warning')).toBe('QuotaWarningData');
    expect(eventDataComponentName('extraction.document_completed')).toBe('ExtractionDocumentCompletedData');
    expect(new Set(NAMES.map(eventDataComponentName)).size).toBe(NAMES.length);
  });
});

describe('publishEventBody checks data against the event\'s schema', () => {
  const body = (event: string, data?: unknown) => ({ account_id: 'acct_1', event, ...(data === undefined ? {} : { data }) });
  const paths = (input: unknown) => {
    const parsed = publishEventBody.safeParse(input);
    // An unknown field is reported on its object, with its name in `keys` (the API's details join them).
    return parsed.success ? [] : parsed.error.issues.map((issue) => [...issue.path, ...(issue.code === 'unrecognized_keys' ? issue.keys : [])].join('.'));
  };

  it('names the data.… path of each mismatch', () => {
    expect(paths(body('quota.warning', { usage: -1, limit: 10 }))).toEqual(['data.usage']);
    expect(paths(body('quota.warning', { usage: 1 }))).toEqual(['data.limit']);
    expect(paths(body('quota.exceeded', { usage: 1.5, limit: 0 }))).toEqual(['data.usage', 'data.limit']);
    expect(paths(body('quota.warning'))).toEqual(['data.usage', 'data.limit']);
    expect(paths(body('batch.failed', { ...VALID['batch.failed'], status: 'completed' }))).toEqual(['data.status']);
    expect(paths(body('extraction.document_completed', { ...VALID['extraction.document_completed'], surprise: 1 }))).toEqual(['data.surprise']);
  });

  it('accepts matching data, with the platform\'s own fields beside a quota\'s usage and limit', () => {
    const publishable = EVENT_NAMES.filter((name) => !(OPERATIONAL_EVENT_NAMES as readonly string[]).includes(name));
    for (const name of publishable) expect([name, paths(body(name, VALID[name]))]).toEqual([name, []]);
    expect(publishEventBody.parse(body('quota.warning', { usage: 1, limit: 2, period: '2026-11', plan: { name: 'pro' } })).data).toEqual({ usage: 1, limit: 2, period: '2026-11', plan: { name: 'pro' } });
  });

  it('refuses the operational events, whatever their data: Hookline alone writes them', () => {
    for (const name of OPERATIONAL_EVENT_NAMES) {
      const parsed = publishEventBody.safeParse(body(name, VALID[name]));
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([
        ['event', `${name} is sent by Hookline itself, about the account's own webhooks; it cannot be published`],
      ]);
    }
  });

  it('an unknown event or a non-object data fails on its own field, not on a data schema', () => {
    expect(paths(body('quota.nearly', { usage: 1, limit: 2 }))).toEqual(['event']);
    expect(paths(body('quota.warning', [1]))).toEqual(['data']);
  });
});
