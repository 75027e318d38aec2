/**
 * The kit's messaging spans in-process, with a real tracer provider and an in-memory exporter:
 * a handler that fails once shows both deliveries as CONSUMER spans under the same PRODUCER span,
 * the second with delivery count 2 and a `redelivery` event; logs inside each attempt carry that
 * attempt's trace and span ids; a poison message gets a `dead_lettered` event and shows up in
 * the DLQ depth gauge; the outbox lag and consumer gauges are refreshed.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { node, tracing } from '@opentelemetry/sdk-node';
import { SpanKind } from '@opentelemetry/api';
import {
  createLogger,
  createMetrics,
  enqueue,
  type EventConsumer,
  inSpan,
  makeEvent,
  OutboxRelay,
  type ConsumerSpec,
  type Db,
  type Names,
  type NatsManager,
} from '@orderflow/kit';
import { startTestBed, waitFor, type TestBed } from '@orderflow/kit/testing';
import { platformDefinitions } from '../support/topology.js';

const exporter = new tracing.InMemorySpanExporter();
const provider = new node.NodeTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });
const lines: Array<Record<string, unknown>> = [];
const log = createLogger(
  'obs-test',
  'info',
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  }),
);
const metrics = createMetrics('obs-test');
let t: TestBed;
let names: Names, db: Db, nats: NatsManager;
const spec = (durable: string): ConsumerSpec => t.spec(durable);
let relay: OutboxRelay;
let consumer: EventConsumer;
const attempts = new Map<string, number>();

beforeAll(async () => {
  // Registers the AsyncLocalStorage context manager and the W3C propagator, like the NodeSDK does.
  provider.register();
  t = await startTestBed({
    label: 'otelc',
    log,
    metrics,
    topology: { services: platformDefinitions(), maxDeliver: 3, ackWait: '5s', backoff: ['1s'] },
  });
  ({ names, db, nats } = t);
  relay = new OutboxRelay({ db, nats, log, metrics, pollMs: 100 });
  relay.start();
  consumer = t.consumer({
    spec: spec('inventory-orders'),
    metrics,
    relay,
    statsIntervalMs: 200,
    handlers: {
      'orders.created': async ({ event, log: hlog, deliveryCount }) => {
        hlog.info({ orderId: event.data.orderId, deliveryCount }, 'test.handling');
        const n = (attempts.get(event.id) ?? 0) + 1;
        attempts.set(event.id, n);
        if (n === 1) throw new Error('fails once on purpose');
      },
    },
  });
  consumer.start();
});

afterAll(async () => {
  await consumer?.stop();
  await relay?.stop();
  await t?.stop();
  await provider.shutdown();
});

describe('messaging spans, logs and gauges in the kit runtime', () => {
  it('a redelivered message shows its delivery count, both attempts under the publish span', async () => {
    const orderId = '22222222-2222-4222-8222-222222222222';
    const e = makeEvent(names, 'orders.created', {
      version: 'v1',
      orderId,
      customerId: 'c',
      currency: 'USD',
      items: [{ productId: 'sku-1', quantity: 1 }],
      correlationId: 'corr-obs',
      occurredAt: new Date().toISOString(),
    });
    // The request that produced the event: the outbox stores its context with the row.
    await inSpan('POST /orders', { kind: SpanKind.SERVER }, () => db.tx((sql) => enqueue(sql, [e])));
    relay.wake();
    const name = `${e.subject} process`;
    await waitFor('two deliveries traced', () => exporter.getFinishedSpans().filter((s) => s.name === name).length >= 2, 15_000);

    const spans = exporter.getFinishedSpans();
    const root = spans.find((s) => s.name === 'POST /orders')!;
    const publish = spans.find((s) => s.name === `${e.subject} publish`)!;
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(publish.attributes).toMatchObject({
      'messaging.system': 'nats',
      'messaging.operation.type': 'publish',
      'messaging.destination.name': e.subject,
      'messaging.message.id': e.id,
    });

    const deliveries = spans
      .filter((s) => s.name === name)
      .sort((a, b) => Number(a.attributes['messaging.nats.delivery_count']) - Number(b.attributes['messaging.nats.delivery_count']));
    expect(deliveries.map((s) => s.attributes['messaging.nats.delivery_count'])).toEqual([1, 2]);
    for (const d of deliveries) {
      expect(d.kind).toBe(SpanKind.CONSUMER);
      expect(d.spanContext().traceId).toBe(root.spanContext().traceId);
      expect(d.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
      expect(d.attributes).toMatchObject({
        'messaging.system': 'nats',
        'messaging.operation.type': 'process',
        'messaging.destination.name': e.subject,
        'messaging.consumer.group.name': 'inventory-orders',
        'messaging.message.id': e.id,
      });
    }
    const [first, second] = deliveries as [tracing.ReadableSpan, tracing.ReadableSpan];
    expect(first.events.map((ev) => ev.name)).toContain('exception');
    expect(first.events.map((ev) => ev.name)).not.toContain('redelivery');
    const redelivery = second.events.find((ev) => ev.name === 'redelivery');
    expect(redelivery?.attributes?.['messaging.nats.delivery_count']).toBe(2);

    // Each attempt's log line carries that attempt's ids and the message's correlation id.
    const logged = lines.filter((l) => l.msg === 'test.handling' && l.orderId === orderId);
    expect(logged).toHaveLength(2);
    for (const l of logged) {
      const span = deliveries.find((d) => d.attributes['messaging.nats.delivery_count'] === l.deliveryCount)!;
      expect(l.trace_id).toBe(span.spanContext().traceId);
      expect(l.span_id).toBe(span.spanContext().spanId);
      expect(l.correlation_id).toBe('corr-obs');
    }
  });

  it('a poison message gets a dead_lettered span event and counts in orderflow_dlq_depth', async () => {
    const subject = names.subject('orders.created');
    const h = natsHeaders();
    h.set('Event-Type', 'orders.created');
    h.set('X-Correlation-ID', 'corr-poison');
    await nats.current!.js.publish(subject, 'not json', { headers: h, msgID: 'poison-1' });
    await waitFor(
      'dead_lettered event',
      () =>
        exporter
          .getFinishedSpans()
          .some((s) => s.attributes['messaging.message.id'] === 'poison-1' && s.events.some((ev) => ev.name === 'dead_lettered')),
      15_000,
    );
    const dlq = names.dlqSubject(spec('inventory-orders').streamName, 'inventory-orders');
    await waitFor('dlq depth gauge', async () => {
      const m = await metrics.dlqDepth.get();
      return m.values.find((v) => v.labels.subject === dlq)?.value === 1;
    });
    const dl = (await metrics.deadLettered.get()).values;
    expect(
      dl.reduce((a, v) => a + v.value, 0),
      JSON.stringify(dl),
    ).toBe(1);
  });

  it('consumer and outbox gauges are refreshed from JetStream and the outbox table', async () => {
    await waitFor('consumer gauges', async () => {
      const pending = (await metrics.consumerPending.get()).values.find((v) => v.labels.consumer === 'inventory-orders');
      const ackPending = (await metrics.consumerAckPending.get()).values.find((v) => v.labels.consumer === 'inventory-orders');
      return pending?.value === 0 && ackPending?.value === 0;
    });
    // A row nobody can publish (NATS is up, but the relay is stopped): the lag grows from the table.
    await relay.stop();
    const stale = makeEvent(names, 'orders.confirmed', {
      version: 'v1',
      orderId: '33333333-3333-4333-8333-333333333333',
      correlationId: 'c',
      occurredAt: new Date().toISOString(),
    });
    await db.tx((sql) => enqueue(sql, [stale]));
    await db.query(`UPDATE outbox SET created_at = now() - interval '42 seconds' WHERE event_id = $1`, [stale.id]);
    await relay.refreshLag();
    expect((await metrics.outboxLag.get()).values[0]!.value).toBeGreaterThanOrEqual(42);
    await relay.flushOnce();
    await relay.refreshLag();
    expect((await metrics.outboxLag.get()).values[0]!.value).toBe(0);
  });
});
