/**
 * Finding 5: a hung handler does not hold its lease forever. With one worker, the old runtime kept
 * heartbeating a batch whose handler never returned, and the whole durable stopped. Now the
 * handler deadline abandons the work — its transaction is rolled back (its session terminated,
 * so its locks go too) — the message is nak'ed with delay, and the next messages go on.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Db } from '@orderflow/kit';
import { startTestBed, waitFor, type TestBed } from '@orderflow/kit/testing';
import { consumerInfo, deadLettersOf, gate, orderCancelled } from './support.js';
import { platformDefinitions } from '../../../../test/support/topology.js';

let t: TestBed;
let db: Db;
let nc: NatsConnection;

beforeAll(async () => {
  t = await startTestBed({
    label: 'deadline',
    migrations: [{ id: 'test-effects', sql: `CREATE TABLE effects (event_id text, delivery int)` }],
    topology: { services: platformDefinitions(), maxDeliver: 5, backoff: ['1s'] },
  });
  ({ db, nc } = t);
});

afterAll(() => t?.stop());

test('a handler that hangs is abandoned at its deadline and rolled back; the durable goes on; the message comes back', async () => {
  const spec = t.spec('payment-orders');
  const hang = gate();
  const stuck = orderCancelled(t.names);
  const next = orderCancelled(t.names);
  const calls: Array<[string, number]> = [];
  const consumer = t.consumer({
    spec,
    workers: 1,
    handlerTimeoutMs: 1000,
    handlers: {
      'orders.cancelled': async ({ sql, event, deliveryCount }) => {
        calls.push([event.id, deliveryCount]);
        await sql.query(`INSERT INTO effects (event_id, delivery) VALUES ($1, $2)`, [event.id, deliveryCount]);
        // The first delivery of `stuck` waits on something that never answers.
        if (event.id === stuck.id && deliveryCount === 1) await hang.wait;
      },
    },
  });
  consumer.start();
  try {
    await t.publish(stuck);
    await waitFor('stuck handler running', () => calls.length === 1);
    await t.publish(next);
    await waitFor(
      'the next message handled while the first hangs',
      async () => (await db.query(`SELECT 1 FROM effects WHERE event_id = $1`, [next.id])).length === 1,
      20_000,
    );
    await waitFor(
      'the hung message redelivered and handled',
      async () => (await db.query(`SELECT 1 FROM effects WHERE event_id = $1 AND delivery = 2`, [stuck.id])).length === 1,
      20_000,
    );
    await waitFor('all acked', async () => (await consumerInfo(nc, spec)).num_ack_pending === 0);
    // The abandoned attempt's insert was rolled back: one effect, from the second delivery.
    expect(await db.query(`SELECT delivery FROM effects WHERE event_id = $1`, [stuck.id])).toEqual([{ delivery: 2 }]);
    expect(await db.query(`SELECT 1 FROM processed_events WHERE event_id = $1`, [stuck.id])).toHaveLength(1);
    expect(await deadLettersOf(nc, t.names, spec.durableName)).toEqual([]);
  } finally {
    hang.open();
    await consumer.stop();
  }
});
