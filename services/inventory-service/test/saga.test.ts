import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { Names, type RunningService } from '@orderflow/kit';
import { startTestService, testNamespace, type TestService } from '@orderflow/kit/testing';
import { inventoryService, getProduct, getReservation } from '../src/index.js';
import { inventoryEvents, now, processed, publish } from './helpers.js';

const ns = testNamespace('inv');
const names = new Names(ns);
let service: TestService;
let svc: RunningService;
let nc: NatsConnection;

beforeAll(async () => {
  service = await startTestService(inventoryService(), {
    label: 'inv_saga',
    env: {
      ORDERFLOW_NAMESPACE: ns,
      LOG_LEVEL: 'warn',
      SEED_PRODUCTS: '[{"productId":"seeded-1","onHand":100,"price":10}]',
    },
  });
  ({ svc, nc } = service);
});

afterAll(async () => {
  await service?.stop();
});

const setStock = async (productId: string, onHand: number, price?: number) => {
  const r = await fetch(`${svc.url}/products/${productId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(price === undefined ? { onHand } : { onHand, price }),
  });
  expect(r.status).toBe(200);
};
const product = async (productId: string) => (await getProduct(svc.ctx.db, productId))!;
type Items = Array<{ productId: string; quantity: number }>;
/** An orders.created body; publishing it again is a redelivery under a new msg id. */
const createdData = (orderId: string, items: Items, currency: 'USD' | 'EUR' = 'USD') => ({
  version: 'v1' as const,
  orderId,
  correlationId: `corr-${orderId}`,
  occurredAt: now(),
  customerId: 'cust-1',
  currency,
  items,
});
const created = (orderId: string, items: Items, currency: 'USD' | 'EUR' = 'USD') =>
  publish(nc, names, 'orders.created', createdData(orderId, items, currency));
/** The orders.cancelled the saga timeout sends. */
const timedOut = (orderId: string) =>
  publish(nc, names, 'orders.cancelled', {
    version: 'v1',
    orderId,
    correlationId: `corr-${orderId}`,
    occurredAt: now(),
    reason: 'timeout',
  });
const eventsFor = async (orderId: string) => (await inventoryEvents(svc, nc, names)).filter((e) => e.data.orderId === orderId);

test('seeded products exist at start', async () => {
  expect(await product('seeded-1')).toEqual({ productId: 'seeded-1', onHand: 100, reserved: 0, available: 100, sold: 0, price: 10 });
});

test('orders.created reserves and emits inventory.reserved with the amount', async () => {
  await setStock('r-a', 10, 19.99);
  await setStock('r-b', 5);
  const orderId = randomUUID();
  await processed(svc, [
    await created(
      orderId,
      [
        { productId: 'r-a', quantity: 3 },
        { productId: 'r-b', quantity: 2 },
      ],
      'EUR',
    ),
  ]);
  expect(await product('r-a')).toMatchObject({ onHand: 10, reserved: 3, available: 7 });
  expect(await product('r-b')).toMatchObject({ onHand: 5, reserved: 2, available: 3 });
  const evs = await eventsFor(orderId);
  expect(evs).toHaveLength(1);
  expect(evs[0]).toMatchObject({
    type: 'inventory.reserved',
    data: {
      orderId,
      correlationId: `corr-${orderId}`,
      currency: 'EUR',
      amount: 59.97,
      items: [
        { productId: 'r-a', quantity: 3, unitPrice: 19.99 },
        { productId: 'r-b', quantity: 2, unitPrice: 0 },
      ],
    },
  });
});

test('out of stock → inventory.rejected with shortages, stock unchanged', async () => {
  await setStock('s-a', 10, 1);
  await setStock('s-b', 1, 1);
  const orderId = randomUUID();
  await processed(svc, [
    await created(orderId, [
      { productId: 's-a', quantity: 2 },
      { productId: 's-b', quantity: 2 },
    ]),
  ]);
  expect(await product('s-a')).toMatchObject({ onHand: 10, reserved: 0 });
  expect(await product('s-b')).toMatchObject({ onHand: 1, reserved: 0 });
  const evs = await eventsFor(orderId);
  expect(evs).toEqual([
    expect.objectContaining({
      type: 'inventory.rejected',
      data: expect.objectContaining({ reason: 'out_of_stock', shortages: [{ productId: 's-b', requested: 2, available: 1 }] }),
    }),
  ]);

  const unknown = randomUUID();
  await processed(svc, [await created(unknown, [{ productId: 'no-such-sku', quantity: 1 }])]);
  expect((await eventsFor(unknown))[0]).toMatchObject({ type: 'inventory.rejected', data: { reason: 'unknown_product' } });
});

test('payments.failed releases once; a later orders.cancelled is a no-op', async () => {
  await setStock('rel', 4, 2);
  const orderId = randomUUID();
  await processed(svc, [await created(orderId, [{ productId: 'rel', quantity: 4 }])]);
  expect((await product('rel')).available).toBe(0);
  const base = { version: 'v1' as const, orderId, correlationId: `corr-${orderId}`, occurredAt: now() };
  const failed = await publish(nc, names, 'payments.failed', { ...base, reason: 'payment_declined', amount: 8 });
  await processed(svc, [failed]);
  expect(await product('rel')).toMatchObject({ onHand: 4, reserved: 0, available: 4 });
  // The same failure republished under a new msg id, then the order's cancel: both find nothing held.
  const again = await publish(nc, names, 'payments.failed', { ...base, reason: 'payment_declined', amount: 8 });
  const cancelled = await publish(nc, names, 'orders.cancelled', { ...base, reason: 'payment_declined' });
  await processed(svc, [again, cancelled]);
  const released = (await eventsFor(orderId)).filter((e) => e.type === 'inventory.released');
  expect(released).toHaveLength(1);
  expect(released[0]!.data).toMatchObject({ reason: 'payment_declined' });
  expect(await product('rel')).toMatchObject({ onHand: 4, reserved: 0, available: 4 });
  expect((await getReservation(svc.ctx.db, orderId))?.status).toBe('released');
});

test('orders.confirmed commits the held stock', async () => {
  await setStock('cf', 10, 1);
  const orderId = randomUUID();
  await processed(svc, [await created(orderId, [{ productId: 'cf', quantity: 3 }])]);
  const confirmed = await publish(nc, names, 'orders.confirmed', {
    version: 'v1',
    orderId,
    correlationId: `corr-${orderId}`,
    occurredAt: now(),
  });
  await processed(svc, [confirmed]);
  expect(await product('cf')).toEqual({ productId: 'cf', onHand: 7, reserved: 0, available: 7, sold: 3, price: 1 });
  expect((await getReservation(svc.ctx.db, orderId))?.status).toBe('committed');
  // A cancel after the commit (should never happen) gives nothing back.
  await processed(svc, [await timedOut(orderId)]);
  expect(await product('cf')).toMatchObject({ onHand: 7, reserved: 0, sold: 3 });
});

test('orders.cancelled before orders.created leaves a tombstone; the late created is a no-op', async () => {
  await setStock('tomb', 5, 1);
  const orderId = randomUUID();
  await processed(svc, [await timedOut(orderId)]);
  expect(await getReservation(svc.ctx.db, orderId)).toMatchObject({ status: 'cancelled', reason: 'timeout' });
  await processed(svc, [await created(orderId, [{ productId: 'tomb', quantity: 2 }])]);
  expect(await product('tomb')).toMatchObject({ onHand: 5, reserved: 0 });
  expect((await getReservation(svc.ctx.db, orderId))?.status).toBe('cancelled');
  expect(await eventsFor(orderId)).toEqual([]);
});

test('the same orders.created delivered 3× under new msg ids → one reservation', async () => {
  await setStock('dup', 10, 5);
  const orderId = randomUUID();
  const data = createdData(orderId, [{ productId: 'dup', quantity: 2 }]);
  const sent = await Promise.all([1, 2, 3].map(() => publish(nc, names, 'orders.created', data)));
  expect(new Set(sent.map((s) => s.id)).size).toBe(3);
  await processed(svc, sent);
  expect(await product('dup')).toMatchObject({ onHand: 10, reserved: 2, available: 8 });
  const evs = await eventsFor(orderId);
  expect(evs.map((e) => e.type)).toEqual(['inventory.reserved']);
});

test("a failed first attempt is nak'ed and redelivered; with 3 duplicates still one reservation", async () => {
  await setStock('nak', 10, 1);
  const orderId = randomUUID();
  // A sequence advances even when its transaction rolls back: the first reservation insert for
  // this order fails, the retry succeeds.
  await svc.ctx.db.exec(`
    CREATE SEQUENCE fail_once_seq;
    CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.order_id = '${orderId}' AND nextval('fail_once_seq') = 1 THEN RAISE EXCEPTION 'injected failure'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER fail_once BEFORE INSERT ON reservations FOR EACH ROW EXECUTE FUNCTION fail_once();`);
  try {
    const data = createdData(orderId, [{ productId: 'nak', quantity: 3 }]);
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await publish(nc, names, 'orders.created', data));
    await processed(svc, sent);
    const [seq] = await svc.ctx.db.query<{ last_value: number }>(`SELECT last_value FROM fail_once_seq`);
    expect(seq!.last_value).toBeGreaterThanOrEqual(2);
    expect(await product('nak')).toMatchObject({ onHand: 10, reserved: 3 });
    expect((await eventsFor(orderId)).map((e) => e.type)).toEqual(['inventory.reserved']);
  } finally {
    await svc.ctx.db.exec(`DROP TRIGGER fail_once ON reservations; DROP FUNCTION fail_once(); DROP SEQUENCE fail_once_seq;`);
  }
});

test('200 orders racing for 50 units → exactly 50 reserved, then 50 sold, never negative', async () => {
  await setStock('hot', 50, 3);
  const orderIds = Array.from({ length: 200 }, () => randomUUID());
  let minAvailable = Infinity;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [row] = await svc.ctx.db.query<{ a: number; r: number }>(
        `SELECT on_hand - reserved AS a, reserved AS r FROM products WHERE product_id = 'hot'`,
      );
      minAvailable = Math.min(minAvailable, row!.a, row!.r);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const sent = await Promise.all(orderIds.map((id) => created(id, [{ productId: 'hot', quantity: 1 }])));
  await processed(svc, sent, 40_000);
  sampling = false;
  await sampler;
  expect(minAvailable).toBeGreaterThanOrEqual(0);
  expect(await product('hot')).toMatchObject({ onHand: 50, reserved: 50, available: 0 });

  const [counts] = await svc.ctx.db.query<{ held: number; rejected: number }>(
    `SELECT count(*) FILTER (WHERE status = 'held')::int AS held, count(*) FILTER (WHERE status = 'rejected')::int AS rejected
       FROM reservations WHERE order_id = ANY($1::uuid[])`,
    [orderIds],
  );
  expect(counts).toEqual({ held: 50, rejected: 150 });
  const ids = new Set<string>(orderIds);
  const evs = (await inventoryEvents(svc, nc, names)).filter((e) => ids.has(e.data.orderId));
  const reserved = evs.filter((e) => e.type === 'inventory.reserved');
  expect(reserved).toHaveLength(50);
  expect(evs.filter((e) => e.type === 'inventory.rejected')).toHaveLength(150);
  expect(new Set(evs.map((e) => e.data.orderId)).size).toBe(200);

  // Confirm the winners: the 50 units are sold and on hand + sold is still the initial 50.
  const confirms = await Promise.all(
    reserved.map((e) =>
      publish(nc, names, 'orders.confirmed', { version: 'v1', orderId: e.data.orderId, correlationId: 'corr', occurredAt: now() }),
    ),
  );
  await processed(svc, confirms, 30_000);
  const hot = await product('hot');
  expect(hot).toMatchObject({ onHand: 0, reserved: 0, available: 0, sold: 50 });
  expect(hot.onHand + hot.sold).toBe(50);
});
