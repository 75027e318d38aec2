import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { extractTraceContext, inSpan, tracingActive } from '../tracing/propagation.js';

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
 * `traceparent`. Without a registered SDK or propagator it does nothing.
 */
export function httpServerSpans(): MiddlewareHandler {
  return async (c, next) => {
    // Without tracing (no SDK, no propagator) the span, the URL parse and the route lookup are
    // pure cost on every request.
    if (UNTRACED_PATHS.has(c.req.path) || !tracingActive()) return next();
    const method = c.req.method;
    const active = trace.getActiveSpan();
    if (active?.isRecording()) {
      await next();
      finish(active, method, routeOf(c), c.res.status);
      return;
    }
    const parent = extractTraceContext({ traceparent: c.req.header('traceparent') ?? '', tracestate: c.req.header('tracestate') ?? '' });
    const url = new URL(c.req.url);
    await inSpan(
      method,
      {
        kind: SpanKind.SERVER,
        parent,
        attributes: { 'http.request.method': method, 'url.path': url.pathname, 'url.scheme': url.protocol.replace(':', '') },
      },
      async (span) => {
        await next();
        finish(span, method, routeOf(c), c.res.status);
      },
    );
  };
}
