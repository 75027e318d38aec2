import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import * as v from 'valibot';
import { correlation, problem, type HttpEnv, type ServiceContext } from '@orderflow/kit';
import { PRODUCT_ID, SetStockRequest } from './schemas.js';
import { getProduct, getReservation, listProducts, setStock } from '../stock/repository.js';

export const MAX_BODY_BYTES = 64 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CHECK_VIOLATION = '23514';

export function inventoryRoutes(ctx: ServiceContext): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();
  app.use('/products', correlation());
  app.use('/products/*', correlation());
  app.use('/reservations/*', correlation());

  app.get('/products', async (c) => {
    const limit = Number(c.req.query('limit') ?? 1000);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return problem(c, 400, 'limit must be an integer from 1 to 1000');
    return c.json({ products: await listProducts(ctx.db, limit) });
  });

  app.get('/products/:productId', async (c) => {
    const id = c.req.param('productId');
    const product = PRODUCT_ID.test(id) ? await getProduct(ctx.db, id) : undefined;
    if (!product) return problem(c, 404, `no product ${id}`);
    return c.json(product);
  });

  app.put(
    '/products/:productId',
    bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => problem(c, 413, `request body exceeds ${MAX_BODY_BYTES} bytes`) }),
    async (c) => {
      const id = c.req.param('productId');
      if (!PRODUCT_ID.test(id)) {
        return problem(c, 400, 'invalid product id', {
          title: 'Validation failed',
          errors: [{ path: 'productId', message: 'a product id is 1-128 characters of letters, digits and . _ : @ ~ -' }],
        });
      }
      const type = c.req.header('content-type') ?? '';
      if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
        return problem(c, 415, `content type must be application/json, got "${type || 'none'}"`);
      }
      let raw: unknown;
      try {
        raw = JSON.parse(await c.req.text());
      } catch (err) {
        return problem(c, 400, `body is not valid JSON: ${(err as Error).message}`, { title: 'Invalid JSON' });
      }
      const parsed = v.safeParse(SetStockRequest, raw);
      if (!parsed.success) {
        return problem(c, 400, 'the stock update does not match the schema', {
          title: 'Validation failed',
          errors: parsed.issues.slice(0, 20).map((i) => ({ path: v.getDotPath(i) ?? '', message: i.message })),
        });
      }
      const { onHand, price } = parsed.output;
      let result;
      try {
        result = await ctx.db.tx((sql) => setStock(sql, id, onHand, price));
      } catch (err) {
        // A reservation slipping in between the check and the write still can't break the invariant.
        if ((err as { code?: string }).code === CHECK_VIOLATION) return problem(c, 400, `onHand ${onHand} is below the units reserved`);
        throw err;
      }
      if (result.kind === 'below_reserved') {
        return problem(c, 400, `onHand ${onHand} is below the ${result.reserved} units reserved for orders in flight`, {
          title: 'Validation failed',
          errors: [{ path: 'onHand', message: `must be at least ${result.reserved} (reserved)` }],
        });
      }
      ctx.log.info({ productId: id, onHand, price }, 'inventory.stock_set');
      return c.json(result.product, 200);
    },
  );

  app.get('/reservations/:orderId', async (c) => {
    const id = c.req.param('orderId');
    const r = UUID.test(id) ? await getReservation(ctx.db, id) : undefined;
    if (!r) return problem(c, 404, `no reservation for order ${id}`);
    return c.json(r);
  });

  app.on(['POST', 'PATCH', 'DELETE'], ['/products/:productId'], (c) => problem(c, 405, `${c.req.method} is not allowed here`));
  app.on(['PUT', 'POST', 'PATCH', 'DELETE'], ['/products'], (c) => problem(c, 405, `${c.req.method} is not allowed here`));
  return app;
}
