/**
 * OTel configured by the standard variables only, against a real Jaeger: the built sandbox
 * gateway (the smallest service: no NATS, no database) exports with each
 * OTEL_EXPORTER_OTLP_PROTOCOL — http/protobuf and http/json through a recording pass-through to
 * Jaeger's OTLP/HTTP port (so the test sees which encoding went over the wire), grpc straight to
 * its OTLP/gRPC port — and the span of one charge is then read back from Jaeger's query API.
 * OTEL_TRACES_EXPORTER=console prints spans without any endpoint; =none exports nothing even with one.
 */
import { randomUUID } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@orderflow/kit/testing';
import { startGatewayChild, type Child } from './helpers.js';
import { TestJaeger } from './jaeger.js';
import { KIND } from './otlp-receiver.js';
import { TOOL_BUILD_TIMEOUT_MS } from '../support/tools.js';

/** Forwards every request to `target` unchanged, remembering each one's content type. */
async function recordingProxy(target: string): Promise<{ url: string; contentTypes: string[]; close(): Promise<void> }> {
  const contentTypes: string[] = [];
  const to = new URL(target);
  const server: Server = createServer((req, res) => {
    contentTypes.push(String(req.headers['content-type'] ?? ''));
    const up = request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', (err) => res.writeHead(502).end(String(err)));
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    contentTypes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One charge at the gateway; returns the trace id its `sandbox.captured` log line carries (if any). */
async function charge(gw: Child): Promise<{ orderId: string; traceId: string | undefined }> {
  const orderId = randomUUID();
  const r = await fetch(`${gw.url}/charges`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': orderId },
    body: JSON.stringify({ orderId, amount: 12.5, currency: 'EUR' }),
  });
  expect(r.status).toBe(201);
  const line = await waitFor(
    'sandbox.captured log line',
    () => gw.logs().find((l) => l.msg === 'sandbox.captured' && l.orderId === orderId),
    10_000,
  );
  return { orderId, traceId: typeof line.trace_id === 'string' ? line.trace_id : undefined };
}

const startGateway = (env: Record<string, string>) => startGatewayChild({ LOG_LEVEL: 'info', OTEL_BSP_SCHEDULE_DELAY: '100', ...env });

describe('OTLP export chosen by OTEL_EXPORTER_OTLP_PROTOCOL and OTEL_TRACES_EXPORTER, into a real Jaeger', () => {
  let jaeger: TestJaeger;
  const children: Child[] = [];
  const run = Math.random().toString(36).slice(2, 8);

  beforeAll(async () => {
    jaeger = await TestJaeger.start();
  }, TOOL_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(children.map((c) => c.stop()));
    await jaeger?.stop();
  });

  /** Runs a gateway exporting with `protocol` to `endpoint`; the charge's server span must reach Jaeger. */
  async function exportsWith(protocol: string, endpoint: string): Promise<void> {
    const service = `gw-${protocol.replace('/', '-')}-${run}`;
    const gw = await startGateway({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_SERVICE_NAME: service,
    });
    children.push(gw);
    const { traceId } = await charge(gw);
    expect(traceId, 'trace id on the log line').toMatch(/^[0-9a-f]{32}$/);
    const spans = await waitFor(`${service} span in Jaeger`, async () => {
      const t = await jaeger.trace(traceId!);
      return t.length > 0 ? t : undefined;
    });
    const server = spans.find((s) => s.kind === KIND.SERVER && s.attributes['url.path'] === '/charges');
    expect(server, JSON.stringify(spans.map((s) => [s.service, s.name, s.kind]))).toBeDefined();
    expect(server!.service).toBe(service);
    expect(server!.attributes['http.request.method']).toBe('POST');
    expect(server!.attributes['http.response.status_code']).toBe(201);
    expect(await jaeger.services()).toContain(service);
    await gw.stop();
  }

  it('http/protobuf (the default) posts protobuf to /v1/traces', async () => {
    const proxy = await recordingProxy(jaeger.otlpHttpUrl);
    try {
      await exportsWith('http/protobuf', proxy.url);
      expect(new Set(proxy.contentTypes)).toEqual(new Set(['application/x-protobuf']));
    } finally {
      await proxy.close();
    }
  });

  it('http/json posts OTLP/JSON, which Jaeger decodes alike', async () => {
    const proxy = await recordingProxy(jaeger.otlpHttpUrl);
    try {
      await exportsWith('http/json', proxy.url);
      expect(new Set(proxy.contentTypes)).toEqual(new Set(['application/json']));
    } finally {
      await proxy.close();
    }
  });

  it('grpc exports to the OTLP/gRPC port', async () => {
    await exportsWith('grpc', jaeger.otlpGrpcUrl);
  });

  it('OTEL_TRACES_EXPORTER=console prints spans to stdout with no endpoint at all', async () => {
    const gw = await startGateway({ OTEL_TRACES_EXPORTER: 'console', OTEL_SERVICE_NAME: `gw-console-${run}` });
    children.push(gw);
    const { traceId } = await charge(gw);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    // ConsoleSpanExporter writes each ended span with console.dir (not JSON): look for its trace id.
    await waitFor('console exporter output', () => gw.stdout.some((l) => l.includes(`traceId: '${traceId}'`)), 10_000);
    await gw.stop();
  });

  it('OTEL_TRACES_EXPORTER=none turns tracing off even with an endpoint', async () => {
    const service = `gw-none-${run}`;
    const gw = await startGateway({
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpHttpUrl,
      OTEL_SERVICE_NAME: service,
    });
    children.push(gw);
    const { traceId } = await charge(gw);
    // No SDK: no span is active while the request is handled, so the log line has no trace id.
    expect(traceId).toBeUndefined();
    await gw.stop();
    // Stopped, so anything it had buffered was flushed by now; Jaeger never heard of it.
    expect(await jaeger.services()).not.toContain(service);
  });
});
