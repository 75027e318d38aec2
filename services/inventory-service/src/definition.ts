import { intSetting, readSetting, type ServiceContext, type ServiceDefinition } from '@orderflow/kit';
import { MIGRATIONS } from './migrations.js';
import { inventoryRoutes } from './http/routes.js';
import { stockHandlers } from './stock/handlers.js';
import { stockMetrics, type StockMetrics } from './stock/metrics.js';
import { seeder } from './seed.js';
import { reservationSweeper } from './stock/sweeper.js';
import { httpOrderOutcomes } from './orders/order-outcome.js';

/** Settings of the reservation sweeper (README: configuration). */
export function sweeperSettings(env: ServiceContext['env']) {
  return {
    orderServiceUrl: readSetting('ORDER_SERVICE_URL', env) ?? 'http://127.0.0.1:3001',
    intervalMs: intSetting('RESERVATION_SWEEP_INTERVAL_MS', 30_000, env),
    // The same SAGA_TIMEOUT_MS order-service uses: past it plus the margin, every saga has ended.
    afterMs: intSetting('SAGA_TIMEOUT_MS', 120_000, env) + intSetting('RESERVATION_SWEEP_MARGIN_MS', 60_000, env),
  };
}

export function inventoryService(): ServiceDefinition {
  let metrics: StockMetrics | undefined;
  const m = (ctx: ServiceContext) => (metrics ??= stockMetrics(ctx.metrics.registry));
  return {
    name: 'inventory-service',
    defaultPort: 3002,
    migrations: MIGRATIONS,
    routes: (ctx) => inventoryRoutes(ctx),
    handlers: (ctx) => stockHandlers(ctx, m(ctx)),
    background: (ctx) => {
      const s = sweeperSettings(ctx.env);
      return [seeder(ctx), reservationSweeper({ ctx, metrics: m(ctx), orders: httpOrderOutcomes(s.orderServiceUrl), intervalMs: s.intervalMs, afterMs: s.afterMs })];
    },
  };
}
