import { Hono } from 'hono';
import { problem, type HttpEnv, type ServiceContext } from '@orderflow/kit';
import { findByCorrelation, orderStats } from '../orders/console-queries.js';

/**
 * Read-only endpoints the ops console reads: `GET /orders?correlationId=` and `GET /orders/stats`.
 * Mounted before the order routes so that "stats" is never taken for an order id.
 */
export function consoleRoutes(ctx: ServiceContext): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();

  app.get('/orders', async (c) => {
    const correlationId = c.req.query('correlationId');
    if (!correlationId)
      return problem(c, 400, 'query parameter correlationId is required', { errors: [{ path: 'correlationId', message: 'required' }] });
    return c.json({ orders: await findByCorrelation(ctx.db, correlationId) });
  });

  app.get('/orders/stats', async (c) => {
    const raw = c.req.query('minutes') ?? '15';
    const minutes = Number(raw);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
      return problem(c, 400, 'minutes must be an integer in 1..1440', { errors: [{ path: 'minutes', message: `got "${raw}"` }] });
    }
    return c.json(await orderStats(ctx.db, minutes));
  });

  return app;
}
