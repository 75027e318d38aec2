/**
 * One order through the whole saga with every service (and the sandbox gateway) as a child
 * process built from dist/, exporting OTLP/HTTP protobuf to an in-process receiver: the trace
 * must start at `POST /orders`, hop through NATS with producer → consumer parent links, include
 * pg and gateway (undici → gateway server) spans, and tie in with logs and /metrics.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/nats-core';
import { Names } from '@orderflow/kit';
import { deleteNamespaceStreams, dropSchema, freePort, TEST_DATABASE_URL, TEST_NATS_URL, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { KIND, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.js';
import { parseMetrics, startChild, type Child } from './helpers.js';

const SERVICES = ['inventory-service', 'payment-service', 'order-service'] as const;
type Svc = (typeof SERVICES)[number];

describe('one trace per order across HTTP, NATS, pg and the gateway', () => {
  const ns = testNamespace('otel');
  const names = new Names(ns);
  const schemas = Object.fromEntries(SERVICES.map((s) => [s, `${ns}_${s.split('-')[0]}`])) as Record<Svc, string>;
  const children: Partial<Record<Svc | 'sandbox-gateway', Child>> = {};
  let receiver: OtlpReceiver;
  let nc: NatsConnection;
  let orderId: string;
  let trace: ReceivedSpan[] = [];

  const svc = (name: Svc | 'sandbox-gateway'): Child => {
    const c = children[name];
    if (!c) throw new Error(`${name} not started`);
    return c;
  };

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    nc = await testNats();
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' };
    children['sandbox-gateway'] = await startChild('sandbox-gateway', 'services/sandbox-gateway/dist/main.js', await freePort(), { ...otel, SANDBOX_LATENCY_MS: '0', LOG_LEVEL: 'info' }, '/health');
    await Promise.all(
      SERVICES.map(async (name) => {
        children[name] = await startChild(name, `services/${name}/dist/main.js`, await freePort(), {
          ...otel,
          NATS_URL: TEST_NATS_URL,
          ORDERFLOW_NAMESPACE: ns,
          DATABASE_URL: TEST_DATABASE_URL,
          DATABASE_SCHEMA: schemas[name],
          PAYMENT_GATEWAY_URL: svc('sandbox-gateway').url,
          SEED_PRODUCTS: '[]',
          LOG_LEVEL: 'info',
        });
      }),
    );

    const productId = `sku-otel-${randomUUID().slice(0, 8)}`;
    const put = await fetch(`${svc('inventory-service').url}/products/${productId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ onHand: 10, price: 12.5 }),
    });
    expect(put.status).toBe(200);
    const res = await fetch(`${svc('order-service').url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'cust-otel', items: [{ productId, quantity: 2 }] }),
    });
    expect(res.status).toBe(202);
    orderId = ((await res.json()) as { orderId: string }).orderId;
    await waitFor(
      'order confirmed',
      async () => {
        const o = (await (await fetch(`${svc('order-service').url}/orders/${orderId}`)).json()) as { status: string };
        if (o.status === 'cancelled') throw new Error(`order cancelled: ${JSON.stringify(o)}`);
        return o.status === 'confirmed';
      },
      45_000,
      100,
    );
    // The last hop of the saga is inventory committing stock on orders.confirmed.
    const confirmed = names.subject('orders.confirmed');
    await waitFor(
      'trace complete',
      () => {
        const root = receiver.spans.find((s) => s.name === 'POST /orders' && s.kind === KIND.SERVER);
        if (!root) return false;
        trace = receiver.spans.filter((s) => s.traceId === root.traceId);
        return trace.some((s) => s.service === 'inventory-service' && s.name === `${confirmed} process`);
      },
      20_000,
      100,
    );
  });

  afterAll(async () => {
    await Promise.all(Object.values(children).map((c) => c?.stop()));
    await receiver?.close();
    if (nc) {
      await deleteNamespaceStreams(nc, ns);
      await nc.close();
    }
    for (const s of Object.values(schemas)) await dropSchema(s);
  });

  it('starts at POST /orders and covers every service, the gateway included', () => {
    expect(receiver.errors).toEqual([]);
    const root = trace.find((s) => s.name === 'POST /orders')!;
    expect(root.service).toBe('order-service');
    expect(root.parentSpanId).toBe('');
    expect(root.attributes['http.route']).toBe('/orders');
    expect(root.attributes['http.response.status_code']).toBe(202);
    const services = new Set(trace.map((s) => s.service));
    for (const s of [...SERVICES, 'sandbox-gateway']) expect(services, `spans from ${s}`).toContain(s);
    // Every span in the trace hangs off another span of the same trace, except the root.
    const ids = new Set(trace.map((s) => s.spanId));
    for (const s of trace) if (s !== root) expect(ids.has(s.parentSpanId), `parent of ${s.service} ${s.name}`).toBe(true);
  });

  it('links each consumer span to the publish span of the message it handled', () => {
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const consumers = trace.filter((s) => s.kind === KIND.CONSUMER);
    const expected: Array<[string, string]> = [
      ['orders.created', 'inventory-orders'],
      ['inventory.reserved', 'payment-inventory'],
      ['inventory.reserved', 'order-inventory'],
      ['payments.completed', 'order-payments'],
      ['orders.confirmed', 'inventory-orders'],
    ];
    for (const [type, group] of expected) {
      const subject = names.subject(type);
      const c = consumers.find((s) => s.name === `${subject} process` && s.attributes['messaging.consumer.group.name'] === group);
      expect(c, `${group} processing ${type}`).toBeDefined();
      expect(c!.attributes).toMatchObject({
        'messaging.system': 'nats',
        'messaging.operation.type': 'process',
        'messaging.destination.name': subject,
      });
      expect(c!.attributes['messaging.nats.delivery_count']).toBeGreaterThanOrEqual(1);
      const producer = byId.get(c!.parentSpanId)!;
      expect(producer.kind).toBe(KIND.PRODUCER);
      expect(producer.name).toBe(`${subject} publish`);
      expect(producer.attributes).toMatchObject({
        'messaging.system': 'nats',
        'messaging.operation.type': 'publish',
        'messaging.destination.name': subject,
        'messaging.message.id': c!.attributes['messaging.message.id'],
      });
    }
    // orders.created is published on behalf of the HTTP request: its publish span's parent is the server span.
    const created = trace.find((s) => s.name === `${names.subject('orders.created')} publish`)!;
    expect(byId.get(created.parentSpanId)?.name).toBe('POST /orders');
  });

  it('has pg spans inside handlers and the gateway call as undici client → gateway server', () => {
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    for (const s of SERVICES) {
      expect(trace.some((x) => x.service === s && x.attributes['db.system.name'] === 'postgresql'), `pg spans in ${s}`).toBe(true);
    }
    const gatewaySpans = trace.filter((s) => s.service === 'sandbox-gateway');
    // The gateway has no kit middleware: its span comes from the http instrumentation alone (`POST`, url.path).
    const charge = gatewaySpans.find((s) => s.kind === KIND.SERVER && s.attributes['http.request.method'] === 'POST' && s.attributes['url.path'] === '/charges');
    expect(charge, JSON.stringify(gatewaySpans.map((s) => [s.name, s.attributes]))).toBeDefined();
    const client = byId.get(charge!.parentSpanId)!;
    expect(client.service).toBe('payment-service');
    expect(client.kind).toBe(KIND.CLIENT);
    expect(client.attributes['http.request.method']).toBe('POST');
    // ... itself inside payment-service's handling of inventory.reserved.
    let up: ReceivedSpan | undefined = client;
    while (up && up.kind !== KIND.CONSUMER) up = byId.get(up.parentSpanId);
    expect(up?.name).toBe(`${names.subject('inventory.reserved')} process`);
  });

  it('logs written while handling carry the trace and span ids of that handling', () => {
    const traceId = trace[0]!.traceId;
    const paymentSpans = new Set(trace.filter((s) => s.service === 'payment-service').map((s) => s.spanId));
    const recorded = svc('payment-service')
      .logs()
      .find((l) => l.msg === 'payment.recorded' && l.orderId === orderId);
    expect(recorded, 'payment.recorded log line').toBeDefined();
    expect(recorded!.trace_id).toBe(traceId);
    expect(paymentSpans.has(String(recorded!.span_id))).toBe(true);
    expect(typeof recorded!.correlation_id).toBe('string');
    const captured = svc('sandbox-gateway')
      .logs()
      .find((l) => l.msg === 'sandbox.captured' && l.orderId === orderId);
    expect(captured?.trace_id).toBe(traceId);
  });

  it('/metrics has non-zero counters and histograms after the saga', async () => {
    const text = async (s: Svc) => parseMetrics(await (await fetch(`${svc(s).url}/metrics`)).text());
    const order = await text('order-service');
    expect(order.total('orderflow_nats_published_total', (l) => l.includes('orders.created'))).toBeGreaterThan(0);
    expect(order.total('orderflow_nats_consumed_total', (l) => l.includes('result="handled"'))).toBeGreaterThan(0);
    expect(order.total('orderflow_handler_duration_seconds_count')).toBeGreaterThan(0);
    expect(order.total('orderflow_saga_outcomes_total', (l) => l.includes('confirmed'))).toBeGreaterThan(0);
    expect(order.total('orderflow_order_e2e_seconds_count')).toBeGreaterThan(0);
    expect(order.has('orderflow_outbox_lag_seconds')).toBe(true);
    const inventory = await text('inventory-service');
    expect(inventory.total('orderflow_nats_consumed_total')).toBeGreaterThan(0);
    expect(inventory.total('orderflow_handler_duration_seconds_count')).toBeGreaterThan(0);
    expect(inventory.total('orderflow_nats_published_total')).toBeGreaterThan(0);
    const payment = await text('payment-service');
    expect(payment.total('orderflow_nats_published_total', (l) => l.includes('payments.completed'))).toBeGreaterThan(0);
    expect(payment.has('orderflow_circuit_breaker_state')).toBe(true);
    // Consumer gauges come from JetStream consumer info (read when the consumer starts, then every 5 s).
    for (const s of SERVICES) {
      const m = await text(s);
      expect(m.has('orderflow_consumer_pending'), `${s} consumer_pending`).toBe(true);
      expect(m.has('orderflow_consumer_ack_pending'), `${s} consumer_ack_pending`).toBe(true);
      expect(m.has('orderflow_dlq_depth'), `${s} dlq_depth`).toBe(true);
    }
  });
});
