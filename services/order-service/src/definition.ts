import { intSetting, type HttpEnv, type ServiceDefinition } from '@orderflow/kit';
import { MIGRATIONS } from './migrations.js';
import { Hono } from 'hono';
import { orderRoutes } from './http/routes.js';
import { consoleRoutes } from './http/console-routes.js';
import { sagaHandlers } from './saga/handlers.js';
import { sagaMetrics, type SagaMetrics } from './saga/metrics.js';
import { sagaTimeout } from './saga/timeout.js';

export function orderService(): ServiceDefinition {
  let metrics: SagaMetrics | undefined;
  const m = (registry: Parameters<typeof sagaMetrics>[0]) => (metrics ??= sagaMetrics(registry));
  return {
    name: 'order-service',
    defaultPort: 3001,
    migrations: MIGRATIONS,
    // The console's read-only routes first: `/orders/stats` must not reach `/orders/:id`.
    routes: (ctx) => new Hono<HttpEnv>().route('/', consoleRoutes(ctx)).route('/', orderRoutes(ctx)),
    handlers: (ctx) => sagaHandlers(ctx, m(ctx.metrics.registry)),
    background: (ctx) => [sagaTimeout(ctx, m(ctx.metrics.registry), intSetting('SAGA_TIMEOUT_MS', 120_000, ctx.env))],
  };
}
