import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { withWorkContext } from '../context.js';

const VALID = /^[\w.:@/+=-]{1,128}$/;

/** Takes X-Correlation-ID when well-formed (else generates one), echoes it, scopes logs to it. */
export function correlation(): MiddlewareHandler<{ Variables: { correlationId: string } }> {
  return async (c, next) => {
    const given = c.req.header('x-correlation-id');
    const id = given && VALID.test(given) ? given : randomUUID();
    c.set('correlationId', id);
    c.header('X-Correlation-ID', id);
    await withWorkContext({ correlationId: id }, next);
  };
}
