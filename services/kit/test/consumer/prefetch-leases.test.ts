/**
 * Finding 2: every message the client holds — queued behind a slow batch, not only the batch that
 * runs — is kept alive following the effective ack wait (backoff[0] = 1 s here). The old runtime
 * heartbeated only the running batch: its prefetched messages came back with inflated delivery
 * counts while the first batch was still running.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { makeEvent } from '@orderflow/kit';
import { startTestBed, waitFor, type TestBed } from '@orderflow/kit/testing';
import { consumerInfo, deadLettersOf, gate, orderCancelled } from './support.js';
import { platformDefinitions } from '../../../../test/support/topology.js';

let t: TestBed;
let nc: NatsConnection;

beforeAll(async () => {
  t = await startTestBed({ label: 'lease', topology: { services: platformDefinitions(), maxDeliver: 5, backoff: ['1s'] } });
  ({ nc } = t);
});

afterAll(() => t?.stop());

test('messages queued behind a slow batch are not redelivered: one delivery each, no MAX_DELIVERIES', async () => {
  const spec = t.spec('payment-orders');
  const control = t.spec('inventory-orders');
  const slow = gate();
  const deliveries = new Map<string, number[]>();
  const consumer = t.consumer({
    spec,
    batchSize: 2,
    workers: 1,
    handlers: {
      'orders.cancelled': async ({ event, deliveryCount }) => {
        deliveries.set(event.id, [...(deliveries.get(event.id) ?? []), deliveryCount]);
        if (deliveries.size === 1) await slow.wait;
      },
    },
  });
  const events = Array.from({ length: 20 }, () => orderCancelled(t.names));
  for (const e of events) await t.publish(e);
  consumer.start();
  try {
    await waitFor(
      'first batch running, the other messages in the client',
      async () => deliveries.size === 1 && (await consumerInfo(nc, spec)).num_ack_pending === 20,
    );
    // A clock made of facts: a message of the same stream on a durable with the same ack wait,
    // taken and neither acked nor kept alive, comes back after each ack wait. Twice = every
    // message our client took before it has outlived its ack wait at least once.
    const c = await jetstream(nc).consumers.get(control.streamName, control.durableName);
    await waitFor('two ack waits have passed', async () => ((await c.next({ expires: 2000 }))?.info.deliveryCount ?? 0) >= 3, 30_000, 0);
    slow.open();
    await waitFor('all 20 handled', () => events.every((e) => deliveries.has(e.id)), 30_000);
    await waitFor('all acked', async () => (await consumerInfo(nc, spec)).num_ack_pending === 0);
    // 20 deliveries for 20 messages: none went out a second time.
    expect((await consumerInfo(nc, spec)).delivered.consumer_seq).toBe(20);
    expect([...deliveries.values()].flat()).toEqual(Array(20).fill(1));
    expect(await deadLettersOf(nc, t.names, spec.durableName)).toEqual([]);
  } finally {
    slow.open();
    await consumer.stop();
  }
});

test('the client pulls no more than its window: the rest waits on the server, not unheartbeated in a buffer', async () => {
  const spec = t.spec('order-payments');
  const slow = gate();
  let started = 0;
  const consumer = t.consumer({
    spec,
    batchSize: 2,
    prefetch: 6,
    handlers: {
      'payments.failed': async () => {
        started++;
        await slow.wait;
      },
    },
  });
  const failed = Array.from({ length: 15 }, (_, i) =>
    makeEvent(t.names, 'payments.failed', {
      version: 'v1',
      orderId: randomUUID(),
      correlationId: `c-${i}`,
      occurredAt: new Date().toISOString(),
      reason: 'payment_declined',
      amount: 1,
    }),
  );
  for (const e of failed) await t.publish(e);
  consumer.start();
  try {
    await waitFor('first batch running', () => started > 0);
    await waitFor('window filled', () => consumer.held === 6);
    const info = await consumerInfo(nc, spec);
    expect(info.num_ack_pending).toBe(6);
    expect(info.num_pending).toBe(9);
  } finally {
    slow.open();
    await consumer.stop();
  }
});
