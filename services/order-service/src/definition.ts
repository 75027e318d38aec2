import { defineService, intSetting, type HttpEnv } from '@orderflow/kit';
import { MIGRATIONS } from './migrations.js';
import { Hono } from 'hono';
import { orderRoutes } from './http/routes.js';
import { consoleRoutes } from './http/console-routes.js';
import { sagaHandlers } from './saga/handlers.js';
import { sagaMetrics } from './saga/metrics.js';
import { sagaTimeout } from './saga/timeout.js';
import { ORDER_LINGER_MS, orderWriter, orderWriterMetrics } from './orders/group-commit.js';

/**
 * order-service starts the saga and ends it. POST /orders stores the order and emits
 * orders.created; the answers of inventory (reserved / rejected) and payment (completed / failed)
 * move it on, and it emits orders.confirmed or orders.cancelled (also when nobody answers within
 * SAGA_TIMEOUT_MS).
 */
export const ORDER_CONSUMERS = {
  'order-inventory': { stream: 'INVENTORY', subject: 'inventory.>' },
  'order-payments': { stream: 'PAYMENTS', subject: 'payments.>' },
} as const;

export function orderService() {
  return defineService({
    name: 'order-service',
    defaultPort: 3001,
    migrations: MIGRATIONS,
    consumers: ORDER_CONSUMERS,
    emits: ['orders.created', 'orders.confirmed', 'orders.cancelled'],
    setup: (ctx) => ({
      metrics: sagaMetrics(ctx.metrics.registry),
      // New orders are written in groups (one statement per group of concurrent POSTs).
      writer: orderWriter(
        ctx.db,
        ctx.relay,
        orderWriterMetrics(ctx.metrics.registry),
        intSetting('ORDER_LINGER_MS', ORDER_LINGER_MS, ctx.env),
      ),
    }),
    // The console's read-only routes first: `/orders/stats` must not reach `/orders/:id`.
    routes: (ctx, { writer }) => new Hono<HttpEnv>().route('/', consoleRoutes(ctx)).route('/', orderRoutes(ctx, writer)),
    handlers: (ctx, { metrics }) => sagaHandlers(ctx, metrics),
    // The writer stops after the HTTP server has drained: requests in flight still get written.
    background: (ctx, { metrics, writer }) => [sagaTimeout(ctx, metrics, intSetting('SAGA_TIMEOUT_MS', 120_000, ctx.env)), writer],
  });
}
