import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { migrate, OUTBOX_MIGRATIONS, openPostgres, type Db, type TxSql } from '@orderflow/kit';
import { dropSchema, testNamespace, TEST_DATABASE_URL } from '@orderflow/kit/testing';
import { MIGRATIONS, getProduct, getReservation, release, reserve, setStock } from '../src/index.js';
import { LockOrderError } from '../src/stock/lock-order.js';
import { batchThenOneByOne, deadlocked, meeting } from './helpers.js';

/**
 * Batch transactions (the kit runs many messages' handlers in one transaction) on the real
 * Postgres, two at a time. Each batch first handles one order, then both meet at a barrier while
 * holding its locks, then each handles an order on the product the other holds. With product
 * locks sorted per order only, that is a textbook deadlock (Postgres aborts one after
 * deadlock_timeout with 40P01). With one lock order for the whole transaction, a lock that would
 * go against it is taken with NOWAIT: the loser fails at once with LockOrderError, the kit retries
 * its messages one at a time, nothing ever waits in a cycle.
 */
let db: Db;
beforeAll(async () => {
  db = await openPostgres({ url: TEST_DATABASE_URL, schema: testNamespace('inv_lock') });
  await migrate(db, [...OUTBOX_MIGRATIONS, ...MIGRATIONS]);
});
afterAll(async () => {
  if (!db) return;
  await db.close();
  await dropSchema(db.schema);
});

const order = (productId: string) => ({
  orderId: randomUUID(),
  items: [{ productId, quantity: 1 }],
  currency: 'USD',
  correlationId: 'c-lock',
});

/** A batch of steps, meeting the other batch once its first step holds its locks. */
const batch = (steps: Array<(sql: TxSql) => Promise<unknown>>, meet: () => Promise<void>) =>
  batchThenOneByOne(db, steps.length, (sql, i) => steps[i]!(sql), { afterFirst: meet });

test('two batches taking overlapping products in opposite order do not deadlock', async () => {
  await db.tx((sql) => setStock(sql, 'dl-a', 10));
  await db.tx((sql) => setStock(sql, 'dl-b', 10));
  const [a1, b1, b2, a2] = [order('dl-b'), order('dl-a'), order('dl-a'), order('dl-b')];
  const meet = meeting();
  const failures = await Promise.all([
    batch([(sql) => reserve(sql, a1), (sql) => reserve(sql, b1)], meet), // dl-b, then dl-a
    batch([(sql) => reserve(sql, b2), (sql) => reserve(sql, a2)], meet), // dl-a, then dl-b
  ]);
  expect(failures.filter(deadlocked)).toEqual([]);
  // Exactly one batch had to step back, and it did so by refusing to wait, not by a deadlock.
  const stepped = failures.filter((f) => f !== undefined);
  expect(stepped).toHaveLength(1);
  expect(stepped[0]).toBeInstanceOf(LockOrderError);
  for (const o of [a1, b1, b2, a2]) expect((await getReservation(db, o.orderId))?.status).toBe('held');
  expect(await getProduct(db, 'dl-a')).toMatchObject({ onHand: 10, reserved: 2 });
  expect(await getProduct(db, 'dl-b')).toMatchObject({ onHand: 10, reserved: 2 });
});

test('a batch releasing one order while another reserves its products does not deadlock on the reservation row', async () => {
  await db.tx((sql) => setStock(sql, 'dl-c', 10));
  await db.tx((sql) => setStock(sql, 'dl-d', 10));
  const held = order('dl-d');
  await db.tx((sql) => reserve(sql, held));
  const [first, later] = [order('dl-c'), order('dl-c')];
  const meet = meeting();
  const failures = await Promise.all([
    // Holds dl-c, then wants the reservation row of `held`.
    batch([(sql) => reserve(sql, first), (sql) => release(sql, held.orderId, 'payment_declined')], meet),
    // Holds `held`'s reservation row and dl-d, then wants dl-c.
    batch([(sql) => release(sql, held.orderId, 'order_cancelled'), (sql) => reserve(sql, later)], meet),
  ]);
  expect(failures.filter(deadlocked)).toEqual([]);
  for (const f of failures) if (f !== undefined) expect(f).toBeInstanceOf(LockOrderError);
  expect((await getReservation(db, held.orderId))?.status).toBe('released');
  expect(await getProduct(db, 'dl-c')).toMatchObject({ reserved: 2 });
  expect(await getProduct(db, 'dl-d')).toMatchObject({ reserved: 0 });
});

test('without contention a batch takes locks against the order at once (NOWAIT succeeds on free and own rows)', async () => {
  await db.tx((sql) => setStock(sql, 'dl-e', 5));
  await db.tx((sql) => setStock(sql, 'dl-f', 5));
  const orders = [order('dl-f'), order('dl-e'), order('dl-f'), order('dl-e')];
  await db.tx(async (sql) => {
    for (const o of orders) expect((await reserve(sql, o)).kind).toBe('reserved');
  });
  expect(await getProduct(db, 'dl-e')).toMatchObject({ reserved: 2 });
  expect(await getProduct(db, 'dl-f')).toMatchObject({ reserved: 2 });
});
