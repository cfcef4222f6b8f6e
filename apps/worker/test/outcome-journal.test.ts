import { parseOutcome } from '../src/outcome-journal';

// The outcome journal's entries are read back from Redis: anything not of an
// entry's shape is ignored (the job then runs as usual), never trusted.

const entry = { attemptId: 'attempt_x', attemptCount: 2, result: { ok: true, status: 200, body: 'ok', error: null, durationMs: 10, retryAfterMs: null } };

it('reads back what was kept', () => {
  expect(parseOutcome(JSON.stringify(entry))).toEqual(entry);
  // Fields an older entry lacks come back as their empty values.
  expect(parseOutcome(JSON.stringify({ ...entry, result: { ok: false, durationMs: 3 } }))).toEqual({
    ...entry, result: { ok: false, status: null, body: null, error: null, durationMs: 3, retryAfterMs: null },
  });
});

it.each([
  ['nothing', null],
  ['not JSON', '{"attemptId":'],
  ['a number', '42'],
  ['no attempt id', JSON.stringify({ ...entry, attemptId: 7 })],
  ['a count that is not whole', JSON.stringify({ ...entry, attemptCount: 1.5 })],
  ['no result', JSON.stringify({ attemptId: 'a', attemptCount: 0 })],
  ['a result without ok', JSON.stringify({ ...entry, result: { status: 200, durationMs: 1 } })],
  ['a result without duration', JSON.stringify({ ...entry, result: { ok: true } })],
])('ignores %s', (_what, text) => {
  expect(parseOutcome(text)).toBeNull();
});
