import { Counter, Histogram, type Registry } from 'prom-client';

export function sagaMetrics(registry: Registry) {
  const outcomes = new Counter({
    name: 'orderflow_saga_outcomes_total',
    help: 'Orders reaching a final state',
    labelNames: ['outcome', 'reason'],
    registers: [registry],
  });
  // Present at 0 from the start, so the first timeout is an increase Prometheus can see
  // (OrderflowSagaTimeoutsRising); a series born at 1 shows no increase.
  outcomes.inc({ outcome: 'cancelled', reason: 'timeout' }, 0);
  return {
    outcomes,
    e2e: new Histogram({
      name: 'orderflow_order_e2e_seconds',
      help: 'Order accepted → final state',
      labelNames: ['outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      // The trace id of the order's last step, so a slow bucket links to its trace (OpenMetrics).
      enableExemplars: true,
      registers: [registry],
    }),
  };
}

export type SagaMetrics = ReturnType<typeof sagaMetrics>;
