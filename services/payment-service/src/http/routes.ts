import { Hono } from 'hono';
import { correlation, problem, type HttpEnv, type ServiceContext } from '@orderflow/kit';
import { getPayment, toView } from '../payments/repository.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function paymentRoutes(ctx: ServiceContext): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();
  app.use('/payments/*', correlation());
  app.get('/payments/:orderId', async (c) => {
    const orderId = c.req.param('orderId');
    // Not a uuid: no such payment (and Postgres would reject the cast).
    const row = UUID.test(orderId) ? await getPayment(ctx.db, orderId) : undefined;
    if (!row) return problem(c, 404, `no payment for order ${orderId}`);
    return c.json(toView(row));
  });
  return app;
}
