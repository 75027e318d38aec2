import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import * as v from 'valibot';
import { correlation, problem, publishVersionsSetting, rateLimit, rateLimitFromEnv, type HttpEnv, type ServiceContext } from '@orderflow/kit';
import { CreateOrderRequest, IDEMPOTENCY_KEY, requestHash } from '../orders/request.js';
import { createOrder, getOrder } from '../orders/repository.js';

export const MAX_BODY_BYTES = 64 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function orderRoutes(ctx: ServiceContext): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();
  // Read once at start-up (a bad value fails the start): which orders.created versions to publish.
  const createdVersions = publishVersionsSetting('ORDERS_CREATED_VERSIONS', 'orders.created', ['v1'], ctx.env);
  app.use('/orders/*', correlation());
  app.use('/orders', correlation());
  // Per-IP and global request rates (RATE_LIMIT_* env, off unless set): 429 + Retry-After.
  const limited = rateLimit(rateLimitFromEnv(ctx.env));

  app.post(
    '/orders',
    limited,
    bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => problem(c, 413, `request body exceeds ${MAX_BODY_BYTES} bytes`) }),
    async (c) => {
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
      const parsed = v.safeParse(CreateOrderRequest, raw);
      if (!parsed.success) {
        return problem(c, 400, 'the order does not match the schema', {
          title: 'Validation failed',
          errors: parsed.issues.slice(0, 20).map((i) => ({ path: v.getDotPath(i) ?? '', message: i.message })),
        });
      }
      const key = c.req.header('idempotency-key');
      if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
        return problem(c, 400, 'Idempotency-Key must be 1-255 visible ASCII characters');
      }
      const correlationId = c.get('correlationId');
      const idem = key ? { key, hash: requestHash(parsed.output) } : undefined;
      const result = await ctx.db.tx((sql) => createOrder(sql, ctx.names, parsed.output, correlationId, idem, createdVersions));
      if (result.kind === 'conflict') {
        return problem(c, 409, 'this Idempotency-Key was used with a different request body', { orderId: result.orderId });
      }
      if (result.kind === 'created') ctx.relay.wake();
      c.header('Location', `/orders/${result.order.orderId}`);
      return c.json({ orderId: result.order.orderId, status: result.order.status }, result.kind === 'created' ? 202 : 200);
    },
  );

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
