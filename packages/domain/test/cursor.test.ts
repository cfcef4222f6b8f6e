import { decodeCursor, encodeCursor } from '../src/cursor';
import { newId } from '../src/ids';

describe('cursor', () => {
  it('round-trips (created_at, id) and is opaque URL-safe text', () => {
    const row = { createdAt: new Date('2026-11-23T10:00:00.123Z'), id: newId('webhook') };
    const text = encodeCursor(row);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(text).not.toContain(row.id);
    expect(decodeCursor(text)).toEqual(row);
  });

  it('keeps millisecond precision', () => {
    const row = { createdAt: new Date(1_700_000_000_001), id: 'dlv_abc' };
    expect(decodeCursor(encodeCursor(row))?.createdAt.getTime()).toBe(1_700_000_000_001);
  });

  const enc = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
  it.each([
    ['empty', ''],
    ['not base64 of a cursor', 'garbage!!'],
    ['no id', enc('2026-11-23T10:00:00.000Z')],
    ['no time', enc('|wh_abc')],
    ['extra part', enc('2026-11-23T10:00:00.000Z|wh_abc|x')],
    ['id without prefix', enc('2026-11-23T10:00:00.000Z|abc')],
    ['id with SQL', enc("2026-11-23T10:00:00.000Z|wh_a' OR 1=1")],
    ['time not ISO', enc('yesterday|wh_abc')],
    ['time not canonical', enc('2026-11-23T10:00:00Z|wh_abc')],
    ['invalid date', enc('2026-13-45T10:00:00.000Z|wh_abc')],
  ])('%s → null', (_label, text) => {
    expect(decodeCursor(text)).toBeNull();
  });
});
