import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { TEST_DATABASE_URL, startTestService, waitFor, type TestService } from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

// The chaos run's `postgres-terminate` in small: every backend of the service is terminated again
// and again while requests are in flight. Before every pg client had its own error listener, a
// termination could reach a client with none (`Unhandled 'error' event`) and end the process.
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);
let t: TestService;
let admin: pg.Client;

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  // A small pool, so requests queue for connections and a released one passes straight on.
  t = await startTestService(orderService(), { label: 'pgterm', env: { DB_POOL_MAX: '3' } });
  admin = new pg.Client({ connectionString: TEST_DATABASE_URL, application_name: 'pgterm-admin' });
  await admin.connect();
});
afterAll(async () => {
  process.off('uncaughtException', onUncaught);
  await admin?.end();
  await t?.stop();
});

const order = (i: number) =>
  fetch(`${t.svc.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `pgterm-${i}` },
    body: JSON.stringify({ customerId: `c-${i}`, items: [{ productId: 'sku-1', quantity: 1 }] }),
  });

test(
  'backends terminated under load, idle and checked out: the process stays up, answers 503 (never 500) ' +
    'meanwhile, and takes orders after',
  async () => {
    const schema = t.svc.ctx.db.schema;
    const statuses = new Map<number, number>();
    let stop = false;
    let n = 0;
    const client = async () => {
      while (!stop) {
        const i = n++;
        const r = await order(i);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        await r.arrayBuffer();
        if (i % 3 === 0) await (await fetch(`${t.svc.url}/orders/00000000-0000-4000-8000-000000000000`)).arrayBuffer();
      }
    };
    const clients = Array.from({ length: 12 }, () => client());
    let killed = 0;
    try {
      for (let round = 0; round < 100 && uncaught.length === 0; round++) {
        const r = await admin.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1`,
          [schema],
        );
        killed += r.rows[0]!.n;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    expect(uncaught).toEqual([]);
    expect(killed).toBeGreaterThan(0);
    expect((await fetch(`${t.svc.url}/health`)).status).toBe(200);
    // Refused requests were 503s the client may retry, not 500s.
    expect([...statuses.keys()].filter((s) => s !== 202 && s !== 200 && s !== 503)).toEqual([]);
    await waitFor('ready after the storm', async () => (await fetch(`${t.svc.url}/ready`)).ok, 30_000);
    expect((await order(1_000_000)).status).toBe(202);
  },
);
