import { deflateRawSync, inflateRawSync } from 'node:zlib';

// An event's payload is stored once, on its event row (never per delivery). With
// COMPACT_HISTORY on, a large one is stored compressed (zlib's raw deflate of
// its JSON text) in events.data_z, and events.data keeps only the keys that SQL
// reads from it: extraction_id, for ordered job callbacks (the expression index
// events_extraction_id_event_idx and the worker's statements that look an
// extraction's events up), or NULL when there is none. A small payload, or one
// that does not compress, stays whole in events.data, as every payload did
// before (and as COMPACT_HISTORY off writes them all).
//
// Readers take unpackPayload(data, data_z): data_z when set, else data; so rows
// of either shape are served the same.

/** JSON text from this size on is compressed (smaller ones gain little over JSONB's own layout). */
export const COMPRESS_FROM_BYTES = 512;
/** Kept compressed only when that saves at least this share. */
const MIN_SAVING = 0.125;

export type PackedPayload = {
  /** What goes in events.data: the whole payload, or only the keys SQL reads (null when none). */
  data: unknown;
  /** What goes in events.data_z: the compressed JSON text, or null. */
  dataZ: Buffer | null;
};

/** The keys of a payload that SQL reads from events.data; null when it has none. */
function sqlKeys(data: unknown): Record<string, unknown> | null {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return null;
  const extractionId = (data as Record<string, unknown>).extraction_id;
  return extractionId === undefined ? null : { extraction_id: extractionId };
}

export function packPayload(data: unknown, compact: boolean): PackedPayload {
  if (!compact) return { data, dataZ: null };
  const text = JSON.stringify(data);
  const bytes = Buffer.byteLength(text);
  // \u0000 stays on the JSONB path, which refuses it (as it always did).
  if (bytes < COMPRESS_FROM_BYTES || text.includes('\\u0000')) return { data, dataZ: null };
  const dataZ = deflateRawSync(text);
  if (dataZ.length > bytes * (1 - MIN_SAVING)) return { data, dataZ: null };
  return { data: sqlKeys(data), dataZ };
}

/** The payload of an event row of either shape (data_z as pg and PGlite return bytea). */
export function unpackPayload(data: unknown, dataZ: Uint8Array | null | undefined): unknown {
  if (dataZ === null || dataZ === undefined) return data;
  return JSON.parse(inflateRawSync(dataZ).toString('utf8'));
}
