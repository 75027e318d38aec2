/**
 * Without OTEL_EXPORTER_OTLP_ENDPOINT the SDK is not started: a built service runs and serves an
 * order, nothing is sent anywhere (a receiver on the default OTLP/HTTP port 4318, when that port
 * is free, gets no request), nothing is logged at warn/error, and logs carry no trace ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/nats-core';
import { freePort, removeTestNamespace, TEST_DATABASE_URL, TEST_NATS_URL, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.js';
import { startChild, type Child } from './helpers.js';

describe('telemetry off without an OTLP endpoint', () => {
  const ns = testNamespace('otel_off');
  const schema = `${ns}_order`;
  let nc: NatsConnection;
  let order: Child;
  let defaultPort: OtlpReceiver | undefined;

  beforeAll(async () => {
    // Catches an exporter falling back to its default endpoint; skipped if something (a local Jaeger) owns 4318.
    defaultPort = await startOtlpReceiver(4318).catch(() => undefined);
    nc = await testNats();
    order = await startChild('order-service', 'services/order-service/dist/main.js', await freePort(), {
      NATS_URL: TEST_NATS_URL,
      ORDERFLOW_NAMESPACE: ns,
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_SCHEMA: schema,
      LOG_LEVEL: 'info',
      // Other OTel settings alone must not turn anything on.
      OTEL_SERVICE_NAME: 'order-service',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
  });

  afterAll(async () => {
    await order?.stop();
    await defaultPort?.close();
    await removeTestNamespace(nc, ns, [schema]);
  });

  it('serves requests, exports nothing and logs no errors', async () => {
    const res = await fetch(`${order.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      body: JSON.stringify({ customerId: 'c-off', items: [{ productId: 'sku-1', quantity: 1 }] }),
    });
    expect(res.status).toBe(202);
    const m = await (await fetch(`${order.url}/metrics`)).text();
    // The outbox row reached JetStream (the relay ran) before we look for exports.
    await waitFor(
      'published',
      async () =>
        /orderflow_nats_published_total\{[^}]*orders\.created[^}]*\} [1-9]/.test(await (await fetch(`${order.url}/metrics`)).text()),
      10_000,
    );
    expect(m).toContain('orderflow_nats_published_total');
    await new Promise((r) => setTimeout(r, 500));
    const code = await order.stop();
    expect(code).toBe(0);
    expect(defaultPort?.requests ?? 0).toBe(0);
    const logs = order.logs();
    expect(logs.some((l) => l.msg === 'service.stopped')).toBe(true);
    expect(logs.filter((l) => l.level === 'error' || l.level === 'warn' || l.level === 'fatal')).toEqual([]);
    expect(logs.some((l) => 'trace_id' in l)).toBe(false);
    expect(order.stderr.join('')).toBe('');
  });
});
