/**
 * /metrics negotiation: Prometheus (Accept: application/openmetrics-text) gets OpenMetrics with
 * the e2e histogram's trace-id exemplars; any other reader gets the classic text format, sample
 * for sample what a classic registry with the same metrics writes.
 */
import { describe, expect, it } from 'vitest';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { acceptsOpenMetrics, exposition, openMetricsRegistry, openMetricsToText, opsApp } from '@orderflow/kit';
import { parseMetrics } from '@orderflow/kit/testing';

/** The same metrics and observations in a registry of each kind. */
function fill(registry: Registry, exemplars: boolean): void {
  registry.setDefaultLabels({ service: 'order-service' });
  new Counter({
    name: 'orderflow_nats_published_total',
    help: 'Messages published "to" JetStream \\ path',
    labelNames: ['subject'],
    registers: [registry],
  }).inc({ subject: 'orders.{created}' }, 3);
  const h = new Histogram({
    name: 'orderflow_order_e2e_seconds',
    help: 'Order accepted → final state',
    labelNames: ['outcome'],
    buckets: [0.1, 1],
    registers: [registry],
    enableExemplars: exemplars,
  });
  // prom-client types exemplar labels as the metric's own label names; an exemplar has its own.
  if (exemplars)
    h.observe({
      labels: { outcome: 'confirmed' },
      value: 0.5,
      exemplarLabels: { trace_id: '0af7651916cd43dd8448eb211c80319c' } as unknown as { outcome: string },
    });
  else h.observe({ outcome: 'confirmed' }, 0.5);
  new Gauge({ name: 'orderflow_outbox_lag_seconds', help: 'Age of the oldest unsent outbox row', registers: [registry] }).set(0);
}

const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,' +
  'text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2';

describe('/metrics exposition', () => {
  it('reads Accept as Prometheus sends it', () => {
    expect(acceptsOpenMetrics(PROMETHEUS_ACCEPT)).toBe(true);
    expect(acceptsOpenMetrics('application/openmetrics-text; version=1.0.0; charset=utf-8')).toBe(true);
    expect(acceptsOpenMetrics('text/plain;version=0.0.4')).toBe(false);
    expect(acceptsOpenMetrics('*/*')).toBe(false);
    expect(acceptsOpenMetrics(undefined)).toBe(false);
    expect(acceptsOpenMetrics('application/openmetrics-text;q=0,text/plain')).toBe(false);
  });

  it('converts OpenMetrics to the classic text a classic registry writes', async () => {
    const om = openMetricsRegistry();
    fill(om, true);
    const classic = new Registry();
    fill(classic, false);
    const omText = await om.metrics();
    expect(omText).toContain('# {trace_id="0af7651916cd43dd8448eb211c80319c"} 0.5');
    const lines = (t: string) => t.split('\n').filter(Boolean);
    expect(lines(openMetricsToText(omText))).toEqual(lines(await classic.metrics()));
    // Twice: prom-client renames counter families on each OpenMetrics rendering.
    expect(lines(openMetricsToText(await om.metrics()))).toEqual(lines(await classic.metrics()));
  });

  it('serves OpenMetrics with exemplars to Prometheus and text to everyone else', async () => {
    const registry = openMetricsRegistry();
    fill(registry, true);
    const app = opsApp({ registry, accepting: () => true, checks: [] });
    const forPrometheus = await app.request('/metrics', { headers: { accept: PROMETHEUS_ACCEPT } });
    expect(forPrometheus.headers.get('content-type')).toBe(Registry.OPENMETRICS_CONTENT_TYPE);
    const omText = await forPrometheus.text();
    // The bucket line with its exemplar: `<series> 1 # {trace_id="…"} 0.5 <timestamp>`.
    const series = String.raw`orderflow_order_e2e_seconds_bucket\{le="1",service="order-service",outcome="confirmed"\}`;
    const exemplar = String.raw`# \{trace_id="0af7651916cd43dd8448eb211c80319c"\} 0\.5 \d+(\.\d+)?`;
    expect(omText).toMatch(new RegExp(`^${series} 1 ${exemplar}$`, 'm'));
    expect(omText.endsWith('# EOF\n')).toBe(true);
    const plain = await app.request('/metrics');
    expect(plain.headers.get('content-type')).toBe(Registry.PROMETHEUS_CONTENT_TYPE);
    const text = await plain.text();
    expect(text).not.toContain('trace_id');
    expect(text).not.toContain('# EOF');
    const page = parseMetrics(text);
    expect(page.total('orderflow_nats_published_total')).toBe(3);
    expect(page.total('orderflow_order_e2e_seconds_bucket', (l) => l.includes('le="+Inf"'))).toBe(1);
    expect(await exposition(new Registry(), PROMETHEUS_ACCEPT)).toMatchObject({ contentType: Registry.PROMETHEUS_CONTENT_TYPE });
  });
});
