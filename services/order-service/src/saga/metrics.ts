import { Counter, Histogram, type Registry } from 'prom-client';

export function sagaMetrics(registry: Registry) {
  return {
    outcomes: new Counter({ name: 'orderflow_saga_outcomes_total', help: 'Orders reaching a final state', labelNames: ['outcome', 'reason'], registers: [registry] }),
    e2e: new Histogram({
      name: 'orderflow_order_e2e_seconds',
      help: 'Order accepted → final state',
      labelNames: ['outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
  };
}

export type SagaMetrics = ReturnType<typeof sagaMetrics>;
