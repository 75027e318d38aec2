import { Hono } from 'hono';
import {
  correlation,
  jsonBodyLimit,
  problem,
  publishVersionsSetting,
  rateLimit,
  rateLimitFromEnv,
  readJsonBody,
  type HttpEnv,
  type ServiceContext,
} from '@orderflow/kit';
import { CreateOrderRequest, IDEMPOTENCY_KEY, requestHash } from '../orders/request.js';
import { getOrder } from '../orders/repository.js';
import { newOrder } from '../orders/new-order.js';
import type { OrderWriter } from '../orders/group-commit.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function orderRoutes(ctx: ServiceContext, writer: OrderWriter): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();
  // Read once at start-up (a bad value fails the start): which orders.created versions to publish.
  const createdVersions = publishVersionsSetting('ORDERS_CREATED_VERSIONS', 'orders.created', ['v1'], ctx.env);
  // `/orders/*` also matches `/orders` itself: one registration, or POST /orders would take (or
  // generate) its correlation id twice and run twice in a new async context.
  app.use('/orders/*', correlation());
  // Per-IP and global request rates (RATE_LIMIT_* env, off unless set): 429 + Retry-After.
  const limited = rateLimit(rateLimitFromEnv(ctx.env));

  app.post('/orders', limited, jsonBodyLimit(), async (c) => {
    const body = await readJsonBody(c, CreateOrderRequest, 'the order');
    if (!body.ok) return body.response;
    const key = c.req.header('idempotency-key');
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      return problem(c, 400, 'Idempotency-Key must be 1-255 visible ASCII characters');
    }
    const correlationId = c.get('correlationId');
    const idem = key ? { key, hash: requestHash(body.value) } : undefined;
    // Answered once the group holding this order (and its key claim and events) has committed;
    // the writer has handed the events of a created order to the relay by then.
    const order = newOrder(ctx.names, body.value, correlationId, idem, createdVersions);
    const result = await writer.submit(order);
    if (result.kind === 'conflict') {
      return problem(c, 409, 'this Idempotency-Key was used with a different request body', { orderId: result.orderId });
    }
    c.header('Location', `/orders/${result.orderId}`);
    return c.json({ orderId: result.orderId, status: result.status }, result.kind === 'created' ? 202 : 200);
  });

  app.get('/orders/:id', limited, async (c) => {
    const id = c.req.param('id');
    if (!UUID.test(id)) return problem(c, 404, `no order ${id}`);
    const order = await getOrder(ctx.db, id);
    if (!order) return problem(c, 404, `no order ${id}`);
    return c.json(order);
  });

  app.on(['PUT', 'PATCH', 'DELETE'], ['/orders', '/orders/:id'], (c) => problem(c, 405, `${c.req.method} is not allowed here`));
  return app;
}
