import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { migrate, OUTBOX_MIGRATIONS, openPglite, openPostgres, type Db } from '@orderflow/kit';
import { dropSchema, testNamespace, TEST_DATABASE_URL } from '@orderflow/kit/testing';
import {
  MIGRATIONS,
  cancel,
  claimStaleHolds,
  commit,
  getProduct,
  getReservation,
  mergeItems,
  planReservation,
  release,
  reserve,
  roundCents,
  scheduleHoldCheck,
  seedProducts,
  setStock,
  parseSeed,
} from '../src/index.js';

test('planReservation: all or nothing, unknown beats short, amount in cents', () => {
  const stock = new Map([
    ['a', { productId: 'a', onHand: 5, reserved: 2, price: 10.1 }],
    ['b', { productId: 'b', onHand: 9, reserved: 0, price: 0.333 }],
    ['c', { productId: 'c', onHand: 1, reserved: 0, price: null }],
  ]);
  expect(
    planReservation(
      [
        { productId: 'a', quantity: 3 },
        { productId: 'b', quantity: 3 },
        { productId: 'c', quantity: 1 },
      ],
      stock,
    ),
  ).toEqual({
    kind: 'reserve',
    items: [
      { productId: 'a', quantity: 3, unitPrice: 10.1 },
      { productId: 'b', quantity: 3, unitPrice: 0.333 },
      { productId: 'c', quantity: 1, unitPrice: 0 },
    ],
    amount: 31.3,
  });
  expect(
    planReservation(
      [
        { productId: 'a', quantity: 4 },
        { productId: 'b', quantity: 1 },
      ],
      stock,
    ),
  ).toEqual({
    kind: 'reject',
    reason: 'out_of_stock',
    shortages: [{ productId: 'a', requested: 4, available: 3 }],
  });
  expect(
    planReservation(
      [
        { productId: 'a', quantity: 4 },
        { productId: 'zz', quantity: 1 },
      ],
      stock,
    ),
  ).toMatchObject({
    kind: 'reject',
    reason: 'unknown_product',
    shortages: [
      { productId: 'zz', requested: 1, available: 0 },
      { productId: 'a', requested: 4, available: 3 },
    ],
  });
  expect(
    mergeItems([
      { productId: 'a', quantity: 1 },
      { productId: 'b', quantity: 2 },
      { productId: 'a', quantity: 3 },
    ]),
  ).toEqual([
    { productId: 'a', quantity: 4 },
    { productId: 'b', quantity: 2 },
  ]);
  expect(roundCents(0.1 + 0.2)).toBe(0.3);
  expect(roundCents(1.005 * 1000)).toBe(1005);
});

test('parseSeed accepts inline JSON and rejects bad entries', () => {
  expect(parseSeed('[{"productId":"sku-1","onHand":100,"price":10}]')).toEqual([{ productId: 'sku-1', onHand: 100, price: 10 }]);
  expect(() => parseSeed('[{"productId":"sku-1","onHand":-1}]')).toThrow(/invalid/);
  expect(() => parseSeed('[nope')).toThrow(/not valid JSON/);
  expect(() => parseSeed('/no/such/file.json')).toThrow(/does not exist/);
});

/** The same repository scenario on embedded PGlite and on the real Postgres server. */
const backends: Array<[string, () => Promise<Db>, (db: Db) => Promise<void>]> = [
  ['pglite', () => openPglite({ schema: 'inventory_repo' }), async (db) => db.close()],
  [
    'postgres',
    () => openPostgres({ url: TEST_DATABASE_URL, schema: testNamespace('inv_repo') }),
    async (db) => {
      await db.close();
      await dropSchema(db.schema);
    },
  ],
];

describe.each(backends)('reservation repository on %s', (_name, open, close) => {
  let db: Db;
  beforeAll(async () => {
    db = await open();
    await migrate(db, [...OUTBOX_MIGRATIONS, ...MIGRATIONS]);
  });
  afterAll(async () => {
    if (db) await close(db);
  });

  const order = (items: Array<{ productId: string; quantity: number }>) => ({
    orderId: randomUUID(),
    items,
    currency: 'USD',
    correlationId: 'c-1',
  });

  test('reserve, commit, release, tombstone, duplicates', async () => {
    await db.tx((sql) => setStock(sql, 'p-1', 10, 2.5));
    await db.tx((sql) => setStock(sql, 'p-2', 3));

    // Reserve both lines atomically; the duplicate is a no-op.
    const o1 = order([
      { productId: 'p-2', quantity: 1 },
      { productId: 'p-1', quantity: 4 },
    ]);
    expect(await db.tx((sql) => reserve(sql, o1))).toEqual({
      kind: 'reserved',
      items: [
        { productId: 'p-2', quantity: 1, unitPrice: 0 },
        { productId: 'p-1', quantity: 4, unitPrice: 2.5 },
      ],
      amount: 10,
    });
    expect(await db.tx((sql) => reserve(sql, o1))).toEqual({ kind: 'duplicate', status: 'held' });
    expect(await getProduct(db, 'p-1')).toEqual({ productId: 'p-1', onHand: 10, reserved: 4, available: 6, sold: 0, price: 2.5 });

    // Short on one line: nothing reserved on the other.
    const o2 = order([
      { productId: 'p-1', quantity: 1 },
      { productId: 'p-2', quantity: 3 },
    ]);
    expect(await db.tx((sql) => reserve(sql, o2))).toEqual({
      kind: 'rejected',
      reason: 'out_of_stock',
      shortages: [{ productId: 'p-2', requested: 3, available: 2 }],
    });
    expect((await getProduct(db, 'p-1'))?.reserved).toBe(4);
    expect((await getReservation(db, o2.orderId))?.status).toBe('rejected');
    expect(await db.tx((sql) => release(sql, o2.orderId, 'payment_declined'))).toEqual({ kind: 'noop', status: 'rejected' });

    // Setting stock below what is reserved is refused.
    expect(await db.tx((sql) => setStock(sql, 'p-1', 3))).toEqual({ kind: 'below_reserved', reserved: 4 });

    // Commit: on hand and reserved down, sold up; a second commit does nothing.
    expect((await db.tx((sql) => commit(sql, o1.orderId))).kind).toBe('committed');
    expect(await db.tx((sql) => commit(sql, o1.orderId))).toEqual({ kind: 'noop', status: 'committed' });
    expect(await getProduct(db, 'p-1')).toMatchObject({ onHand: 6, reserved: 0, available: 6, sold: 4 });
    expect(await getProduct(db, 'p-2')).toMatchObject({ onHand: 2, reserved: 0, sold: 1 });

    // Release once, then the cancel that follows is a no-op.
    const o3 = order([{ productId: 'p-1', quantity: 6 }]);
    expect((await db.tx((sql) => reserve(sql, o3))).kind).toBe('reserved');
    expect((await getProduct(db, 'p-1'))?.available).toBe(0);
    const rel = await db.tx((sql) => release(sql, o3.orderId, 'payment_declined'));
    expect(rel).toMatchObject({ kind: 'released', reservation: { status: 'released', reason: 'payment_declined' } });
    expect(await db.tx((sql) => cancel(sql, o3.orderId, 'payment_declined', 'c-1'))).toEqual({ kind: 'noop', status: 'released' });
    expect(await getProduct(db, 'p-1')).toMatchObject({ onHand: 6, reserved: 0, available: 6 });

    // A release with an empty reason: the row keeps it as given, '' (not NULL), as it always has.
    const o5 = order([{ productId: 'p-1', quantity: 1 }]);
    expect((await db.tx((sql) => reserve(sql, o5))).kind).toBe('reserved');
    expect(await db.tx((sql) => cancel(sql, o5.orderId, '', 'c-1'))).toMatchObject({ kind: 'released' });
    expect(await db.query(`SELECT status, reason FROM reservations WHERE order_id = $1`, [o5.orderId])).toEqual([
      { status: 'released', reason: '' },
    ]);

    // Cancelled before created: tombstone, then the late orders.created reserves nothing.
    const o4 = order([{ productId: 'p-1', quantity: 1 }]);
    expect(await db.tx((sql) => cancel(sql, o4.orderId, 'timeout', 'c-1'))).toEqual({ kind: 'tombstoned' });
    expect(await db.tx((sql) => reserve(sql, o4))).toEqual({ kind: 'duplicate', status: 'cancelled' });
    expect((await getProduct(db, 'p-1'))?.reserved).toBe(0);

    // Unknown product.
    expect(await db.tx((sql) => reserve(sql, order([{ productId: 'nope', quantity: 1 }])))).toMatchObject({
      kind: 'rejected',
      reason: 'unknown_product',
    });

    // Seeding creates only missing products.
    expect(
      await db.tx((sql) =>
        seedProducts(sql, [
          { productId: 'p-1', onHand: 999 },
          { productId: 'p-9', onHand: 7, price: 1.25 },
        ]),
      ),
    ).toEqual(['p-9']);
    expect(await getProduct(db, 'p-1')).toMatchObject({ onHand: 6 });
    expect(await getProduct(db, 'p-9')).toEqual({ productId: 'p-9', onHand: 7, reserved: 0, available: 7, sold: 0, price: 1.25 });
  });

  test('the sweeper claims a stale hold once per lease, again when rescheduled, never once settled', async () => {
    await db.tx((sql) => setStock(sql, 'sw-1', 5));
    const o = order([{ productId: 'sw-1', quantity: 1 }]);
    await db.tx((sql) => reserve(sql, o));
    const claim = () => claimStaleHolds(db, { olderThanMs: 0, limit: 100, leaseMs: 60_000, skipLocked: db.kind === 'postgres' });
    const mine = async () => (await claim()).filter((h) => h.orderId === o.orderId);
    expect(await mine()).toMatchObject([{ orderId: o.orderId, correlationId: 'c-1', checks: 1 }]);
    expect(await mine()).toEqual([]); // leased
    await scheduleHoldCheck(db, o.orderId, 0);
    expect(await mine()).toMatchObject([{ checks: 2 }]);
    await scheduleHoldCheck(db, o.orderId, 0);
    expect((await db.tx((sql) => commit(sql, o.orderId))).kind).toBe('committed');
    expect(await mine()).toEqual([]); // settled
    // Young holds are left alone.
    const young = order([{ productId: 'sw-1', quantity: 1 }]);
    await db.tx((sql) => reserve(sql, young));
    expect(
      (await claimStaleHolds(db, { olderThanMs: 3_600_000, limit: 100, leaseMs: 60_000, skipLocked: false })).map((h) => h.orderId),
    ).not.toContain(young.orderId);
  });

  test('the CHECK constraints refuse negative availability', async () => {
    await db.tx((sql) => setStock(sql, 'chk', 1));
    await expect(db.query(`UPDATE products SET reserved = 2 WHERE product_id = 'chk'`)).rejects.toThrow(/products_available_nonneg/);
    await expect(db.query(`UPDATE products SET reserved = -1 WHERE product_id = 'chk'`)).rejects.toThrow(/products_reserved_nonneg/);
  });
});
