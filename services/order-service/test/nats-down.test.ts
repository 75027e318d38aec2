import { afterAll, beforeAll, expect, test } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { startService, type RunningService } from '@orderflow/kit';
import { readStream, testDbEnv, testNamespace, TestNatsServer, waitFor } from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

// A private nats-server on a spare port, so the test can have NATS absent at start-up.
let nats: TestNatsServer;
let svc: RunningService;
let cleanupDb: () => Promise<void>;
const ns = testNamespace();

beforeAll(async () => {
  nats = await TestNatsServer.create();
  const db = await testDbEnv('postgres', 'natsdown');
  cleanupDb = db.cleanup;
  svc = await startService(orderService(), {
    env: { PORT: '0', NATS_URL: nats.url, ORDERFLOW_NAMESPACE: ns, LOG_LEVEL: 'silent', ...db.env },
  });
});
afterAll(async () => {
  await svc?.stop();
  await nats?.dispose();
  await cleanupDb?.();
});

test('NATS down at start: the service starts, is not ready, takes orders, and publishes them once NATS is back', async () => {
  expect((await fetch(`${svc.url}/health`)).status).toBe(200);
  const ready = await fetch(`${svc.url}/ready`);
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { down: Record<string, string> }).down).toHaveProperty('nats');

  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${svc.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: `offline-${i}`, items: [{ productId: 'sku-1', quantity: 1 }] }),
    });
    expect(r.status).toBe(202);
    ids.push(((await r.json()) as { orderId: string }).orderId);
  }
  expect((await svc.ctx.db.query(`SELECT 1 FROM outbox`)).length).toBe(3);

  await nats.start();
  await waitFor('ready after NATS came up', async () => (await fetch(`${svc.url}/ready`)).ok, 30_000);
  const nc = await connect({ servers: nats.url });
  try {
    await waitFor('3 events', async () => (await readStream(nc, `${ns.toUpperCase()}_ORDERS`)).length === 3, 15_000);
    const msgs = await readStream(nc, `${ns.toUpperCase()}_ORDERS`);
    expect(msgs.map((m) => (m.json as { orderId: string }).orderId)).toEqual(ids);
    expect((await svc.ctx.db.query(`SELECT 1 FROM outbox`)).length).toBe(0);

    // And through a broker outage after start: the connection comes back on its own.
    await nats.stop();
    await waitFor('not ready while NATS is down', async () => (await fetch(`${svc.url}/ready`)).status === 503, 15_000);
    const r = await fetch(`${svc.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'during-outage', items: [{ productId: 'sku-1', quantity: 1 }] }),
    });
    expect(r.status).toBe(202);
    await nats.start();
  } finally {
    await nc.close();
  }
  const nc2 = await connect({ servers: nats.url });
  try {
    await waitFor('4th event after reconnect', async () => (await readStream(nc2, `${ns.toUpperCase()}_ORDERS`)).length === 4, 30_000);
  } finally {
    await nc2.close();
  }
});
