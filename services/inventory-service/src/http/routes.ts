import { Hono } from 'hono';
import { correlation, jsonBodyLimit, problem, readJsonBody, type HttpEnv, type ServiceContext } from '@orderflow/kit';
import { PRODUCT_ID, SetStockRequest } from './schemas.js';
import { getProduct, getReservation, listProducts, setStock } from '../stock/repository.js';

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

  app.put('/products/:productId', jsonBodyLimit(), async (c) => {
    const id = c.req.param('productId');
    if (!PRODUCT_ID.test(id)) {
      return problem(c, 400, 'invalid product id', {
        title: 'Validation failed',
        errors: [{ path: 'productId', message: 'a product id is 1-128 characters of letters, digits and . _ : @ ~ -' }],
      });
    }
    const body = await readJsonBody(c, SetStockRequest, 'the stock update');
    if (!body.ok) return body.response;
    const { onHand, price } = body.value;
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
  });

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
