import {
  context,
  propagation,
  ProxyTracerProvider,
  trace,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Context,
  type Span,
} from '@opentelemetry/api';
import type { MsgHdrs } from '@nats-io/nats-core';

export const tracer = () => trace.getTracer('orderflow');

/** What an unregistered global provider delegates to (the API's no-op provider). */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Whether spans or trace context can mean anything in this process: a tracer provider is
 * registered (an SDK started) or a propagator is (trace context passed through). Without either
 * every span is a no-op and extract/inject do nothing, so per-request work can be skipped.
 */
export function tracingActive(): boolean {
  const provider = trace.getTracerProvider();
  const registered = !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
  return registered || propagation.fields().length > 0;
}

/** Writes the active (or given) trace context as W3C headers into a plain carrier. */
export function injectTraceHeaders(carrier: Record<string, string>, ctx: Context = context.active()): Record<string, string> {
  propagation.inject(ctx, carrier);
  return carrier;
}

/** Reads W3C trace context from NATS headers (or a plain record). */
export function extractTraceContext(headers: MsgHdrs | Record<string, string> | undefined): Context {
  const carrier: Record<string, string> = {};
  if (headers && typeof (headers as MsgHdrs).get === 'function') {
    for (const k of ['traceparent', 'tracestate']) {
      const v = (headers as MsgHdrs).get(k);
      if (v) carrier[k] = v;
    }
  } else if (headers) {
    Object.assign(carrier, headers);
  }
  return propagation.extract(context.active(), carrier);
}

/** Runs fn in a span that ends when fn settles; failures are recorded on the span. */
export async function inSpan<T>(
  name: string,
  opts: { kind?: SpanKind; attributes?: Record<string, string | number | boolean>; parent?: Context },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  const span = tracer().startSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes: opts.attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

export { SpanKind };

/**
 * The trace id of the active span, for exemplars and log lines; undefined without one (tracing
 * off) or when the span is not sampled (Jaeger would not have the trace to link to).
 */
export function activeTraceId(): string | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && trace.isSpanContextValid(ctx) && (ctx.traceFlags & TraceFlags.SAMPLED) !== 0 ? ctx.traceId : undefined;
}
