import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import {
  EventConsumer,
  makeEvent,
  OutboxRelay,
  type ConsumerSpec,
  type Db,
  type EventData,
  type EventType,
  type Handlers,
  type Logger,
  type Names,
  type NatsManager,
  type OutgoingEvent,
} from '@orderflow/kit';
import { readStream, startTestBed, waitFor, type TestBed } from '@orderflow/kit/testing';
import { platformDefinitions } from '../../../test/support/topology.js';

let t: TestBed;
let ns: string, names: Names, log: Logger, db: Db, nc: NatsConnection, nats: NatsManager;

beforeAll(async () => {
  t = await startTestBed({
    label: 'consumer',
    migrations: [{ id: 'test-effects', sql: `CREATE TABLE effects (event_id text, order_id text, attempt int)` }],
    topology: { services: platformDefinitions(), maxDeliver: 3, ackWait: '5s', backoff: ['100ms'] },
  });
  ({ namespace: ns, names, log, db, nc, nats } = t);
});
afterAll(() => t?.stop());

const spec = (durable: string): ConsumerSpec => t.spec(durable);

/**
 * A v1 event about an order, occurring now. The fields beyond the envelope are not type-checked
 * here: makeEvent validates the whole event against its schema and throws naming the field.
 */
function v1Event<T extends EventType>(type: T, orderId: string, correlationId: string, fields: object): OutgoingEvent {
  const data = { version: 'v1', orderId, correlationId, occurredAt: new Date().toISOString(), ...fields };
  return makeEvent(names, type, data as unknown as EventData<T>);
}

function orderCreated(orderId: string) {
  return v1Event('orders.created', orderId, `corr-${orderId.slice(0, 8)}`, {
    customerId: 'c',
    currency: 'USD',
    items: [{ productId: 'sku-1', quantity: 1 }],
  });
}

async function publish(subject: string, payload: string, hdrs: Record<string, string>, msgID?: string) {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
  return nats.current!.js.publish(subject, payload, { headers: h, ...(msgID ? { msgID } : {}) });
}

describe('consumer runtime', () => {
  test('an event delivered again (same event id) has its effects once; outgoing events go through the outbox', async () => {
    const relay = new OutboxRelay({ db, nats, log });
    relay.start();
    const calls: string[] = [];
    const handlers: Handlers = {
      'orders.created': async ({ sql, event, emit }) => {
        calls.push(event.id);
        await sql.query(`INSERT INTO effects (event_id, order_id, attempt) VALUES ($1, $2, 1)`, [event.id, event.data.orderId]);
        emit('orders.confirmed', {
          version: 'v1',
          orderId: event.data.orderId,
          correlationId: event.correlationId,
          occurredAt: new Date().toISOString(),
        });
      },
    };
    const consumer = new EventConsumer({ spec: spec('inventory-orders'), names, db, nats, log, relay, handlers });
    consumer.start();
    const e = orderCreated('11111111-1111-4111-8111-111111111111');
    // The same event again after JetStream's duplicate window has passed (shrunk here to
    // 100 ms): the stream stores it a second time, only processed_events stops the effect. The
    // window shrinks before the first publish: the server's purge timer is armed with the window
    // in force when it first tracks an id (shrunk after, the id was kept for the old 2 minutes —
    // red once in CI on 2.15).
    const streamName = spec('inventory-orders').streamName;
    const cfg = (await nats.current!.jsm.streams.info(streamName)).config;
    await nats.current!.jsm.streams.update(streamName, { ...cfg, duplicate_window: 100_000_000 });
    await publish(e.subject, e.payload, e.headers, e.id);
    // The server forgets ids on a timer of its own: publish again until it stores the copy (a
    // fact), instead of sleeping past the window and hoping the purge ran (it did not, once, on a
    // loaded machine). A copy sent while the id is still remembered is dropped by the server.
    await waitFor(
      'the copy stored after the duplicate window',
      async () => !(await publish(e.subject, e.payload, e.headers, e.id)).duplicate,
    );
    await waitFor('confirmed event published', async () =>
      (await readStream(nc, `${ns.toUpperCase()}_ORDERS`)).some((m) => m.subject.endsWith('orders.confirmed')),
    );
    await waitFor('both deliveries acked', async () => {
      const info = await nats.current!.jsm.consumers.info(spec('inventory-orders').streamName, 'inventory-orders');
      return info.num_ack_pending === 0 && info.num_pending === 0;
    });
    await consumer.stop();
    await relay.stop();
    expect(calls).toEqual([e.id]);
    expect(await db.query(`SELECT * FROM effects WHERE event_id = $1`, [e.id])).toHaveLength(1);
    const confirmed = (await readStream(nc, `${ns.toUpperCase()}_ORDERS`)).filter((m) => m.subject.endsWith('orders.confirmed'));
    expect(confirmed).toHaveLength(1);
    expect(confirmed[0]!.headers['X-Correlation-ID']).toBe(e.headers['X-Correlation-ID']);
  });

  test('a poison message goes to the DLQ with its reason and the consumer keeps going', async () => {
    const seen: string[] = [];
    const handlers: Handlers = { 'inventory.reserved': async ({ event }) => void seen.push(event.data.orderId) };
    const consumer = new EventConsumer({ spec: spec('payment-inventory'), names, db, nats, log, handlers });
    consumer.start();
    const subject = names.subject('inventory.reserved');
    await publish(
      subject,
      '{"version":"v1","orderId":"not-a-uuid"}',
      { 'Event-Type': 'inventory.reserved', 'Event-Version': 'v1', 'X-Correlation-ID': 'poison-1', 'Nats-Msg-Id': 'poison-1' },
      'poison-1',
    );
    const good = v1Event('inventory.reserved', '22222222-2222-4222-8222-222222222222', 'c2', {
      currency: 'USD',
      items: [{ productId: 'sku-1', quantity: 1, unitPrice: 5 }],
      amount: 5,
    });
    await publish(good.subject, good.payload, good.headers, good.id);
    await waitFor('good message handled', () => seen.length === 1);
    const dlqStream = `${ns.toUpperCase()}_DLQ`;
    await waitFor('poison in DLQ', async () => (await readStream(nc, dlqStream)).length === 1);
    const [dead] = await readStream(nc, dlqStream);
    expect(dead!.subject).toBe(names.dlqSubject(`${ns.toUpperCase()}_INVENTORY`, 'payment-inventory'));
    expect(dead!.headers['Dlq-Reason']).toMatch(/invalid inventory.reserved v1: orderId/);
    expect(dead!.headers['Dlq-Original-Subject']).toBe(subject);
    expect(dead!.headers['Dlq-Deliveries']).toBe('1');
    expect(dead!.headers['X-Correlation-ID']).toBe('poison-1');
    expect(dead!.json).toEqual({ version: 'v1', orderId: 'not-a-uuid' });
    await consumer.stop();
  });

  test('a handler that always throws runs exactly maxDeliver times, then the message is in the DLQ', async () => {
    let attempts = 0;
    const handlers: Handlers = {
      'payments.failed': async () => {
        attempts++;
        throw new Error('boom');
      },
    };
    const consumer = new EventConsumer({ spec: spec('inventory-payments'), names, db, nats, log, handlers });
    consumer.start();
    const e = v1Event('payments.failed', '33333333-3333-4333-8333-333333333333', 'c3', {
      reason: 'payment_declined',
      amount: 1,
    });
    await publish(e.subject, e.payload, e.headers, e.id);
    const dlqStream = `${ns.toUpperCase()}_DLQ`;
    await waitFor(
      'in DLQ',
      async () => (await readStream(nc, dlqStream)).some((m) => m.headers['Dlq-Consumer'] === 'inventory-payments'),
      20_000,
    );
    // Nothing further is delivered once the message is terminated: the server holds nothing more
    // for this durable (neither pending nor awaiting an ack), then the count is final.
    await waitFor('terminated: nothing pending or unacked', async () => {
      const info = await nats.current!.jsm.consumers.info(spec('inventory-payments').streamName, 'inventory-payments');
      return info.num_ack_pending === 0 && info.num_pending === 0;
    });
    await consumer.stop();
    expect(attempts).toBe(3);
    const dead = (await readStream(nc, dlqStream)).find((m) => m.headers['Dlq-Consumer'] === 'inventory-payments')!;
    expect(dead.headers['Dlq-Deliveries']).toBe('3');
    expect(dead.headers['Dlq-Reason']).toMatch(/handler failed on delivery 3 of 3: boom/);
    expect(dead.headers['Dlq-Original-Msg-Id']).toBe(e.id);
    // No effect recorded for a failed handler: its transaction rolled back each time.
    expect(await db.query(`SELECT 1 FROM processed_events WHERE event_id = $1`, [e.id])).toHaveLength(0);
  });
});
