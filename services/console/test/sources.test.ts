import { describe, expect, test } from 'vitest';
import { parsePrometheus, sumBy } from '@orderflow/kit';
import { bucketDelta, histogramBuckets, histogramQuantile } from '../src/sources/histogram.js';
import { isGrowing } from '../src/sources/jetstream.js';
import { traceIdOf } from '../src/sources/timeline.js';
import { consumerResourceName, streamResourceName } from '../src/resources.js';

const TEXT = `# HELP orderflow_order_e2e_seconds Order accepted → final state
# TYPE orderflow_order_e2e_seconds histogram
orderflow_order_e2e_seconds_bucket{le="0.1",outcome="confirmed",service="order-service"} 2
orderflow_order_e2e_seconds_bucket{le="0.5",outcome="confirmed",service="order-service"} 8
orderflow_order_e2e_seconds_bucket{le="1",outcome="confirmed",service="order-service"} 10
orderflow_order_e2e_seconds_bucket{le="+Inf",outcome="confirmed",service="order-service"} 10
orderflow_order_e2e_seconds_bucket{le="0.1",outcome="cancelled",service="order-service"} 0
orderflow_order_e2e_seconds_bucket{le="+Inf",outcome="cancelled",service="order-service"} 3
orderflow_order_e2e_seconds_sum{outcome="confirmed",service="order-service"} 3.2
orderflow_saga_outcomes_total{outcome="confirmed",reason="none",service="order-service"} 10
orderflow_saga_outcomes_total{outcome="cancelled",reason="out_of_stock",service="order-service"} 2
orderflow_saga_outcomes_total{outcome="cancelled",reason="payment_declined",service="order-service"} 1
weird_metric{label="a \\"quoted\\" value"} 1.5e3
`;

describe('prometheus text', () => {
  const samples = parsePrometheus(TEXT);
  test('parses samples with labels, escapes and exponents', () => {
    expect(samples.find((s) => s.name === 'weird_metric')).toEqual({
      name: 'weird_metric',
      labels: { label: 'a "quoted" value' },
      value: 1500,
    });
  });
  test('histogram quantiles interpolate like histogram_quantile()', () => {
    const b = histogramBuckets(samples, 'orderflow_order_e2e_seconds', { outcome: 'confirmed' });
    expect(b.map((x) => x.le)).toEqual([0.1, 0.5, 1, Infinity]);
    expect(histogramQuantile(0.5, b)).toBeCloseTo(0.1 + 0.4 * (3 / 6), 6);
    expect(histogramQuantile(0.99, b)).toBeCloseTo(0.5 + 0.5 * (1.9 / 2), 6);
    expect(histogramQuantile(0.5, [])).toBeUndefined();
    // Everything above the last finite bound: report that bound.
    expect(histogramQuantile(0.5, histogramBuckets(samples, 'orderflow_order_e2e_seconds', { outcome: 'cancelled' }))).toBe(0.1);
  });
  test('bucket deltas give a window; a counter reset falls back to the later scrape', () => {
    // Two buckets: up to 1 s, and everything (+Inf).
    const buckets = (upTo1s: number, all: number) => [
      { le: 1, count: upTo1s },
      { le: Infinity, count: all },
    ];
    const later = buckets(10, 12);
    expect(bucketDelta(later, buckets(4, 4))).toEqual(buckets(6, 8));
    expect(bucketDelta(later, buckets(40, 40))).toEqual(later);
  });
  test('sums a counter by label', () => {
    expect(sumBy(samples, 'orderflow_saga_outcomes_total', 'outcome')).toEqual({ confirmed: 10, cancelled: 3 });
    expect(sumBy(samples, 'orderflow_saga_outcomes_total', 'reason', { outcome: 'cancelled' })).toEqual({
      out_of_stock: 2,
      payment_declined: 1,
    });
  });
});

describe('helpers', () => {
  test('a consumer is growing when pending rose over its last samples', () => {
    expect(isGrowing([0, 1, 2, 3])).toBe(true);
    expect(isGrowing([5, 5, 6, 9])).toBe(true);
    expect(isGrowing([1, 2, 3])).toBe(false); // not enough samples yet
    expect(isGrowing([3, 4, 2, 5])).toBe(false);
    expect(isGrowing([4, 4, 4, 4])).toBe(false);
    expect(isGrowing([0, 0, 0, 0])).toBe(false);
  });
  test('trace ids come from a valid, sampled-or-not traceparent; an all-zero id is none', () => {
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceIdOf('garbage')).toBeUndefined();
    expect(traceIdOf(undefined)).toBeUndefined();
  });
  test('resource names follow the chart (lowercase, _ → -, consumer prefixed by its stream)', () => {
    expect(streamResourceName('ORDERS')).toBe('orders');
    expect(streamResourceName('STAGING_ORDERS')).toBe('staging-orders');
    expect(consumerResourceName('STAGING_ORDERS', 'inventory-orders')).toBe('staging-orders-inventory-orders');
  });
});
