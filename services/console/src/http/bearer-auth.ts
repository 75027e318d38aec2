/** The optional bearer token in front of every /api/* route (CONSOLE_TOKEN). */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { problem } from '@orderflow/kit';

/** Constant-time comparison of the presented token (hashed first so lengths never leak). */
function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Without a token configured every request passes; with one, a missing or wrong token is 401. */
export function bearerAuth(token: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (!token) return next();
    const m = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '');
    if (m && tokenMatches(m[1]!.trim(), token)) return next();
    c.header('WWW-Authenticate', 'Bearer realm="orderflow-console"');
    const detail = m ? 'the console token is not valid' : 'this console requires a bearer token (Authorization: Bearer <CONSOLE_TOKEN>)';
    return problem(c, 401, detail);
  };
}
