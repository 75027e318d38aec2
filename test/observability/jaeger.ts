/**
 * A real Jaeger (v2, built by scripts/tools.sh) for tests: monitoring/jaeger.yaml with every
 * listener moved to a spare loopback port, in-memory storage. Spans are read back through Jaeger's
 * query API (api/v3, OTLP JSON), flattened into the same shape the in-process receiver produced.
 */
import { freePort, launchProcess, portOpen, type LaunchedProcess } from '@orderflow/kit/testing';
import { ROOT } from './helpers.js';
import type { AttrValue, ReceivedSpan } from './otlp-receiver.js';
import { builtTool } from '../support/tools.js';

interface OtlpAnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: OtlpKeyValue[];
  events?: Array<{ name: string; attributes?: OtlpKeyValue[] }>;
  status?: { code?: number };
}
interface OtlpTraces {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: Array<{ scope?: { name?: string }; spans?: OtlpSpan[] }>;
  }>;
}

function value(v: OtlpAnyValue | undefined): AttrValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return null;
}

const attrs = (list: OtlpKeyValue[] | undefined): Record<string, AttrValue> =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, value(kv.value)]));

/** OTLP JSON (as api/v3 returns it) → flat spans. IDs are hex in Jaeger's JSON. */
export function flattenOtlpJson(traces: OtlpTraces): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of traces.resourceSpans ?? []) {
    const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          service,
          scope: ss.scope?.name ?? '',
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind ?? 0,
          startNs: BigInt(s.startTimeUnixNano ?? 0),
          endNs: BigInt(s.endTimeUnixNano ?? 0),
          attributes: attrs(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
          statusCode: s.status?.code ?? 0,
        });
      }
    }
  }
  return out;
}

export class TestJaeger {
  #proc: LaunchedProcess | undefined;

  private constructor(readonly ports: { otlpGrpc: number; otlpHttp: number; queryHttp: number; queryGrpc: number }) {}

  /** OTLP/HTTP base URL (the SDK appends /v1/traces). */
  get otlpHttpUrl(): string {
    return `http://127.0.0.1:${this.ports.otlpHttp}`;
  }
  /** OTLP/gRPC endpoint. */
  get otlpGrpcUrl(): string {
    return `http://127.0.0.1:${this.ports.otlpGrpc}`;
  }
  /** Query API and UI base URL (what JAEGER_UI_URL points at). */
  get queryUrl(): string {
    return `http://127.0.0.1:${this.ports.queryHttp}`;
  }

  static async start(): Promise<TestJaeger> {
    const bin = builtTool('jaeger');
    const j = new TestJaeger({
      otlpGrpc: await freePort(),
      otlpHttp: await freePort(),
      queryHttp: await freePort(),
      queryGrpc: await freePort(),
    });
    const hostPort = (p: number) => `127.0.0.1:${p}`;
    j.#proc = await launchProcess({
      name: 'jaeger',
      command: bin,
      args: ['--config', `${ROOT}monitoring/jaeger.yaml`],
      cwd: ROOT,
      inheritEnv: false,
      env: {
        PATH: process.env.PATH ?? '',
        JAEGER_LOG_LEVEL: 'warn',
        JAEGER_OTLP_GRPC_ENDPOINT: hostPort(j.ports.otlpGrpc),
        JAEGER_OTLP_HTTP_ENDPOINT: hostPort(j.ports.otlpHttp),
        JAEGER_QUERY_HTTP_ENDPOINT: hostPort(j.ports.queryHttp),
        JAEGER_QUERY_GRPC_ENDPOINT: hostPort(j.ports.queryGrpc),
      },
      ready: async () =>
        (await portOpen(j.ports.otlpGrpc)) && (await portOpen(j.ports.otlpHttp)) && (await fetch(`${j.queryUrl}/api/v3/services`)).ok,
      readyTimeoutMs: 30_000,
    });
    return j;
  }

  async #get<T>(path: string): Promise<T | undefined> {
    const r = await fetch(`${this.queryUrl}${path}`);
    if (r.status === 404) return undefined;
    if (!r.ok) throw new Error(`jaeger ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  }

  async services(): Promise<string[]> {
    return (await this.#get<{ services?: string[] }>('/api/v3/services'))?.services ?? [];
  }

  /** Every span Jaeger holds for one trace (none when it has not seen the trace). */
  async trace(traceId: string): Promise<ReceivedSpan[]> {
    const body = await this.#get<{ result?: OtlpTraces }>(`/api/v3/traces/${traceId}`);
    return body?.result ? flattenOtlpJson(body.result) : [];
  }

  /** Spans of the service's traces that started in the last hour (newest traces first, at most `limit`). */
  async findTraces(service: string, limit = 20): Promise<ReceivedSpan[]> {
    const now = Date.now();
    const q = new URLSearchParams({
      'query.service_name': service,
      'query.start_time_min': new Date(now - 3_600_000).toISOString(),
      'query.start_time_max': new Date(now + 60_000).toISOString(),
      'query.num_traces': String(limit),
    });
    const body = await this.#get<{ result?: OtlpTraces }>(`/api/v3/traces?${q}`);
    return body?.result ? flattenOtlpJson(body.result) : [];
  }

  /** What Jaeger said (stdout and stderr), the tail. */
  output(): string {
    return this.#proc?.output() ?? '';
  }

  /** SIGTERM, then wait for the exit. Idempotent. */
  async stop(): Promise<void> {
    await this.#proc?.stop();
  }
}
