import type { Histogram, LabelValues } from 'prom-client';
import { activeTraceId } from './propagation.js';

/**
 * Observes `value` on a histogram made with `enableExemplars: true`, with the active trace id as
 * the exemplar (`trace_id`), so Prometheus and Grafana can jump from a bucket to the trace in
 * Jaeger; without an active sampled span the observation carries no exemplar.
 */
export function observeWithTraceId<T extends string>(histogram: Histogram<T>, labels: LabelValues<T>, value: number): void {
  const traceId = activeTraceId();
  // prom-client types exemplar labels as the metric's own label names; an exemplar has its own.
  const exemplarLabels = (traceId ? { trace_id: traceId } : {}) as unknown as LabelValues<T>;
  histogram.observe({ labels, value, exemplarLabels });
}
