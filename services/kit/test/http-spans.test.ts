/**
 * httpServerSpans: with no tracer provider and no propagator (tracing off, the default) it does
 * nothing per request; once an SDK is registered, a request gets its SERVER span named after the
 * route, parented on an incoming traceparent.
 */
import { expect, test } from 'vitest';
import { Hono } from 'hono';
import { node, tracing } from '@opentelemetry/sdk-node';
import { SpanKind } from '@opentelemetry/api';
import { httpServerSpans } from '../src/http/tracing.js';
import { tracingActive } from '../src/tracing/propagation.js';

const exporter = new tracing.InMemorySpanExporter();
const app = new Hono();
app.use('*', httpServerSpans());
app.post('/orders/:id', (c) => c.json({ ok: true }, 202));
const post = (headers: Record<string, string> = {}) => app.request('/orders/o-1', { method: 'POST', headers });

test('tracing off: requests are served and nothing is traced', async () => {
  expect(tracingActive()).toBe(false);
  expect((await post()).status).toBe(202);
  expect(exporter.getFinishedSpans()).toHaveLength(0);
});

test('tracing on: a SERVER span named after the route, child of the incoming traceparent', async () => {
  // Registers the context manager and the W3C propagator, like the NodeSDK does.
  new node.NodeTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] }).register();
  expect(tracingActive()).toBe(true);
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  expect((await post({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` })).status).toBe(202);
  const [span] = exporter.getFinishedSpans();
  expect(span).toBeDefined();
  expect(span!.name).toBe('POST /orders/:id');
  expect(span!.kind).toBe(SpanKind.SERVER);
  expect(span!.spanContext().traceId).toBe(traceId);
  expect(span!.attributes['http.route']).toBe('/orders/:id');
  expect(span!.attributes['http.response.status_code']).toBe(202);
});
