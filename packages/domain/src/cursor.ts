// Opaque keyset cursors over (created_at, id), newest first: stable while rows are inserted.
export type Cursor = { createdAt: Date; id: string };

export function encodeCursor(row: Cursor): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`, 'utf8').toString('base64url');
}

/** null when the text is not a cursor this service issued. */
export function decodeCursor(text: string): Cursor | null {
  const raw = Buffer.from(text, 'base64url').toString('utf8');
  const [time, id, extra] = raw.split('|');
  if (!time || !id || extra !== undefined || !/^[a-z]+_[0-9A-Za-z]+$/.test(id)) return null;
  const createdAt = new Date(time);
  if (Number.isNaN(createdAt.getTime()) || createdAt.toISOString() !== time) return null;
  return { createdAt, id };
}
