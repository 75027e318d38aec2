import { defineService, httpOrderOutcomes, intSetting, readSetting, type ServiceContext } from '@orderflow/kit';
import { MIGRATIONS } from './migrations.js';
import { inventoryRoutes } from './http/routes.js';
import { stockHandlers } from './stock/handlers.js';
import { stockMetrics } from './stock/metrics.js';
import { seeder } from './seed.js';
import { reservationSweeper } from './stock/sweeper.js';

/** Settings of the reservation sweeper (README: configuration). */
export function sweeperSettings(env: ServiceContext['env']) {
  return {
    orderServiceUrl: readSetting('ORDER_SERVICE_URL', env) ?? 'http://127.0.0.1:3001',
    intervalMs: intSetting('RESERVATION_SWEEP_INTERVAL_MS', 30_000, env),
    // The same SAGA_TIMEOUT_MS order-service uses: past it plus the margin, every saga has ended.
    afterMs: intSetting('SAGA_TIMEOUT_MS', 120_000, env) + intSetting('RESERVATION_SWEEP_MARGIN_MS', 60_000, env),
  };
}

/**
 * inventory-service holds stock for the saga: orders.created reserves (emits inventory.reserved,
 * or inventory.rejected when stock is short); orders.confirmed commits the hold; orders.cancelled
 * and payments.failed release it (emits inventory.released). A sweeper releases what a final
 * order no longer needs.
 */
export const INVENTORY_CONSUMERS = {
  'inventory-orders': { stream: 'ORDERS', subject: 'orders.>' },
  'inventory-payments': { stream: 'PAYMENTS', subject: 'payments.failed' },
} as const;

export function inventoryService() {
  return defineService({
    name: 'inventory-service',
    defaultPort: 3002,
    migrations: MIGRATIONS,
    consumers: INVENTORY_CONSUMERS,
    emits: ['inventory.reserved', 'inventory.rejected', 'inventory.released'],
    setup: (ctx) => ({ metrics: stockMetrics(ctx.metrics.registry) }),
    routes: (ctx) => inventoryRoutes(ctx),
    handlers: (ctx, { metrics }) => stockHandlers(ctx, metrics),
    background: (ctx, { metrics }) => {
      const s = sweeperSettings(ctx.env);
      return [
        seeder(ctx),
        reservationSweeper({ ctx, metrics, orders: httpOrderOutcomes(s.orderServiceUrl), intervalMs: s.intervalMs, afterMs: s.afterMs }),
      ];
    },
  });
}
