import { afterAll, expect, test } from 'vitest';
import { startService } from '@orderflow/kit';
import { deleteNamespaceStreams, TEST_NATS_URL, testDbEnv, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

const ns = testNamespace();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups) await c();
  const nc = await testNats();
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});

test('graceful stop: readiness goes 503 first while requests are still served, then everything drains', async () => {
  const db = await testDbEnv('postgres', 'shutdown');
  cleanups.push(db.cleanup);
  const svc = await startService(orderService(), {
    env: { PORT: '0', NATS_URL: TEST_NATS_URL, ORDERFLOW_NAMESPACE: ns, LOG_LEVEL: 'silent', SHUTDOWN_DRAIN_DELAY_MS: '1500', ...db.env },
  });
  await waitFor('ready', async () => (await fetch(`${svc.url}/ready`)).ok);
  const stopped = svc.stop();
  const ready = await fetch(`${svc.url}/ready`);
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { down: Record<string, string> }).down).toHaveProperty('shutdown');
  expect((await fetch(`${svc.url}/health`)).status).toBe(200);
  // Endpoints are still being removed from the load balancer: a late request is served.
  const late = await fetch(`${svc.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ customerId: 'late', items: [{ productId: 'p', quantity: 1 }] }),
  });
  expect(late.status).toBe(202);
  await stopped;
  await expect(fetch(`${svc.url}/health`)).rejects.toThrow();
  // The late order's event was flushed by the final relay pass before NATS drained.
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: db.env.DATABASE_URL, options: `-c search_path=${db.env.DATABASE_SCHEMA}` });
  await c.connect();
  try {
    expect((await c.query('SELECT count(*)::int AS n FROM outbox')).rows[0].n).toBe(0);
    expect((await c.query('SELECT count(*)::int AS n FROM orders')).rows[0].n).toBe(1);
  } finally {
    await c.end();
  }
});
