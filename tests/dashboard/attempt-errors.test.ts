import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { attemptSchema, deliveryExhaustedData, SEND_ERROR_CODES, webhookFailingData } from '@hookline/domain';
import { ATTEMPT_ERRORS, describeError } from '../../apps/api/src/dashboard/webhook-views';

// The send error codes are written once (packages/domain/src/send-errors.ts);
// the dashboard's words and the API's descriptions follow them.

it('every code the sender records has the dashboard\'s words, and every label is for such a code', () => {
  expect(SEND_ERROR_CODES.filter((code) => !ATTEMPT_ERRORS[code])).toEqual([]);
  expect(Object.keys(ATTEMPT_ERRORS).sort()).toEqual([...SEND_ERROR_CODES].sort());
  for (const code of SEND_ERROR_CODES) expect(describeError(code)).toBe(ATTEMPT_ERRORS[code]);
});

it('a code it has no words for (a stored row\'s, from another version) still reads as words', () => {
  expect(describeError('connection_aborted')).toBe('connection aborted');
});

it.each([
  ['Attempt.error', attemptSchema.shape.error],
  ['webhook.failing last_error', webhookFailingData.shape.last_error],
  ['delivery.exhausted last_error', deliveryExhaustedData.shape.last_error],
] as const)('%s names every code', (_name, field) => {
  const { description } = z.toJSONSchema(field) as { description?: string };
  expect(SEND_ERROR_CODES.filter((code) => !description?.includes(code))).toEqual([]);
});

it('docs/api.md names every code', () => {
  const doc = readFileSync(resolve(__dirname, '../../docs/api.md'), 'utf8');
  expect(SEND_ERROR_CODES.filter((code) => !doc.includes(`\`${code}\``))).toEqual([]);
});
