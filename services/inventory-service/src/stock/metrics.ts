import { Counter, type Registry } from 'prom-client';

export function stockMetrics(registry: Registry) {
  return {
    outcomes: new Counter({
      name: 'orderflow_inventory_outcomes_total',
      help: 'Inventory saga steps by result (reserved, rejected, committed, released, tombstoned, noop)',
      labelNames: ['event', 'result'],
      registers: [registry],
    }),
    sweeper: new Counter({
      name: 'orderflow_inventory_sweeper_total',
      help:
        'Reservation sweeper actions on holds that outlived the saga: committed, released, already_settled, ' +
        'order_open, unknown_order, lookup_failed, failed',
      labelNames: ['action'],
      registers: [registry],
    }),
  };
}

export type StockMetrics = ReturnType<typeof stockMetrics>;
