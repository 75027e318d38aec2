/**
 * A minimal OTLP/HTTP trace receiver for tests: accepts `POST /v1/traces` with
 * `application/x-protobuf` bodies (gzip or plain) and decodes ExportTraceServiceRequest with a
 * small protobuf wire-format reader covering the fields the tests look at (field numbers from
 * opentelemetry-proto trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type AttrValue = string | number | boolean | null;

export interface ReceivedEvent {
  name: string;
  attributes: Record<string, AttrValue>;
}

export interface ReceivedSpan {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client, 4 producer, 5 consumer (SpanKind enum of the proto). */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttrValue>;
  events: ReceivedEvent[];
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
}

export const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

type Field = { no: number; wire: number; varint?: bigint; bytes?: Uint8Array; fixed64?: Buffer };

/** Splits one message into its fields (varint, 64-bit, length-delimited, 32-bit). */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, varint: varint() });
    else if (wire === 1) {
      out.push({ no, wire, fixed64: Buffer.from(buf.subarray(pos, pos + 8)) });
      pos += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, bytes: buf.subarray(pos, pos + len) });
      pos += len;
    } else if (wire === 5) pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');
const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('hex');

function anyValue(buf: Uint8Array): AttrValue {
  for (const f of fields(buf)) {
    if (f.no === 1) return text(f.bytes);
    if (f.no === 2) return f.varint !== 0n;
    if (f.no === 3) return Number(BigInt.asIntN(64, f.varint ?? 0n));
    if (f.no === 4) return f.fixed64!.readDoubleLE(0);
  }
  return null;
}

function keyValues(list: Field[], no: number): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const f of list.filter((x) => x.no === no)) {
    const kv = fields(f.bytes!);
    const key = text(kv.find((x) => x.no === 1)?.bytes);
    const value = kv.find((x) => x.no === 2);
    out[key] = value ? anyValue(value.bytes!) : null;
  }
  return out;
}

/** Decodes an ExportTraceServiceRequest into flat spans. */
export function decodeTraces(body: Uint8Array): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of fields(body).filter((f) => f.no === 1)) {
    const rsf = fields(rs.bytes!);
    const resource = rsf.find((f) => f.no === 1);
    const resAttrs = resource ? keyValues(fields(resource.bytes!), 1) : {};
    const service = String(resAttrs['service.name'] ?? '');
    for (const ss of rsf.filter((f) => f.no === 2)) {
      const ssf = fields(ss.bytes!);
      const scopeField = ssf.find((f) => f.no === 1);
      const scope = scopeField ? text(fields(scopeField.bytes!).find((f) => f.no === 1)?.bytes) : '';
      for (const sp of ssf.filter((f) => f.no === 2)) {
        const s = fields(sp.bytes!);
        const one = (no: number) => s.find((f) => f.no === no);
        const status = one(15);
        spans.push({
          service,
          scope,
          traceId: hex(one(1)?.bytes),
          spanId: hex(one(2)?.bytes),
          parentSpanId: hex(one(4)?.bytes),
          name: text(one(5)?.bytes),
          kind: Number(one(6)?.varint ?? 0n),
          startNs: one(7)?.fixed64?.readBigUInt64LE(0) ?? 0n,
          endNs: one(8)?.fixed64?.readBigUInt64LE(0) ?? 0n,
          attributes: keyValues(s, 9),
          events: s
            .filter((f) => f.no === 11)
            .map((e) => {
              const ef = fields(e.bytes!);
              return { name: text(ef.find((f) => f.no === 2)?.bytes), attributes: keyValues(ef, 3) };
            }),
          statusCode: status ? Number(fields(status.bytes!).find((f) => f.no === 3)?.varint ?? 0n) : 0,
        });
      }
    }
  }
  return spans;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  /** Export requests received (also counts ones that failed to decode). */
  requests: number;
  errors: string[];
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 at `port` (random when 0). */
export async function startOtlpReceiver(port = 0): Promise<OtlpReceiver> {
  const state: Omit<OtlpReceiver, 'url' | 'close'> = { spans: [], requests: 0, errors: [] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests++;
      try {
        if (req.method !== 'POST' || req.url !== '/v1/traces') throw new Error(`unexpected ${req.method} ${req.url}`);
        if (!String(req.headers['content-type']).startsWith('application/x-protobuf'))
          throw new Error(`content-type ${req.headers['content-type']}`);
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        state.spans.push(...decodeTraces(body));
        // An empty ExportTraceServiceResponse: full success.
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch (err) {
        state.errors.push(String(err));
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
