import type { ServiceDefinition } from '@orderflow/kit';
import { MIGRATIONS } from './migrations.js';
import { inventoryRoutes } from './http/routes.js';
import { stockHandlers } from './stock/handlers.js';
import { stockMetrics, type StockMetrics } from './stock/metrics.js';
import { seeder } from './seed.js';

export function inventoryService(): ServiceDefinition {
  let metrics: StockMetrics | undefined;
  return {
    name: 'inventory-service',
    defaultPort: 3002,
    migrations: MIGRATIONS,
    routes: (ctx) => inventoryRoutes(ctx),
    handlers: (ctx) => stockHandlers(ctx, (metrics ??= stockMetrics(ctx.metrics.registry))),
    background: (ctx) => [seeder(ctx)],
  };
}
