import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import { openMetricsRegistry } from './http/metrics-exposition.js';

/**
 * prom-client's process and runtime metrics (CPU, memory, GC, event loop lag) on a registry.
 *
 * The event loop lag is sampled every 100 ms, not prom-client's default 10 ms: that default is a
 * timer firing 100 times a second in every process, which was nearly all of an idle service's CPU
 * (≈ 10 ms CPU/s each, against ≈ 0.7 at 100 ms). A stall long enough to matter still shows in
 * the lag's max and percentiles.
 */
export function collectProcessMetrics(register: Registry): void {
  collectDefaultMetrics({ register, eventLoopMonitoringPrecision: 100 });
}

/**
 * One registry per process (passed in, never global), with the platform's shared metrics. It is an
 * OpenMetrics registry so histograms can carry trace-id exemplars; /metrics negotiates the format.
 */
export function createMetrics(service: string) {
  const registry = openMetricsRegistry();
  registry.setDefaultLabels({ service });
  collectProcessMetrics(registry);
  const m = {
    registry,
    published: new Counter({
      name: 'orderflow_nats_published_total',
      help: 'Messages published to JetStream',
      labelNames: ['subject'],
      registers: [registry],
    }),
    consumed: new Counter({
      name: 'orderflow_nats_consumed_total',
      help: 'Messages handled and acked',
      labelNames: ['subject', 'result'],
      registers: [registry],
    }),
    failed: new Counter({
      name: 'orderflow_nats_failed_total',
      help: 'Message handling failures (nak, term, publish errors)',
      labelNames: ['subject', 'kind'],
      registers: [registry],
    }),
    handlerDuration: new Histogram({
      name: 'orderflow_handler_duration_seconds',
      help: 'Time spent handling one message, transaction included',
      labelNames: ['subject'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'orderflow_dead_lettered_total',
      help: 'Messages copied to a dead-letter subject',
      labelNames: ['consumer', 'reason'],
      registers: [registry],
    }),
    outboxLag: new Gauge({
      name: 'orderflow_outbox_lag_seconds',
      help: 'Age of the oldest unsent outbox row (0 when empty)',
      registers: [registry],
    }),
    outboxRelayed: new Counter({
      name: 'orderflow_outbox_relayed_total',
      help: 'Outbox rows published and removed',
      registers: [registry],
    }),
    consumerBatchSize: new Histogram({
      name: 'orderflow_consumer_batch_size',
      help: 'Messages committed by one consumer transaction',
      labelNames: ['consumer'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    outboxBatchSize: new Histogram({
      name: 'orderflow_outbox_relay_batch_size',
      help: 'Outbox rows published by one relay claim',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    consumerPending: new Gauge({
      name: 'orderflow_consumer_pending',
      help: 'Messages not yet delivered to the consumer (JetStream consumer info)',
      labelNames: ['consumer'],
      registers: [registry],
    }),
    consumerAckPending: new Gauge({
      name: 'orderflow_consumer_ack_pending',
      help: 'Messages delivered and not yet acked (JetStream consumer info)',
      labelNames: ['consumer'],
      registers: [registry],
    }),
    dlqDepth: new Gauge({
      name: 'orderflow_dlq_depth',
      help: "Messages on a consumer's dead-letter subject (DLQ stream info)",
      labelNames: ['consumer', 'subject'],
      registers: [registry],
    }),
    natsConnected: new Gauge({ name: 'orderflow_nats_connected', help: '1 while connected to NATS', registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
