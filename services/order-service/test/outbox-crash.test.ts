import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  createLogger,
  NatsManager,
  OutboxRelay,
  startService,
  type Db,
  type FirstStatement,
  type Row,
  type RunningService,
  type TxSql,
} from '@orderflow/kit';
import { deleteNamespaceStreams, readStream, testDbEnv, testNamespace, testNats, TEST_NATS_URL, waitFor } from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

const ns = testNamespace();
const stream = `${ns.toUpperCase()}_ORDERS`;
let svc: RunningService;
let nc: NatsConnection;
let cleanupDb: () => Promise<void>;
const log = createLogger('test', 'silent');

beforeAll(async () => {
  const db = await testDbEnv('postgres', 'outbox');
  cleanupDb = db.cleanup;
  svc = await startService(orderService(), {
    env: { PORT: '0', NATS_URL: TEST_NATS_URL, ORDERFLOW_NAMESPACE: ns, LOG_LEVEL: 'silent', ...db.env },
  });
  nc = await testNats();
  await waitFor('ready', async () => (await fetch(`${svc.url}/ready`)).ok);
  // The service's own relay stays out of the way: this test drives relays by hand.
  await svc.ctx.relay.stop();
});
afterAll(async () => {
  await svc?.stop();
  await deleteNamespaceStreams(nc, ns);
  await nc?.close();
  await cleanupDb?.();
});

/**
 * A database whose relay transaction dies after the publish, before its commit, as if the process
 * died there: the relay's claim deletes the rows it publishes (Postgres), so the crash point is
 * the commit; a DELETE of published rows (PGlite) fails likewise.
 */
function crashingAfterPublish(db: Db): Db {
  const crash = () => Promise.reject(new Error('simulated crash after publish'));
  return {
    ...db,
    query: (text, params) => (/^\s*DELETE FROM outbox/i.test(text) ? crash() : db.query(text, params)),
    txFrom: <R extends Row, T>(first: FirstStatement, fn: (rows: R[], sql: TxSql) => Promise<T>) =>
      db.txFrom<R, T>(first, async (rows, sql) => {
        await fn(rows, sql);
        return crash();
      }),
  };
}

test('a relay that dies between publish and mark-sent republishes with the same id: exactly one message', async () => {
  const orders = await Promise.all(
    Array.from({ length: 5 }, async (_, i) => {
      const r = await fetch(`${svc.url}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ customerId: `crash-${i}`, items: [{ productId: 'sku-1', quantity: 1 }] }),
      });
      expect(r.status).toBe(202);
      return ((await r.json()) as { orderId: string }).orderId;
    }),
  );
  const nats = new NatsManager({ servers: [TEST_NATS_URL], name: 'relay-test' }, log);
  nats.start();
  await nats.ready();
  try {
    const dying = new OutboxRelay({ db: crashingAfterPublish(svc.ctx.db), nats, log });
    await expect(dying.flushOnce()).rejects.toThrow(/simulated crash/);
    // The rows are still there: the "crash" happened after the publish.
    expect((await svc.ctx.db.query(`SELECT 1 FROM outbox`)).length).toBe(5);
    expect((await readStream(nc, stream)).length).toBe(5);

    // A restarted relay publishes the same rows again; JetStream drops them as duplicates.
    const restarted = new OutboxRelay({ db: svc.ctx.db, nats, log });
    expect(await restarted.flushOnce()).toBe(5);
    expect((await svc.ctx.db.query(`SELECT 1 FROM outbox`)).length).toBe(0);
    const msgs = await readStream(nc, stream);
    expect(msgs.map((m) => (m.json as { orderId: string }).orderId).sort()).toEqual([...orders].sort());
  } finally {
    await nats.stop();
  }
});

test('rows committed while no relay runs are published by the next one, in id order', async () => {
  const before = (await readStream(nc, stream)).length;
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await fetch(`${svc.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: `seq-${i}`, items: [{ productId: 'sku-2', quantity: 1 }] }),
    });
    ids.push(((await r.json()) as { orderId: string }).orderId);
  }
  const nats = new NatsManager({ servers: [TEST_NATS_URL], name: 'relay-test-2' }, log);
  nats.start();
  await nats.ready();
  const relay = new OutboxRelay({ db: svc.ctx.db, nats, log, batchSize: 7 });
  relay.start();
  try {
    await waitFor('all published', async () => (await readStream(nc, stream)).length === before + 20);
    const published = (await readStream(nc, stream)).slice(before).map((m) => (m.json as { orderId: string }).orderId);
    expect(published).toEqual(ids);
  } finally {
    await relay.stop();
    await nats.stop();
  }
});
