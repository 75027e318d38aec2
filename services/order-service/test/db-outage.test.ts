import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { startService, type RunningService } from '@orderflow/kit';
import {
  deleteNamespaceStreams,
  readStream,
  TEST_NATS_URL,
  testNamespace,
  testNats,
  TestPostgresServer,
  waitFor,
} from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

// The database goes away for real: a private Postgres cluster this test stops and starts (the
// machine's shared server is never touched).
const ns = testNamespace('dbout');
let pg: TestPostgresServer;
let svc: RunningService;
let nc: NatsConnection;

beforeAll(async () => {
  pg = await TestPostgresServer.create({ database: 'test' });
  await pg.start();
  svc = await startService(orderService(), {
    env: {
      PORT: '0',
      NATS_URL: TEST_NATS_URL,
      ORDERFLOW_NAMESPACE: ns,
      DATABASE_URL: pg.url,
      DATABASE_SCHEMA: 'order_service',
      LOG_LEVEL: 'silent',
      HTTP_RETRY_AFTER_SECONDS: '3',
      DB_CONNECT_TIMEOUT_MS: '2000',
    },
  });
  nc = await testNats();
  await waitFor('ready', async () => (await fetch(`${svc.url}/ready`)).ok, 30_000);
});
afterAll(async () => {
  await svc?.stop();
  if (nc) {
    await deleteNamespaceStreams(nc, ns);
    await nc.close();
  }
  await pg?.cleanup();
});

const order = (customerId: string, key?: string) =>
  fetch(`${svc.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify({ customerId, items: [{ productId: 'sku-1', quantity: 1 }] }),
  });

async function expectUnavailable(r: Response): Promise<void> {
  expect(r.status).toBe(503);
  expect(r.headers.get('content-type')).toBe('application/problem+json');
  expect(r.headers.get('retry-after')).toBe('3');
  expect(await r.json()).toMatchObject({ status: 503, dependency: 'database' });
}

test(
  'database stopped: writes answer 503 problem+json with Retry-After, /ready names the database, /health ' +
    'stays 200; after restart orders flow and none is lost',
  async () => {
    const accepted: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await order(`before-${i}`);
      expect(r.status).toBe(202);
      accepted.push(((await r.json()) as { orderId: string }).orderId);
    }

    await pg.stop('fast');

    await expectUnavailable(await order('during'));
    await expectUnavailable(await order('during-keyed', 'outage-key-1'));
    // Concurrent POSTs are written as groups (one statement each): a group fails as a whole, 503
    // for every request in it (kit test group-commit.test.ts: no retry one by one then).
    for (const r of await Promise.all([order('during-a'), order('during-b'), order('during-c', 'outage-key-2'), order('during-d')])) {
      await expectUnavailable(r);
    }
    await expectUnavailable(await fetch(`${svc.url}/orders/${accepted[0]}`));
    const ready = await fetch(`${svc.url}/ready`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('retry-after')).toBe('3');
    expect(((await ready.json()) as { down: Record<string, string> }).down).toHaveProperty('database');
    expect((await fetch(`${svc.url}/health`)).status).toBe(200);

    await pg.start();

    // The client retries what was refused, with its Idempotency-Key: one order.
    const retried = await waitFor(
      'an order accepted after the restart',
      async () => {
        const r = await order('during-keyed', 'outage-key-1');
        return r.status === 202 ? ((await r.json()) as { orderId: string }).orderId : undefined;
      },
      30_000,
      200,
    );
    accepted.push(retried);
    await waitFor('ready again', async () => (await fetch(`${svc.url}/ready`)).ok, 30_000);
    const again = await order('during-keyed', 'outage-key-1');
    expect(again.status).toBe(200);
    expect(((await again.json()) as { orderId: string }).orderId).toBe(retried);

    // Nothing lost: every accepted order is stored and its orders.created was published once.
    for (const id of accepted) expect((await fetch(`${svc.url}/orders/${id}`)).status).toBe(200);
    const stream = `${ns.toUpperCase()}_ORDERS`;
    await waitFor('every accepted order published', async () => (await readStream(nc, stream)).length >= accepted.length, 30_000);
    const published = (await readStream(nc, stream))
      .filter((m) => m.subject.endsWith('orders.created'))
      .map((m) => (m.json as { orderId: string }).orderId);
    expect(published.sort()).toEqual([...accepted].sort());
  },
);
