import { Gauge, type Registry } from 'prom-client';

const PAUSED = 'orderflow_consumer_paused';

/**
 * `orderflow_consumer_paused{consumer, dependency}`: 1 while a consumer is paused because a
 * dependency is away (it holds its messages and probes). One gauge per registry, shared by the
 * service's consumers.
 */
export function consumerPausedGauge(registry: Registry): Gauge<'consumer' | 'dependency'> {
  const existing = registry.getSingleMetric(PAUSED);
  if (existing) return existing as Gauge<'consumer' | 'dependency'>;
  return new Gauge({
    name: PAUSED,
    help: 'Consumers paused because a dependency is away: they hold their messages and probe it (1 while paused)',
    labelNames: ['consumer', 'dependency'],
    registers: [registry],
  });
}
