/**
 * Linger (CONSUMER_LINGER_MS / OUTBOX_LINGER_MS): under light load a message arriving at an idle
 * consumer, or a commit waking an idle relay, waits a little for company so one transaction
 * serves several; a consumer's wait only when the recent rate makes company likely. Real NATS and Postgres; the batches are read from the transactions themselves
 * (txid) and from the batch-size histograms.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { createMetrics, enqueue, makeEvent, OutboxRelay, type Db, type EventData, type Handlers, type OutgoingEvent } from '@orderflow/kit';
import { startTestBed, waitFor, type TestBed } from '@orderflow/kit/testing';
import { platformDefinitions } from '../../../../test/support/topology.js';

let t: TestBed;

beforeAll(async () => {
  t = await startTestBed({
    label: 'linger',
    migrations: [{ id: 'test-linger', sql: `CREATE TABLE handled (event_id text PRIMARY KEY, txid bigint)` }],
    topology: { services: platformDefinitions(), maxDeliver: 3, ackWait: '30s', backoff: ['1s'] },
  });
  await (await jetstreamManager(t.nc)).streams.add({ name: `${t.namespace.toUpperCase()}_LINGER`, subjects: [`${t.namespace}.linger.>`] });
});
afterAll(() => t?.stop());

function reserved(): OutgoingEvent {
  const data = {
    version: 'v1',
    orderId: randomUUID(),
    correlationId: `corr-${randomUUID().slice(0, 8)}`,
    occurredAt: new Date().toISOString(),
    currency: 'USD',
    amount: 5,
    items: [{ productId: 'sku-1', quantity: 1, unitPrice: 5 }],
  };
  return makeEvent(t.names, 'inventory.reserved', data as unknown as EventData<'inventory.reserved'>);
}

/** Each handled event with the transaction that handled it. */
const recordTx: Handlers = {
  'inventory.reserved': async ({ sql, event }) => {
    await sql.query(`INSERT INTO handled (event_id, txid) VALUES ($1, txid_current())`, [event.id]);
  },
};

const txidsOf = async (db: Db, ids: string[]): Promise<Map<string, string>> =>
  new Map(
    (await db.query<{ event_id: string; txid: string }>(`SELECT event_id, txid::text FROM handled WHERE event_id = ANY($1)`, [ids])).map(
      (r) => [r.event_id, r.txid],
    ),
  );

describe('consumer linger', () => {
  test('messages published one by one to an idle consumer are handled in one transaction', async () => {
    const metrics = createMetrics('linger-test');
    // The linger cannot run out while the test publishes: the batch starts when it is full.
    const consumer = t.consumer({
      spec: t.spec('payment-inventory'),
      handlers: recordTx,
      metrics,
      batchSize: 5,
      lingerMs: 120_000,
      lingerMinExpected: 0,
    });
    consumer.start();
    try {
      const events = Array.from({ length: 5 }, reserved);
      // Each publish waits for its ack: the messages reach the consumer one at a time.
      for (const e of events) await t.publish(e);
      const ids = events.map((e) => e.id);
      const txids = await waitFor('all five handled', async () => {
        const m = await txidsOf(t.db, ids);
        return m.size === 5 ? m : undefined;
      });
      expect(new Set(txids.values()).size).toBe(1);
      const batches = (await metrics.consumerBatchSize.get()).values;
      expect(batches.find((v) => v.metricName === 'orderflow_consumer_batch_size_count')?.value).toBe(1);
      expect(batches.find((v) => v.metricName === 'orderflow_consumer_batch_size_sum')?.value).toBe(5);
    } finally {
      await consumer.stop();
    }
  });

  test('by the recent rate: the first message at rest is handled at once, however long the linger; those after it wait for company', async () => {
    const metrics = createMetrics('linger-rate-test');
    // Default lingerMinExpected: nothing came before the first message, so no company is
    // expected and it goes alone; once one has come, 120 s of linger expect plenty.
    const consumer = t.consumer({ spec: t.spec('payment-inventory'), handlers: recordTx, metrics, batchSize: 5, lingerMs: 120_000 });
    consumer.start();
    try {
      const events = Array.from({ length: 6 }, reserved);
      await t.publish(events[0]!);
      // Would time out if the lone first message waited out its linger.
      await waitFor('the first handled', async () => (await txidsOf(t.db, [events[0]!.id])).size === 1);
      for (const e of events.slice(1)) await t.publish(e);
      const ids = events.map((e) => e.id);
      const txids = await waitFor('all six handled', async () => {
        const m = await txidsOf(t.db, ids);
        return m.size === 6 ? m : undefined;
      });
      const rest = new Set(ids.slice(1).map((id) => txids.get(id)));
      expect(rest.size).toBe(1);
      expect(rest.has(txids.get(ids[0]!))).toBe(false);
      const batches = (await metrics.consumerBatchSize.get()).values;
      expect(batches.find((v) => v.metricName === 'orderflow_consumer_batch_size_count')?.value).toBe(2);
    } finally {
      await consumer.stop();
    }
  });

  test('stop() does not wait out the linger: what is queued is handled and acked at once', async () => {
    const consumer = t.consumer({ spec: t.spec('payment-inventory'), handlers: recordTx, lingerMs: 600_000, lingerMinExpected: 0 });
    consumer.start();
    const e = reserved();
    await t.publish(e);
    const info = () => t.nats.current!.jsm.consumers.info(t.spec('payment-inventory').streamName, 'payment-inventory');
    // Delivered, not handled: it lingers.
    await waitFor('the message in the consumer’s hands', async () => (await info()).num_ack_pending === 1);
    expect((await txidsOf(t.db, [e.id])).size).toBe(0);
    await consumer.stop();
    expect((await txidsOf(t.db, [e.id])).size).toBe(1);
    await waitFor('acked', async () => (await info()).num_ack_pending === 0);
  });
});

describe('outbox relay linger', () => {
  test('a commit waking an idle relay waits for the next ones: one claim publishes all three', async () => {
    const metrics = createMetrics('linger-relay-test');
    const subject = (n: number) => `${t.namespace}.linger.${n}`;
    const row = (n: number): OutgoingEvent => {
      const id = randomUUID();
      return { id, type: 'orders.created', version: 'v1', subject: subject(n), headers: {}, payload: JSON.stringify({ id }) };
    };
    // The relay's claims, counted on the real database it is given: the test starts once the
    // first (empty) claim is over, so every row below goes through a wake().
    let claims = 0;
    const db: Db = { ...t.db, txFrom: (first, fn) => t.db.txFrom(first, fn).finally(() => claims++) };
    const relay = new OutboxRelay({ db, nats: t.nats, log: t.log, metrics, pollMs: 600_000, lingerMs: 5_000 });
    relay.start();
    try {
      await waitFor('the first claim', () => claims >= 1);
      await t.db.tx((sql) => enqueue(sql, [row(1)]));
      relay.wake();
      await t.db.tx((sql) => enqueue(sql, [row(2)]));
      relay.wake();
      await t.db.tx((sql) => enqueue(sql, [row(3)]));
      relay.wake();
      await waitFor('all three published', async () => (await metrics.outboxRelayed.get()).values[0]?.value === 3, 30_000);
      const batches = (await metrics.outboxBatchSize.get()).values;
      expect(batches.find((v) => v.metricName === 'orderflow_outbox_relay_batch_size_count')?.value).toBe(1);
      expect(batches.find((v) => v.metricName === 'orderflow_outbox_relay_batch_size_sum')?.value).toBe(3);
    } finally {
      await relay.stop();
    }
  });
});
