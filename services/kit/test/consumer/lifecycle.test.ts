/**
 * Finding 7 (runtime half): a message that waited for in-flight after-commit work starts as soon
 * as that work ends (the old #pump ran again only on the next arrival), and stop() while the
 * consumer is being looked up (between consumers.get and the first pull) returns instead of
 * starting a pull nobody will ever close.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { applyTopology, NatsManager, problems, type Db } from '@orderflow/kit';
import { jetstreamManager } from '@nats-io/jetstream';
import { startTestBed, TestNatsServer, waitFor, type TestBed } from '@orderflow/kit/testing';
import { connect } from '@nats-io/transport-node';
import { consumerInfo, gate, orderCancelled } from './support.js';
import { platformDefinitions } from '../../../../test/support/topology.js';

let t: TestBed;
let db: Db;
let nc: NatsConnection;

beforeAll(async () => {
  t = await startTestBed({
    label: 'life',
    migrations: [{ id: 'test-effects', sql: `CREATE TABLE effects (event_id text)` }],
    topology: { services: platformDefinitions(), maxDeliver: 5, backoff: ['5s'] },
  });
  ({ db, nc } = t);
});

afterAll(() => t?.stop());

test('a message waiting for after-commit work to finish starts when it finishes, not at the next arrival', async () => {
  const spec = t.spec('payment-orders');
  const afterCommit = gate();
  let afterCommitRunning = false;
  const first = orderCancelled(t.names);
  const second = orderCancelled(t.names);
  const deliveries = new Map<string, number>();
  const consumer = t.consumer({
    spec,
    concurrency: 1,
    handlers: {
      'orders.cancelled': async ({ sql, event, deliveryCount, afterCommit: later }) => {
        deliveries.set(event.id, deliveryCount);
        await sql.query(`INSERT INTO effects (event_id) VALUES ($1)`, [event.id]);
        if (event.id === first.id) {
          later(async () => {
            afterCommitRunning = true;
            await afterCommit.wait;
          });
        }
      },
    },
  });
  consumer.start();
  try {
    await t.publish(first);
    await waitFor('after-commit work of the first message running', () => afterCommitRunning);
    await t.publish(second);
    // The second message is in the client, waiting for the in-flight limit (1).
    await waitFor('second message delivered, not handled', async () => {
      const info = await consumerInfo(nc, spec);
      return info.num_pending === 0 && info.num_ack_pending === 1;
    });
    expect(await db.query(`SELECT 1 FROM effects WHERE event_id = $1`, [second.id])).toHaveLength(0);
    afterCommit.open();
    await waitFor(
      'second message handled',
      async () => (await db.query(`SELECT 1 FROM effects WHERE event_id = $1`, [second.id])).length === 1,
    );
    await waitFor('acked', async () => (await consumerInfo(nc, spec)).num_ack_pending === 0);
    // Started by the end of the after-commit work — not by its own redelivery after the ack wait.
    expect(deliveries.get(second.id)).toBe(1);
    expect((await consumerInfo(nc, spec)).delivered.consumer_seq).toBe(2);
  } finally {
    afterCommit.open();
    await consumer.stop();
  }
});

test('stop() while the consumer is being looked up returns (no pull started after it)', async () => {
  const server = await TestNatsServer.create({ name: 'lifecycle-nats' });
  await server.start();
  const own = new NatsManager({ servers: [server.url], name: 'consumer-lifecycle-own' }, t.log);
  let setup: NatsConnection | undefined;
  let stopped = false;
  try {
    setup = await connect({ servers: server.url });
    // The same topology on the private server: the same names and specs as the bed's.
    const notApplied = problems(await applyTopology(await jetstreamManager(setup), t.topology));
    if (notApplied.length) throw new Error(`topology not applied: ${JSON.stringify(notApplied)}`);
    own.start();
    const { nc: ownNc } = await own.ready();
    const consumer = t.consumer({ spec: t.spec('payment-orders'), nats: own, handlers: { 'orders.cancelled': async () => undefined } });
    // The server stops answering: the consumer lookup's request stays unanswered.
    server.pause();
    const before = ownNc.stats().outMsgs;
    consumer.start();
    await waitFor('consumer lookup sent', () => ownNc.stats().outMsgs > before);
    const stopping = consumer.stop().then(() => (stopped = true));
    server.resume();
    await waitFor('stop() returned', () => stopped, 15_000);
    await stopping;
    expect((await consumerInfo(setup, t.spec('payment-orders'))).num_waiting).toBe(0);
  } finally {
    server.resume();
    await own.stop();
    await setup?.close();
    await server.dispose();
  }
});
