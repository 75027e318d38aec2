/**
 * POST /orders writes concurrent orders as groups, one statement per group (orders/group-commit.ts).
 * To make a group form for certain, a second connection holds a SHARE lock on `orders`: the first
 * POSTs' statements (one per writer, GROUPS_IN_FLIGHT) wait on it (seen in pg_stat_activity), the
 * following POSTs queue behind them (seen in orderflow_order_insert_queued), and releasing the
 * lock lets every group commit: the queued POSTs as one group.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openPostgres, type Db } from '@orderflow/kit';
import {
  readStream,
  scrapeMetrics,
  startTestService,
  TEST_DATABASE_URL,
  waitFor,
  type Backend,
  type TestService,
} from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';
import { GROUPS_IN_FLIGHT } from '../src/orders/group-commit.js';

type Body = { customerId: string; items: Array<{ productId: string; quantity: number }> };
const body = (customerId: string, quantity = 1): Body => ({ customerId, items: [{ productId: 'sku-1', quantity }] });

function client(t: () => TestService) {
  const post = (b: Body, key?: string) =>
    fetch(`${t().svc.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
      body: JSON.stringify(b),
    });
  const answer = async (r: Promise<Response>) => {
    const res = await r;
    return { status: res.status, orderId: ((await res.json()) as { orderId?: string }).orderId };
  };
  return { post, answer };
}

describe('group commit on postgres', () => {
  let t: TestService;
  let locker: Db;
  const { post, answer } = client(() => t);
  const metric = async (name: string, where?: (labels: string) => boolean) => (await scrapeMetrics(t.svc.url)).total(name, where);
  const groups = () => metric('orderflow_order_insert_groups_total');
  const splitGroups = () => metric('orderflow_order_insert_groups_total', (l) => l.includes('split="true"'));
  const count = async (where: string, params: unknown[] = []) =>
    Number((await t.svc.ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders WHERE ${where}`, params))[0]!.n);

  /**
   * Holds a SHARE lock on orders while `first` is sent GROUPS_IN_FLIGHT times, each its own group
   * waiting on the lock, then sends each of `queued` in turn (each seen queued before the next, so
   * their order is known), then releases the lock. Resolves with the first answers and the queued ones.
   */
  async function behindALock(first: () => Promise<Response>, queued: Array<() => Promise<Response>>) {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holding = locker.tx(async (sql) => {
      await sql.query('LOCK TABLE orders IN SHARE MODE');
      locked();
      await released;
    });
    try {
      await isLocked;
      const heads: Array<ReturnType<typeof answer>> = [];
      for (let w = 1; w <= GROUPS_IN_FLIGHT; w++) {
        heads.push(answer(first()));
        await waitFor(`${w} group(s) waiting on the lock`, async () => {
          const [row] = await locker.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [t.svc.ctx.db.schema],
          );
          return row!.n === w;
        });
      }
      const rest: Array<ReturnType<typeof answer>> = [];
      for (const send of queued) {
        rest.push(answer(send()));
        const n = rest.length;
        await waitFor(`${n} orders queued behind the first group`, async () => (await metric('orderflow_order_insert_queued')) === n);
      }
      release();
      await holding;
      return { heads: await Promise.all(heads), rest: await Promise.all(rest) };
    } finally {
      release();
      await holding.catch(() => undefined);
    }
  }

  beforeAll(async () => {
    t = await startTestService(orderService(), { label: 'groupcommit', backend: 'postgres' });
    // Its own application name: pg_stat_activity tells its backend from the service's.
    locker = await openPostgres({ url: TEST_DATABASE_URL, schema: t.svc.ctx.db.schema, poolMax: 2, applicationName: 'group-commit-test' });
  });
  afterAll(async () => {
    await locker?.close();
    await t?.stop();
  });

  test('orders arriving while a group is written are the next group: one statement, every order and its event committed', async () => {
    const before = await groups();
    const { heads, rest } = await behindALock(
      () => post(body('first')),
      Array.from({ length: 12 }, (_, i) => () => post(body(`queued-${i}`))),
    );
    const all = [...heads, ...rest];
    expect(all.map((a) => a.status)).toEqual(all.map(() => 202));
    const ids = all.map((a) => a.orderId!);
    expect(new Set(ids).size).toBe(all.length);
    // One statement per first POST, and one for the twelve queued behind them.
    expect((await groups()) - before).toBe(GROUPS_IN_FLIGHT + 1);
    expect(await count('id = ANY($1::uuid[])', [ids])).toBe(all.length);
    // Each order's orders.created was committed with it (the relay publishes only committed rows).
    const stream = `${t.namespace.toUpperCase()}_ORDERS`;
    await waitFor('every order published', async () => {
      const published = new Set((await readStream(t.nc, stream)).map((m) => (m.json as { orderId: string }).orderId));
      return ids.every((id) => published.has(id));
    });
    const created = (await readStream(t.nc, stream)).filter((m) => ids.includes((m.json as { orderId: string }).orderId));
    expect(created).toHaveLength(all.length);
  });

  test('idempotency keys inside a group: one order per key, a repeat is a replay, another body is 409', async () => {
    const earlier = await answer(post(body('keyed-0'), 'gc-key-0'));
    expect(earlier.status).toBe(202);
    const before = await groups();
    const { heads, rest } = await behindALock(
      () => post(body('plain')),
      [
        () => post(body('keyed-1'), 'gc-key-1'), // claims gc-key-1
        () => post(body('keyed-1'), 'gc-key-1'), // same key and body, same group: a replay
        () => post(body('keyed-1', 9), 'gc-key-1'), // same key, another body: conflict
        () => post(body('keyed-0'), 'gc-key-0'), // a key claimed before: a replay
        () => post(body('keyed-0', 9), 'gc-key-0'), // a key claimed before, another body: conflict
      ],
    );
    expect(heads.map((h) => h.status)).toEqual(heads.map(() => 202));
    const [claim, replay, conflict, oldReplay, oldConflict] = rest;
    expect(claim!.status).toBe(202);
    expect(replay).toEqual({ status: 200, orderId: claim!.orderId });
    expect(conflict).toEqual({ status: 409, orderId: claim!.orderId });
    expect(oldReplay).toEqual({ status: 200, orderId: earlier.orderId });
    expect(oldConflict).toEqual({ status: 409, orderId: earlier.orderId });
    expect((await groups()) - before).toBe(GROUPS_IN_FLIGHT + 1);
    expect(await count(`customer_id = 'keyed-1'`)).toBe(1);
    expect(await count(`customer_id = 'keyed-0'`)).toBe(1);
    // Replayed later, outside any group race: still the same order.
    expect(await answer(post(body('keyed-1'), 'gc-key-1'))).toEqual({ status: 200, orderId: claim!.orderId });
  });

  test('text that needs escaping reaches the row, the key and the event unchanged through a group', async () => {
    // The group travels as JSON documents: quotes, backslashes, braces, commas, control
    // characters and non-ASCII must come out as they went in.
    const customers = ['quote " and \\ backslash', '{"not": "json"}, [a,b]', 'tab\tnew\nline \u0001', 'unicode é ✓ 𝄞', 'NULL'];
    const key = 'gc-"escaped"\\key,{}';
    const splitBefore = await splitGroups();
    const { heads, rest } = await behindALock(
      () => post(body('escape-head')),
      customers.map((c, i) => () => post(body(c), i === 0 ? key : undefined)),
    );
    expect([...heads, ...rest].map((a) => a.status)).toEqual([...heads, ...rest].map(() => 202));
    // Written by the group statement itself, not order by order after it failed.
    expect((await splitGroups()) - splitBefore).toBe(0);
    const ids = rest.map((a) => a.orderId!);
    const stored = await t.svc.ctx.db.query<{ id: string; customer_id: string; items: unknown }>(
      `SELECT id, customer_id, items FROM orders WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    const byId = new Map(stored.map((r) => [r.id, r]));
    customers.forEach((c, i) => {
      expect(byId.get(ids[i]!)?.customer_id).toBe(c);
      expect(byId.get(ids[i]!)?.items).toEqual(body(c).items);
    });
    expect(await answer(post(body(customers[0]!), key))).toEqual({ status: 200, orderId: ids[0] });
    const stream = `${t.namespace.toUpperCase()}_ORDERS`;
    const published = async () =>
      new Map((await readStream(t.nc, stream)).map((m) => [(m.json as { orderId: string }).orderId, m.json as { customerId: string }]));
    await waitFor('every order published', async () => {
      const p = await published();
      return ids.every((id) => p.has(id));
    });
    const events = await published();
    customers.forEach((c, i) => expect(events.get(ids[i]!)?.customerId).toBe(c));
  });

  test('one bad order in a group fails only its own request: the group is written again order by order', async () => {
    // A real constraint violation for one row of the group's statement.
    await locker.query(`ALTER TABLE orders ADD CONSTRAINT gc_no_poison CHECK (customer_id <> 'poison')`);
    try {
      const before = await splitGroups();
      const { heads, rest } = await behindALock(
        () => post(body('head')),
        [() => post(body('good-1')), () => post(body('poison')), () => post(body('good-2'), 'gc-key-split')],
      );
      expect(heads.map((h) => h.status)).toEqual(heads.map(() => 202));
      const [good1, poison, good2] = rest;
      expect(good1!.status).toBe(202);
      expect(poison!.status).toBe(500);
      expect(good2!.status).toBe(202);
      expect((await splitGroups()) - before).toBe(1);
      expect(await count('id = ANY($1::uuid[])', [[good1!.orderId, good2!.orderId]])).toBe(2);
      expect(await count(`customer_id = 'poison'`)).toBe(0);
      // The keyed order written on its own claimed its key.
      expect(await answer(post(body('good-2'), 'gc-key-split'))).toEqual({ status: 200, orderId: good2!.orderId });
    } finally {
      await locker.query(`ALTER TABLE orders DROP CONSTRAINT gc_no_poison`);
    }
  });
});

// PGlite (the dev database, one connection): the same statement, with whatever concurrency comes.
describe.each<Backend>(['pglite'])('group commit on %s', (backend) => {
  let t: TestService;
  const { post, answer } = client(() => t);
  beforeAll(async () => {
    t = await startTestService(orderService(), { label: 'groupcommit', backend });
  });
  afterAll(async () => {
    await t?.stop();
  });

  test('concurrent POSTs, keyed ones racing on one key: every order stored once', async () => {
    const answers = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => answer(post(body(`c-${i}`)))),
      ...Array.from({ length: 4 }, () => answer(post(body('raced'), 'pglite-race'))),
    ]);
    expect(answers.slice(0, 20).every((a) => a.status === 202)).toBe(true);
    const raced = answers.slice(20);
    expect(raced.filter((a) => a.status === 202)).toHaveLength(1);
    expect(raced.filter((a) => a.status === 200)).toHaveLength(3);
    expect(new Set(raced.map((a) => a.orderId)).size).toBe(1);
    const [row] = await t.svc.ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders`);
    expect(row!.n).toBe(21);
  });
});
