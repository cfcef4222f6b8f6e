import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitUntil } from './wait-until';

// A real OTLP/HTTP trace receiver on 127.0.0.1: it answers POST /v1/traces
// with 200 and keeps what came, decoded from either encoding the exporters
// speak. http/json bodies are plain JSON (ids as hex strings); http/protobuf
// bodies are read with the small wire-format reader below, which knows the
// few fields of opentelemetry-proto's trace.proto the tests look at (field
// numbers from opentelemetry/proto/trace/v1/trace.proto and common/v1/common.proto).

export type AttrValue = string | number | boolean;
export type ReceivedSpan = {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, AttrValue>;
  links: { traceId: string; spanId: string }[];
  /** Every string value in the span's events (exceptions), for the secret search. */
  eventStrings: string[];
};
export type OtlpRequest = { path: string; contentType: string; body: Buffer };

export type OtlpReceiver = {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  requests: OtlpRequest[];
  spans(): ReceivedSpan[];
  /** Resolves once `predicate` holds over the spans received (polls). */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
};

export async function startOtlpReceiver(port = 0): Promise<OtlpReceiver> {
  const requests: OtlpRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
      const json = (req.headers['content-type'] ?? '').includes('json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : undefined);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const spans = () => requests.filter((r) => r.path === '/v1/traces').flatMap(decode);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    spans,
    waitFor(predicate, timeoutMs = 20_000) {
      return waitUntil(() => {
        const now = spans();
        // Thrown, the spans seen so far are part of waitUntil's message.
        if (!predicate(now)) throw new Error(`spans: ${now.map((s) => `${s.service}:${s.name}`).join(', ')}`);
        return now;
      }, 'OTLP receiver: condition met', { timeoutMs, intervalMs: 100 });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function decode(req: OtlpRequest): ReceivedSpan[] {
  return req.contentType.includes('json') ? decodeJson(JSON.parse(req.body.toString('utf8'))) : decodeProto(req.body);
}

// ── http/json ───────────────────────────────────────────────────────────────

type JsonKv = { key: string; value: Record<string, unknown> };
const jsonValue = (v: Record<string, unknown>): AttrValue => {
  if ('stringValue' in v) return String(v.stringValue);
  if ('boolValue' in v) return Boolean(v.boolValue);
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  return JSON.stringify(v);
};
const jsonAttrs = (kvs: JsonKv[] = []) => Object.fromEntries(kvs.map((kv) => [kv.key, jsonValue(kv.value ?? {})]));

function decodeJson(body: { resourceSpans?: { resource?: { attributes?: JsonKv[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[] }): ReceivedSpan[] {
  return (body.resourceSpans ?? []).flatMap((rs) => {
    const service = String(jsonAttrs(rs.resource?.attributes)['service.name'] ?? '');
    return (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []).map((s): ReceivedSpan => ({
      service,
      traceId: String(s.traceId),
      spanId: String(s.spanId),
      parentSpanId: typeof s.parentSpanId === 'string' ? s.parentSpanId : '',
      name: String(s.name),
      kind: Number(s.kind),
      attributes: jsonAttrs(s.attributes as JsonKv[]),
      links: ((s.links ?? []) as { traceId: string; spanId: string }[]).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
      eventStrings: ((s.events ?? []) as { name: string; attributes?: JsonKv[] }[]).flatMap((e) => [e.name, ...Object.values(jsonAttrs(e.attributes)).map(String)]),
    })));
  });
}

// ── http/protobuf ───────────────────────────────────────────────────────────

type Field = { no: number; wire: number; varint?: bigint; bytes?: Buffer; fixed?: Buffer };

/** The fields of one protobuf message, in order (wire types 0, 1, 2, 5). */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buf[pos++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, varint: varint() });
    else if (wire === 1) { out.push({ no, wire, fixed: buf.subarray(pos, pos + 8) }); pos += 8; }
    else if (wire === 5) { out.push({ no, wire, fixed: buf.subarray(pos, pos + 4) }); pos += 4; }
    else if (wire === 2) { const len = Number(varint()); out.push({ no, wire, bytes: buf.subarray(pos, pos + len) }); pos += len; }
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
  return out;
}
const all = (fs: Field[], no: number) => fs.filter((f) => f.no === no);
const one = (fs: Field[], no: number) => fs.find((f) => f.no === no);
const text = (f?: Field) => f?.bytes?.toString('utf8') ?? '';
const hex = (f?: Field) => f?.bytes?.toString('hex') ?? '';

/** AnyValue: string 1, bool 2, int 3, double 4. */
function protoValue(buf: Buffer): AttrValue {
  const f = fields(buf)[0];
  if (!f) return '';
  if (f.no === 1) return text(f);
  if (f.no === 2) return f.varint === 1n;
  if (f.no === 3) return Number(BigInt.asIntN(64, f.varint ?? 0n));
  if (f.no === 4) return f.fixed!.readDoubleLE(0);
  return `<field ${f.no}>`;
}
/** KeyValue: key 1, value 2. */
const protoAttrs = (kvs: Field[]) =>
  Object.fromEntries(kvs.map((kv) => { const f = fields(kv.bytes!); return [text(one(f, 1)), protoValue(one(f, 2)?.bytes ?? Buffer.alloc(0))]; }));

function decodeProto(body: Buffer): ReceivedSpan[] {
  // ExportTraceServiceRequest.resource_spans 1 → ResourceSpans{resource 1 {attributes 1}, scope_spans 2 {scope 1, spans 2}}
  return all(fields(body), 1).flatMap((rsField) => {
    const rs = fields(rsField.bytes!);
    const resource = fields(one(rs, 1)?.bytes ?? Buffer.alloc(0));
    const service = String(protoAttrs(all(resource, 1))['service.name'] ?? '');
    return all(rs, 2).flatMap((ssField) => all(fields(ssField.bytes!), 2).map((spanField): ReceivedSpan => {
      // Span: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, attributes 9, events 11, links 13.
      const s = fields(spanField.bytes!);
      return {
        service,
        traceId: hex(one(s, 1)),
        spanId: hex(one(s, 2)),
        parentSpanId: hex(one(s, 4)),
        name: text(one(s, 5)),
        kind: Number(one(s, 6)?.varint ?? 0n),
        attributes: protoAttrs(all(s, 9)),
        // Link: trace_id 1, span_id 2.
        links: all(s, 13).map((l) => { const lf = fields(l.bytes!); return { traceId: hex(one(lf, 1)), spanId: hex(one(lf, 2)) }; }),
        // Event: name 2, attributes 3.
        eventStrings: all(s, 11).flatMap((e) => { const ef = fields(e.bytes!); return [text(one(ef, 2)), ...Object.values(protoAttrs(all(ef, 3))).map(String)]; }),
      };
    }));
  });
}
