import type { Context, ErrorHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { isRetryLater, unavailableDependency, type Dependency } from '../faults/classify.js';
import { HttpProblem, problem } from './problem.js';

export interface ErrorHandlerOptions {
  log: Logger;
  /** Retry-After (seconds) on a 503 for a dependency that is away. */
  retryAfterSeconds: number;
}

/** 503 problem+json with Retry-After: the request may well succeed when tried again. */
export function unavailable(c: Context, dependency: Dependency, detail: string, retryAfterSeconds: number): Response {
  c.header('Retry-After', String(Math.max(1, Math.round(retryAfterSeconds))));
  return problem(c, 503, detail, { type: 'https://orderflow.dev/problems/dependency-unavailable', dependency });
}

/**
 * The one error handler of every service app (`app.onError`): a thrown HttpProblem answers as
 * itself; a database or NATS that is away, or a database attempt that timed out or lost a lock
 * race, is 503 with Retry-After (the client should retry; nothing was half-done, since the
 * write and its events commit together or not at all); anything else is our bug, a 500.
 */
export function errorHandler(o: ErrorHandlerOptions): ErrorHandler {
  return (err, c) => {
    if (err instanceof HttpProblem) {
      for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
      return problem(c, err.status, err.message, err.extra);
    }
    const dependency = unavailableDependency(err);
    if (dependency) {
      o.log.warn({ dependency, method: c.req.method, path: c.req.path, err: err.message }, 'http.dependency_unavailable');
      return unavailable(c, dependency, `the ${dependency} is unavailable; retry later`, o.retryAfterSeconds);
    }
    if (isRetryLater(err)) {
      o.log.warn({ method: c.req.method, path: c.req.path, err: err.message, code: (err as { code?: string }).code }, 'http.database_busy');
      return unavailable(c, 'database', 'the database is busy; retry later', o.retryAfterSeconds);
    }
    // Hono's own (e.g. a malformed request it refused) keep their status.
    if (err instanceof HTTPException && err.status < 500)
      return problem(c, err.status as ContentfulStatusCode, err.message || 'request refused');
    o.log.error({ err, method: c.req.method, path: c.req.path }, 'http.unhandled_error');
    return problem(c, 500, 'internal error');
  };
}
