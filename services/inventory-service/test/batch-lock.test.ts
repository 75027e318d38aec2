/**
 * A consumer batch (the kit runs the handlers of many messages in one transaction, HandlerContext
 * .peers naming them all): its first orders.created claims the reservations of the batch and locks
 * all their products, one statement each; its first settle event locks the batch's reservations
 * and their products the same way. Each event still ends exactly as it would handled alone, in
 * order: the same scenario runs in a second schema one event per transaction, and both must agree.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { migrate, OUTBOX_MIGRATIONS, openPostgres, type Db, type IncomingEvent, type TxSql } from '@orderflow/kit';
import { dropSchema, testNamespace, TEST_DATABASE_URL } from '@orderflow/kit/testing';
import { MIGRATIONS, cancel, commit, getProduct, getReservation, release, reserve, setStock, type Batch } from '../src/index.js';

let db: Db;
/** The reference: the same events, one transaction each. */
let ref: Db;
/** Another session, to see which rows the batch holds. */
let other: Db;
beforeAll(async () => {
  db = await openPostgres({ url: TEST_DATABASE_URL, schema: testNamespace('inv_batch') });
  ref = await openPostgres({ url: TEST_DATABASE_URL, schema: testNamespace('inv_batch_ref') });
  other = await openPostgres({ url: TEST_DATABASE_URL, schema: db.schema });
  for (const d of [db, ref]) await migrate(d, [...OUTBOX_MIGRATIONS, ...MIGRATIONS]);
});
afterAll(async () => {
  await other?.close();
  for (const d of [db, ref]) {
    if (!d) continue;
    await d.close();
    await dropSchema(d.schema);
  }
});

type Items = Array<{ productId: string; quantity: number }>;
const incoming = (type: string, data: Record<string, unknown>): IncomingEvent =>
  ({ id: randomUUID(), type, version: 'v1', correlationId: 'c-batch', data, publishedVersions: ['v1'] }) as unknown as IncomingEvent;
const base = (orderId: string) => ({ version: 'v1', orderId, correlationId: `corr-${orderId}`, occurredAt: new Date().toISOString() });
const created = (orderId: string, items: Items) =>
  incoming('orders.created', { ...base(orderId), customerId: 'cu', currency: 'EUR', items });
const confirmed = (orderId: string) => incoming('orders.confirmed', base(orderId));
const cancelled = (orderId: string) => incoming('orders.cancelled', { ...base(orderId), reason: 'timeout' });
const failed = (orderId: string) => incoming('payments.failed', { ...base(orderId), reason: 'payment_declined', amount: 1 });

/** What inventory's handler for the event does (stock/handlers.ts), given the batch or not. */
function handle(sql: TxSql, e: IncomingEvent, batch?: Batch): Promise<unknown> {
  const d = e.data as unknown as { orderId: string; items: Items; currency: string; correlationId: string; reason: string };
  switch (e.type) {
    case 'orders.created':
      return reserve(sql, { orderId: d.orderId, items: d.items, currency: d.currency, correlationId: d.correlationId }, batch);
    case 'orders.confirmed':
      return commit(sql, d.orderId, batch);
    case 'orders.cancelled':
      return cancel(sql, d.orderId, d.reason, d.correlationId, batch);
    case 'payments.failed':
      return release(sql, d.orderId, d.reason, batch);
    default:
      throw new Error(`no handler for ${e.type}`);
  }
}

/** The transaction with every statement it awaits recorded (queued writes cost no round trip). */
function counted(sql: TxSql, into: string[]): TxSql {
  return {
    query: (text, params) => {
      into.push(text.replace(/\s+/g, ' ').trim());
      return sql.query(text, params);
    },
    exec: (text) => {
      into.push(text);
      return sql.exec(text);
    },
    atCommit: (text, params) => sql.atCommit(text, params),
    write: (text, params) => sql.write(text, params),
  };
}

/** Fails unless another session finds the row locked. */
async function lockedElsewhere(table: 'products' | 'reservations', id: string): Promise<void> {
  const key = table === 'products' ? 'product_id' : 'order_id';
  await expect(other.tx((o) => o.query(`SELECT 1 FROM ${table} WHERE ${key} = $1 FOR UPDATE NOWAIT`, [id]))).rejects.toMatchObject({
    code: '55P03',
  });
}

/** The events as one batch in `db`, then one transaction each in `ref`; both end the same. */
async function batchAgreesWithOneByOne(
  events: IncomingEvent[],
  opts: { afterFirst?: (statements: readonly string[]) => Promise<void> } = {},
): Promise<{ outcomes: unknown[]; statements: string[] }> {
  const statements: string[] = [];
  const outcomes = await db.tx(async (tx) => {
    const sql = counted(tx, statements);
    const out: unknown[] = [];
    for (const [i, e] of events.entries()) {
      out.push(await handle(sql, e, { event: e, peers: events }));
      if (i === 0) await opts.afterFirst?.(statements);
    }
    return out;
  });
  const alone: unknown[] = [];
  for (const e of events) alone.push(await ref.tx((sql) => handle(sql, e)));
  expect(outcomes).toEqual(alone);
  const orders = [...new Set(events.map((e) => (e.data as { orderId: string }).orderId))];
  for (const o of orders) expect(await getReservation(db, o)).toEqual(await getReservation(ref, o));
  return { outcomes, statements };
}

const stock = async (productId: string, onHand: number, price?: number) => {
  for (const d of [db, ref]) await d.tx((sql) => setStock(sql, productId, onHand, price));
};
const product = async (productId: string) => {
  const p = await getProduct(db, productId);
  expect(p).toEqual(await getProduct(ref, productId));
  return p;
};

test('a batch of orders.created: one claim, one product lock, reserved in order while stock lasts', async () => {
  await stock('bl-x', 5, 2);
  await stock('bl-y', 3, 1);
  await stock('bl-z', 1, 10);
  // Reserved before the batch: its orders.created in the batch is a late duplicate.
  const p = randomUUID();
  for (const d of [db, ref])
    await d.tx((sql) => reserve(sql, { orderId: p, items: [{ productId: 'bl-y', quantity: 1 }], currency: 'EUR', correlationId: 'c' }));
  const [a, b, c, d, e, f] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const events = [
    created(a, [
      { productId: 'bl-x', quantity: 2 },
      { productId: 'bl-y', quantity: 1 },
    ]),
    created(b, [{ productId: 'bl-x', quantity: 2 }]),
    created(p, [{ productId: 'bl-y', quantity: 1 }]),
    created(c, [
      { productId: 'bl-x', quantity: 2 },
      { productId: 'bl-y', quantity: 1 },
    ]),
    created(d, [{ productId: 'bl-z', quantity: 1 }]),
    // a, republished under a new message id within the same batch.
    created(a, [
      { productId: 'bl-x', quantity: 2 },
      { productId: 'bl-y', quantity: 1 },
    ]),
    created(e, [
      { productId: 'bl-y', quantity: 1 },
      { productId: 'bl-z', quantity: 1 },
    ]),
    created(f, [
      { productId: 'bl-x', quantity: 1 },
      { productId: 'bl-y', quantity: 1 },
    ]),
  ];
  const { outcomes, statements } = await batchAgreesWithOneByOne(events, {
    afterFirst: async (first) => {
      // bl-z is in d's order only, yet held already: the first handler locked every order's products.
      for (const id of ['bl-x', 'bl-y', 'bl-z']) await lockedElsewhere('products', id);
      // In two statements: the claim of all orders, then the lock of all their products.
      expect(first).toHaveLength(2);
      expect(first[0]).toMatch(/^INSERT INTO reservations .* unnest/);
      expect(first[1]).toMatch(/FROM products .* FOR UPDATE$/);
    },
  });
  expect(outcomes).toEqual([
    {
      kind: 'reserved',
      items: [
        { productId: 'bl-x', quantity: 2, unitPrice: 2 },
        { productId: 'bl-y', quantity: 1, unitPrice: 1 },
      ],
      amount: 5,
    },
    { kind: 'reserved', items: [{ productId: 'bl-x', quantity: 2, unitPrice: 2 }], amount: 4 },
    { kind: 'duplicate', status: 'held' },
    { kind: 'rejected', reason: 'out_of_stock', shortages: [{ productId: 'bl-x', requested: 2, available: 1 }] },
    { kind: 'reserved', items: [{ productId: 'bl-z', quantity: 1, unitPrice: 10 }], amount: 10 },
    { kind: 'duplicate', status: 'held' },
    { kind: 'rejected', reason: 'out_of_stock', shortages: [{ productId: 'bl-z', requested: 1, available: 0 }] },
    {
      kind: 'reserved',
      items: [
        { productId: 'bl-x', quantity: 1, unitPrice: 2 },
        { productId: 'bl-y', quantity: 1, unitPrice: 1 },
      ],
      amount: 3,
    },
  ]);
  // Eight orders.created, three statements: the claim, the product lock, and the status of p
  // (claimed by an earlier transaction, so not one this one holds).
  expect(statements).toHaveLength(3);
  expect(statements[2]).toMatch(/^SELECT status FROM reservations/);
  // Every unit promised once: on hand − reserved never below zero, nothing lost.
  expect(await product('bl-x')).toMatchObject({ onHand: 5, reserved: 5, available: 0 });
  expect(await product('bl-y')).toMatchObject({ onHand: 3, reserved: 3, available: 0 });
  expect(await product('bl-z')).toMatchObject({ onHand: 1, reserved: 1, available: 0 });
  expect(await getReservation(db, c)).toMatchObject({ status: 'rejected', reason: 'out_of_stock' });
  expect(await getReservation(db, f)).toMatchObject({ status: 'held', amount: 3 });
});

test('a batch of settle events: one reservation lock, one product lock, each reservation changed once', async () => {
  await stock('bs-1', 10);
  await stock('bs-2', 10);
  const [g, h, i, j, k] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const holds: Array<[string, Items]> = [
    [g, [{ productId: 'bs-1', quantity: 2 }]],
    [
      h,
      [
        { productId: 'bs-1', quantity: 1 },
        { productId: 'bs-2', quantity: 1 },
      ],
    ],
    [i, [{ productId: 'bs-2', quantity: 1 }]],
    [j, [{ productId: 'bs-2', quantity: 2 }]],
  ];
  for (const d of [db, ref])
    for (const [orderId, items] of holds) await d.tx((sql) => reserve(sql, { orderId, items, currency: 'EUR', correlationId: 'c' }));
  const events = [
    confirmed(g),
    cancelled(h),
    confirmed(g),
    failed(i),
    confirmed(h),
    // Cancelled before its orders.created arrived: a tombstone, then the created reserves nothing.
    cancelled(k),
    created(k, [{ productId: 'bs-1', quantity: 1 }]),
    confirmed(j),
    failed(j),
  ];
  const { outcomes, statements } = await batchAgreesWithOneByOne(events, {
    afterFirst: async (first) => {
      // The first settle (g's) holds the reservations of the whole batch and their products.
      for (const o of [h, i, j]) await lockedElsewhere('reservations', o);
      await lockedElsewhere('products', 'bs-2');
      expect(first).toHaveLength(2);
      expect(first[0]).toMatch(/FROM reservations WHERE order_id = ANY\(\$1::uuid\[\]\) ORDER BY order_id FOR UPDATE$/);
      expect(first[1]).toMatch(/FROM products .* FOR UPDATE$/);
    },
  });
  expect(outcomes).toMatchObject([
    { kind: 'committed', reservation: { orderId: g, status: 'committed' } },
    { kind: 'released', reservation: { orderId: h, status: 'released', reason: 'timeout' } },
    { kind: 'noop', status: 'committed' },
    { kind: 'released', reservation: { orderId: i, status: 'released', reason: 'payment_declined' } },
    { kind: 'noop', status: 'released' },
    { kind: 'tombstoned' },
    { kind: 'duplicate', status: 'cancelled' },
    { kind: 'committed', reservation: { orderId: j, status: 'committed' } },
    { kind: 'noop', status: 'committed' },
  ]);
  // Nine events, four statements: the two locks, k's tombstone and k's claim (which finds it).
  expect(statements).toHaveLength(4);
  expect(await product('bs-1')).toMatchObject({ onHand: 8, reserved: 0, sold: 2 });
  expect(await product('bs-2')).toMatchObject({ onHand: 8, reserved: 0, sold: 2 });
  for (const [o, status] of [
    [g, 'committed'],
    [h, 'released'],
    [i, 'released'],
    [j, 'committed'],
    [k, 'cancelled'],
  ] as const)
    expect((await getReservation(db, o))?.status).toBe(status);
});

test('an order named by another event between two orders.created is claimed in its turn, not with the batch', async () => {
  await stock('bm-1', 1, 1);
  const [m, n, o] = [randomUUID(), randomUUID(), randomUUID()];
  const one = [{ productId: 'bm-1', quantity: 1 }];
  // n is cancelled before its orders.created: claimed with m's, it would be held, then released,
  // then reserved again. In turn, it finds the tombstone. A release in between frees m's unit for o.
  const { outcomes } = await batchAgreesWithOneByOne([
    created(m, one),
    cancelled(n),
    created(n, one),
    cancelled(m),
    created(o, one),
    created(o, one),
  ]);
  expect(outcomes).toMatchObject([
    { kind: 'reserved' },
    { kind: 'tombstoned' },
    { kind: 'duplicate', status: 'cancelled' },
    { kind: 'released' },
    { kind: 'reserved' },
    { kind: 'duplicate', status: 'held' },
  ]);
  expect(await product('bm-1')).toMatchObject({ onHand: 1, reserved: 1, available: 0 });
});
