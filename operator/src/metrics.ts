/** Operator metrics on its own registry (no global default registry: tests run several operators). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '@orderflow/kit';

export interface OperatorMetrics {
  registry: Registry;
  reconciles: Counter<'kind' | 'outcome'>;
  errors: Counter<'kind'>;
  duration: Histogram<'kind'>;
  queueDepth: Gauge;
  leader: Gauge;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): OperatorMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectProcessMetrics(registry);
  return {
    registry,
    reconciles: new Counter({
      name: 'orderflow_operator_reconciles_total',
      help: 'Reconciles by kind and outcome',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'orderflow_operator_reconcile_errors_total',
      help: 'Reconciles that failed and were requeued',
      labelNames: ['kind'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'orderflow_operator_reconcile_duration_seconds',
      help: 'Reconcile duration',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    queueDepth: new Gauge({ name: 'orderflow_operator_queue_depth', help: 'Keys waiting in the work queue', registers: [registry] }),
    leader: new Gauge({ name: 'orderflow_operator_leader', help: '1 while this instance holds the leader lease', registers: [registry] }),
  };
}
