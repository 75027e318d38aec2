import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { tracer } from '../tracing/propagation.js';

/** Probes and scrapes: no spans (the http instrumentation ignores the same paths). */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics']);

/** The route template that answered (`/orders/:id`), or undefined for a 404. */
function routeOf(c: Parameters<MiddlewareHandler>[0]): string | undefined {
  const endpoints = matchedRoutes(c).filter((r) => r.method !== 'ALL');
  return endpoints.at(-1)?.path;
}

function finish(span: Span, method: string, route: string | undefined, status: number): void {
  if (route) {
    span.setAttribute('http.route', route);
    span.updateName(`${method} ${route}`);
  }
  span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
}

/**
 * HTTP server spans named `<METHOD> <route>`. When the http instrumentation (started by
 * `@orderflow/kit/otel`) already opened the SERVER span for this request, the middleware only
 * gives it the route; otherwise it opens the SERVER span itself, parented on an incoming
 * `traceparent`. Without a registered SDK both paths are no-ops.
 */
export function httpServerSpans(): MiddlewareHandler {
  return async (c, next) => {
    if (UNTRACED_PATHS.has(c.req.path)) return next();
    const method = c.req.method;
    const active = trace.getActiveSpan();
    if (active?.isRecording()) {
      await next();
      finish(active, method, routeOf(c), c.res.status);
      return;
    }
    const carrier: Record<string, string> = {};
    for (const k of ['traceparent', 'tracestate']) {
      const v = c.req.header(k);
      if (v) carrier[k] = v;
    }
    const parent = propagation.extract(context.active(), carrier);
    const url = new URL(c.req.url);
    const span = tracer().startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': method, 'url.path': url.pathname, 'url.scheme': url.protocol.replace(':', '') },
      },
      parent,
    );
    if (!span.isRecording()) return next();
    try {
      await context.with(trace.setSpan(parent, span), next);
      finish(span, method, routeOf(c), c.res.status);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  };
}
