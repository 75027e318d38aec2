import { Counter, type Registry } from 'prom-client';

export function stockMetrics(registry: Registry) {
  return {
    outcomes: new Counter({
      name: 'orderflow_inventory_outcomes_total',
      help: 'Inventory saga steps by result (reserved, rejected, committed, released, tombstoned, noop)',
      labelNames: ['event', 'result'],
      registers: [registry],
    }),
  };
}

export type StockMetrics = ReturnType<typeof stockMetrics>;
