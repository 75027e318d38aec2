/**
 * Traces as a user sees them: every service (and the sandbox gateway) runs as a child process
 * built from dist/, exporting OTLP/HTTP to a real Jaeger; the ops console runs with JAEGER_UI_URL
 * pointing at it. Four orders go through the saga at once — one that confirms, one the gateway
 * declines, one out of stock, one whose charge is still at the gateway when the saga timeout
 * cancels it (the capture is refunded) — and each order's trace is fetched from Jaeger's query
 * API through the console's trace link, then checked: the HTTP root, every service and the relay's
 * publish spans, consumer spans parented by the publish span of their message, messaging
 * attributes, the gateway call with its retry (a pass-through in front of the gateway fails the
 * first charge attempt of every order), and the compensation branches. Logs and /metrics tie in.
 */
import { randomUUID } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/nats-core';
import { freePort, parseMetrics, TEST_NATS_URL, testNats, waitFor } from '@orderflow/kit/testing';
import { KIND, type ReceivedSpan } from './otlp-receiver.js';
import {
  SAGA_SERVICES as SERVICES,
  otlpEnv,
  sagaChildren,
  startChild,
  startGatewayChild,
  startSagaServices,
  type SagaService as Svc,
} from './helpers.js';
import { TestJaeger } from './jaeger.js';
import { TOOL_BUILD_TIMEOUT_MS } from '../support/tools.js';

type Scenario = 'confirmed' | 'declined' | 'outOfStock' | 'refunded';

/** The charge amount of the order whose charge the gateway proxy holds until the saga timed out. */
const HELD_AMOUNT = 77.5;

/**
 * A pass-through in front of the sandbox gateway: the first charge attempt of every order is
 * answered 503 (so every payment retries once, deterministically), and a charge of HELD_AMOUNT
 * waits until released. Everything else, trace headers included, goes to the gateway unchanged.
 */
async function gatewayProxy(target: string) {
  const failedOnce = new Set<string>();
  let releaseHeld!: () => void;
  const held = new Promise<void>((r) => (releaseHeld = r));
  const to = new URL(target);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      void (async () => {
        if (req.method === 'POST' && req.url === '/charges') {
          const key = String(req.headers['idempotency-key']);
          if (!failedOnce.has(key)) {
            failedOnce.add(key);
            res
              .writeHead(503, { 'content-type': 'application/problem+json' })
              .end(JSON.stringify({ title: 'injected by the test proxy', status: 503 }));
            return;
          }
          if ((JSON.parse(body.toString()) as { amount: number }).amount === HELD_AMOUNT) await held;
        }
        const up = request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on('error', (err) => res.writeHead(502).end(String(err)));
        up.end(body);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    release: () => releaseHeld(),
    close: () =>
      new Promise<void>((resolve) => {
        releaseHeld();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface LookupEvent {
  type: string;
  traceId?: string;
  traceUrl?: string;
}

describe('one trace per order in Jaeger, compensations included', () => {
  const { ns, names, children, svc, stopChildren, removeNamespace } = sagaChildren<'console'>('otel');
  const subject = (type: string) => names.subject(type);
  let jaeger: TestJaeger;
  let proxy: Awaited<ReturnType<typeof gatewayProxy>>;
  let nc: NatsConnection;
  const orders = {} as Record<Scenario, string>;
  const traces = {} as Record<Scenario, ReceivedSpan[]>;
  const traceUrls = {} as Record<Scenario, string>;
  const getJson = async <T>(url: string): Promise<T> => (await (await fetch(url)).json()) as T;
  const order = (id: string) =>
    getJson<{ status: string; history: Array<{ status: string; reason?: string }> }>(`${svc('order-service').url}/orders/${id}`);

  /** The spans below `top` (itself included). */
  const subtree = (spans: ReceivedSpan[], top: ReceivedSpan): ReceivedSpan[] => {
    const out = [top];
    for (let i = 0; i < out.length; i++) out.push(...spans.filter((s) => s.parentSpanId === out[i]!.spanId));
    return out;
  };
  const find = (spans: ReceivedSpan[], service: string, name: string, kind?: number) =>
    spans.filter((s) => s.service === service && s.name === name && (kind === undefined || s.kind === kind));
  const one = (spans: ReceivedSpan[], service: string, name: string, kind?: number): ReceivedSpan => {
    const found = find(spans, service, name, kind);
    expect(found.length, `${service} "${name}" in ${JSON.stringify(spans.map((s) => `${s.service}:${s.name}`))}`).toBeGreaterThanOrEqual(1);
    return found[0]!;
  };
  const parentOf = (spans: ReceivedSpan[], s: ReceivedSpan) => spans.find((p) => p.spanId === s.parentSpanId);

  beforeAll(async () => {
    jaeger = await TestJaeger.start();
    nc = await testNats();
    const otel = otlpEnv(jaeger.otlpHttpUrl);
    children['sandbox-gateway'] = await startGatewayChild({ ...otel, LOG_LEVEL: 'info' });
    proxy = await gatewayProxy(svc('sandbox-gateway').url);
    await startSagaServices(children, ns, {
      ...otel,
      PAYMENT_GATEWAY_URL: proxy.url,
      // The held charge must outlive the saga timeout without the client giving up on it.
      GATEWAY_TIMEOUT_MS: '60000',
      // Long enough that a loaded machine never times out the orders meant to finish.
      SAGA_TIMEOUT_MS: '8000',
      LOG_LEVEL: 'info',
    });
    children.console = await startChild(
      'console',
      'services/console/dist/main.js',
      await freePort(),
      {
        NATS_URL: TEST_NATS_URL,
        ORDERFLOW_NAMESPACE: ns,
        ORDER_SERVICE_URL: svc('order-service').url,
        INVENTORY_SERVICE_URL: svc('inventory-service').url,
        PAYMENT_SERVICE_URL: svc('payment-service').url,
        JAEGER_UI_URL: jaeger.queryUrl,
        LOG_LEVEL: 'warn',
      },
      '/health',
    );

    const tag = randomUUID().slice(0, 8);
    const products: Record<Scenario, { id: string; onHand: number; price: number; quantity: number }> = {
      confirmed: { id: `sku-ok-${tag}`, onHand: 10, price: 12.5, quantity: 2 },
      // Over the sandbox's 10,000 limit: declined.
      declined: { id: `sku-big-${tag}`, onHand: 10, price: 6000, quantity: 2 },
      outOfStock: { id: `sku-few-${tag}`, onHand: 1, price: 3, quantity: 5 },
      refunded: { id: `sku-held-${tag}`, onHand: 10, price: HELD_AMOUNT, quantity: 1 },
    };
    for (const p of Object.values(products)) {
      const r = await fetch(`${svc('inventory-service').url}/products/${p.id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ onHand: p.onHand, price: p.price }),
      });
      expect(r.status).toBe(200);
    }
    await Promise.all(
      (Object.keys(products) as Scenario[]).map(async (k) => {
        const res = await fetch(`${svc('order-service').url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ customerId: `cust-${k}`, items: [{ productId: products[k].id, quantity: products[k].quantity }] }),
        });
        expect(res.status).toBe(202);
        orders[k] = ((await res.json()) as { orderId: string }).orderId;
      }),
    );

    const finalState = async (k: Scenario, status: string, reason?: string) =>
      waitFor(
        `${k} order ${status}`,
        async () => {
          const o = await order(orders[k]);
          const last = o.history.at(-1);
          if (['confirmed', 'cancelled'].includes(o.status) && (o.status !== status || last?.reason !== reason))
            throw new Error(`${k}: ${JSON.stringify(o)}`);
          return o.status === status;
        },
        45_000,
        100,
      );
    await Promise.all([
      finalState('confirmed', 'confirmed'),
      finalState('declined', 'cancelled', 'payment_declined'),
      finalState('outOfStock', 'cancelled', 'out_of_stock'),
      (async () => {
        // The held charge: the saga timeout cancels the order; once payment-service has taken note
        // of the cancellation, the capture is let through, and must be refunded.
        await finalState('refunded', 'cancelled', 'timeout');
        await waitFor(
          'payment.cancel_requested',
          () =>
            svc('payment-service')
              .logs()
              .some((l) => l.msg === 'payment.cancel_requested' && l.orderId === orders.refunded),
          20_000,
          100,
        );
        proxy.release();
        await waitFor(
          'capture refunded',
          async () =>
            (await getJson<{ status: string }>(`${svc('payment-service').url}/payments/${orders.refunded}`)).status === 'refunded',
          30_000,
          100,
        );
      })(),
    ]);

    // Each order's trace, reached as a user does: the console's link on its orders.created event.
    const last: Record<Scenario, [Svc | 'sandbox-gateway', string]> = {
      confirmed: ['inventory-service', `${subject('orders.confirmed')} process`],
      declined: ['inventory-service', `${subject('inventory.released')} publish`],
      outOfStock: ['payment-service', `${subject('orders.cancelled')} process`],
      refunded: ['inventory-service', `${subject('payments.failed')} process`],
    };
    for (const k of Object.keys(orders) as Scenario[]) {
      const lookup = await getJson<{ orders: Array<{ events: LookupEvent[] }> }>(`${svc('console').url}/api/orders/lookup?q=${orders[k]}`);
      const created = lookup.orders[0]?.events.find((e) => e.type === 'orders.created');
      expect(created?.traceUrl, `console trace link of the ${k} order`).toBeDefined();
      traceUrls[k] = created!.traceUrl!;
      const traceId = created!.traceId!;
      traces[k] = await waitFor(
        `${k} trace complete in Jaeger`,
        async () => {
          const spans = await jaeger.trace(traceId);
          const [service, name] = last[k];
          const lastSpan = spans.find((s) => s.service === service && s.name === name);
          const complete =
            lastSpan !== undefined &&
            (k !== 'outOfStock' ||
              spans.some((s) => s.service === 'inventory-service' && s.name === `${subject('orders.cancelled')} process`)) &&
            // The release's parent (the handling that released) may be exported after it.
            (k !== 'declined' || spans.some((s) => s.spanId === lastSpan.parentSpanId));
          return complete ? spans : undefined;
        },
        30_000,
        200,
      );
    }
  }, TOOL_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await stopChildren();
    await proxy?.close();
    await jaeger?.stop();
    await removeNamespace(nc);
  });

  it("the console's trace links open the order's trace in this Jaeger", async () => {
    for (const k of Object.keys(orders) as Scenario[]) {
      const traceId = traces[k][0]!.traceId;
      expect(traceUrls[k]).toBe(`${jaeger.queryUrl}/trace/${traceId}`);
      // The UI route answers (the real UI, or the placeholder page of a module build without assets).
      expect((await fetch(traceUrls[k])).status).toBe(200);
    }
  });

  it('starts at POST /orders and covers every service, the gateway and the relay', () => {
    const trace = traces.confirmed;
    const root = one(trace, 'order-service', 'POST /orders', KIND.SERVER);
    expect(root.parentSpanId).toBe('');
    expect(root.attributes['http.route']).toBe('/orders');
    expect(root.attributes['http.response.status_code']).toBe(202);
    const services = new Set(trace.map((s) => s.service));
    for (const s of [...SERVICES, 'sandbox-gateway']) expect(services, `spans from ${s}`).toContain(s);
    // Every span hangs off another span of the same trace, except the root.
    const ids = new Set(trace.map((s) => s.spanId));
    for (const s of trace) if (s !== root) expect(ids.has(s.parentSpanId), `parent of ${s.service} ${s.name}`).toBe(true);
    // The outbox relay of each service publishes the events that service produced.
    const relayed: Array<[Svc, string]> = [
      ['order-service', 'orders.created'],
      ['inventory-service', 'inventory.reserved'],
      ['payment-service', 'payments.completed'],
      ['order-service', 'orders.confirmed'],
    ];
    for (const [service, type] of relayed) {
      const p = one(trace, service, `${subject(type)} publish`, KIND.PRODUCER);
      expect(p.scope).toBe('orderflow');
    }
  });

  it('links each consumer span to the publish span of the message it handled, with messaging attributes', () => {
    const trace = traces.confirmed;
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const expected: Array<[string, string]> = [
      ['orders.created', 'inventory-orders'],
      ['inventory.reserved', 'payment-inventory'],
      ['inventory.reserved', 'order-inventory'],
      ['payments.completed', 'order-payments'],
      ['orders.confirmed', 'inventory-orders'],
    ];
    for (const [type, group] of expected) {
      const c = trace.find(
        (s) => s.kind === KIND.CONSUMER && s.name === `${subject(type)} process` && s.attributes['messaging.consumer.group.name'] === group,
      );
      expect(c, `${group} processing ${type}`).toBeDefined();
      expect(c!.attributes).toMatchObject({
        'messaging.system': 'nats',
        'messaging.operation.type': 'process',
        'messaging.destination.name': subject(type),
      });
      expect(c!.attributes['messaging.nats.delivery_count']).toBeGreaterThanOrEqual(1);
      expect(c!.attributes['messaging.nats.stream_sequence']).toBeGreaterThanOrEqual(1);
      const producer = byId.get(c!.parentSpanId)!;
      expect(producer.kind).toBe(KIND.PRODUCER);
      expect(producer.name).toBe(`${subject(type)} publish`);
      expect(producer.attributes).toMatchObject({
        'messaging.system': 'nats',
        'messaging.operation.type': 'publish',
        'messaging.destination.name': subject(type),
        'messaging.message.id': c!.attributes['messaging.message.id'],
      });
    }
    // orders.created is published on behalf of the HTTP request: its publish span's parent is the server span.
    expect(byId.get(one(trace, 'order-service', `${subject('orders.created')} publish`).parentSpanId)?.name).toBe('POST /orders');
    for (const s of SERVICES)
      expect(
        trace.some((x) => x.service === s && x.attributes['db.system.name'] === 'postgresql'),
        `pg spans in ${s}`,
      ).toBe(true);
  });

  it('shows the gateway call with its retry: a failed attempt, then the one the gateway served', () => {
    const trace = traces.confirmed;
    const handling = trace.find(
      (s) => s.service === 'payment-service' && s.kind === KIND.CONSUMER && s.name === `${subject('inventory.reserved')} process`,
    )!;
    const attempts = subtree(trace, handling)
      .filter((s) => s.service === 'payment-service' && s.kind === KIND.CLIENT && s.attributes['http.request.method'] === 'POST')
      .sort((a, b) => Number(a.startNs - b.startNs));
    expect(attempts.map((a) => a.attributes['http.response.status_code'])).toEqual([503, 201]);
    expect(attempts[0]!.statusCode).toBe(2);
    const served = trace.filter(
      (s) => s.service === 'sandbox-gateway' && s.kind === KIND.SERVER && s.attributes['url.path'] === '/charges',
    );
    expect(served.map((s) => s.parentSpanId)).toEqual([attempts[1]!.spanId]);
    expect(served[0]!.attributes['http.response.status_code']).toBe(201);
  });

  it('decline → payments.failed → inventory releases the stock, the order is cancelled', () => {
    const trace = traces.declined;
    const handling = one(trace, 'payment-service', `${subject('inventory.reserved')} process`, KIND.CONSUMER);
    const attempts = subtree(trace, handling).filter(
      (s) => s.service === 'payment-service' && s.kind === KIND.CLIENT && s.attributes['http.request.method'] === 'POST',
    );
    expect(attempts.map((a) => a.attributes['http.response.status_code']).sort()).toEqual([402, 503]);
    const failed = one(trace, 'payment-service', `${subject('payments.failed')} publish`, KIND.PRODUCER);
    const handledBy = (type: string, parent: ReceivedSpan) =>
      find(trace, 'inventory-service', `${subject(type)} process`, KIND.CONSUMER).filter((s) => s.parentSpanId === parent.spanId);
    const failedDeliveries = handledBy('payments.failed', failed);
    expect(failedDeliveries[0]?.attributes['messaging.consumer.group.name']).toBe('inventory-payments');
    const cancelled = one(trace, 'order-service', `${subject('orders.cancelled')} publish`, KIND.PRODUCER);
    expect(parentOf(trace, cancelled)?.name).toBe(`${subject('payments.failed')} process`);
    // The stock is released once, by whichever handling gets there first: a delivery of
    // payments.failed (a redelivered one has a span of its own), or orders.cancelled, one hop later
    // through order-service (usually second, not always: a full `npm test` saw the release under
    // another span than the first payments.failed delivery's). The others find nothing held and
    // publish nothing.
    const releasedBy = [...failedDeliveries, ...handledBy('orders.cancelled', cancelled)].map((s) => s.spanId);
    const released = find(trace, 'inventory-service', `${subject('inventory.released')} publish`, KIND.PRODUCER);
    expect(released).toHaveLength(1);
    expect(releasedBy).toContain(released[0]!.parentSpanId);
    // Payment takes note of the cancellation: nothing was captured, so nothing to refund.
    const noted = one(trace, 'payment-service', `${subject('orders.cancelled')} process`, KIND.CONSUMER);
    expect(noted.parentSpanId).toBe(cancelled.spanId);
    expect(trace.some((s) => s.attributes['url.path'] === '/refunds')).toBe(false);
  });

  it('out of stock → inventory.rejected → the order is cancelled and inventory releases what it holds (nothing): no charge', () => {
    const trace = traces.outOfStock;
    const rejected = one(trace, 'inventory-service', `${subject('inventory.rejected')} publish`, KIND.PRODUCER);
    const handled = one(trace, 'order-service', `${subject('inventory.rejected')} process`, KIND.CONSUMER);
    expect(handled.parentSpanId).toBe(rejected.spanId);
    const cancelled = one(trace, 'order-service', `${subject('orders.cancelled')} publish`, KIND.PRODUCER);
    expect(cancelled.parentSpanId).toBe(handled.spanId);
    const release = one(trace, 'inventory-service', `${subject('orders.cancelled')} process`, KIND.CONSUMER);
    expect(release.parentSpanId).toBe(cancelled.spanId);
    expect(release.attributes['messaging.consumer.group.name']).toBe('inventory-orders');
    expect(one(trace, 'payment-service', `${subject('orders.cancelled')} process`, KIND.CONSUMER).parentSpanId).toBe(cancelled.spanId);
    expect(trace.some((s) => s.service === 'sandbox-gateway' || s.name.includes('payments.'))).toBe(false);
  });

  it('a capture that lands after the saga timed out is refunded inside the same handling', () => {
    const trace = traces.refunded;
    const handling = one(trace, 'payment-service', `${subject('inventory.reserved')} process`, KIND.CONSUMER);
    const below = subtree(trace, handling);
    const served = below
      .filter((s) => s.service === 'sandbox-gateway' && s.kind === KIND.SERVER)
      .map((s) => [s.attributes['url.path'], s.attributes['http.response.status_code']]);
    expect(served).toEqual(
      expect.arrayContaining([
        ['/charges', 201],
        ['/refunds', 201],
      ]),
    );
    const refund = below.find((s) => s.service === 'sandbox-gateway' && s.attributes['url.path'] === '/refunds')!;
    expect(parentOf(trace, refund)?.kind).toBe(KIND.CLIENT);
    // ... and the order is answered with payments.failed (order_cancelled), which inventory handles.
    const failed = below.find((s) => s.name === `${subject('payments.failed')} publish`);
    expect(failed, 'payments.failed publish under the charge handling').toBeDefined();
    expect(find(trace, 'inventory-service', `${subject('payments.failed')} process`).some((s) => s.parentSpanId === failed!.spanId)).toBe(
      true,
    );
  });

  it('logs written while handling carry the trace and span ids of that handling', () => {
    const trace = traces.confirmed;
    const traceId = trace[0]!.traceId;
    const paymentSpans = new Set(trace.filter((s) => s.service === 'payment-service').map((s) => s.spanId));
    const recorded = svc('payment-service')
      .logs()
      .find((l) => l.msg === 'payment.recorded' && l.orderId === orders.confirmed);
    expect(recorded, 'payment.recorded log line').toBeDefined();
    expect(recorded!.trace_id).toBe(traceId);
    expect(paymentSpans.has(String(recorded!.span_id))).toBe(true);
    expect(typeof recorded!.correlation_id).toBe('string');
    const captured = svc('sandbox-gateway')
      .logs()
      .find((l) => l.msg === 'sandbox.captured' && l.orderId === orders.confirmed);
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
