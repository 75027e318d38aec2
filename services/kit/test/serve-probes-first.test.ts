import pg from 'pg';
import { afterEach, expect, test } from 'vitest';
import { startService, type RunningService } from '@orderflow/kit';
import { dropSchema, freePort, TEST_DATABASE_URL, TEST_NATS_URL, testNamespace, waitFor } from '@orderflow/kit/testing';
import { orderService } from '../../order-service/src/definition.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

test('probes answer while the database migrates: /health 200, /ready 503 naming the database, other routes 503; then ready', async () => {
  const schema = `probes_${testNamespace()}`;
  cleanups.push(() => dropSchema(schema));
  // Another replica migrating: hold the migration lock of this schema (migrate() waits on it).
  const holder = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await holder.connect();
  cleanups.push(() => holder.end());
  await holder.query(`SELECT pg_advisory_lock(hashtext($1))`, [`${schema}.migrations`]);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let svc: RunningService | undefined;
  const starting = startService(orderService(), {
    env: {
      PORT: String(port),
      LOG_LEVEL: 'silent',
      NATS_URL: TEST_NATS_URL,
      ORDERFLOW_NAMESPACE: testNamespace(),
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_SCHEMA: schema,
    },
  }).then((s) => (svc = s));
  cleanups.push(async () => (await starting).stop());

  const health = await waitFor('/health while migrating', async () => (await fetch(`${url}/health`).catch(() => undefined))?.ok);
  expect(health).toBe(true);
  expect(svc).toBeUndefined();
  const ready = await fetch(`${url}/ready`);
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { down: Record<string, string> }).down.database).toMatch(/migrating/);
  const early = await fetch(`${url}/orders/00000000-0000-4000-8000-000000000000`);
  expect(early.status).toBe(503);
  expect(early.headers.get('retry-after')).toBeTruthy();
  expect(early.headers.get('content-type')).toMatch(/problem\+json/);

  await holder.query(`SELECT pg_advisory_unlock(hashtext($1))`, [`${schema}.migrations`]);
  await starting;
  await waitFor('/ready once migrated and connected', async () => (await fetch(`${url}/ready`)).ok);
  expect((await fetch(`${url}/orders/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
});
