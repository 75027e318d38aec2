/**
 * The saga's lock for a consumer batch: the first event of a transaction locks the orders of all
 * its events (peers) in one statement, and every later event of the transaction sees the order as
 * the earlier ones left it. An order we never stored stays unknown, and the others still apply.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { makeEvent, migrate, Names, openPostgres, OUTBOX_MIGRATIONS, type Db, type IncomingEvent, type TxSql } from '@orderflow/kit';
import { dropSchema, TEST_DATABASE_URL } from '@orderflow/kit/testing';
import { MIGRATIONS } from '../src/migrations.js';
import { newOrder } from '../src/orders/new-order.js';
import { applySaga, createOrder, getOrder } from '../src/orders/repository.js';

const schema = `sagalock_${randomBytes(4).toString('hex')}`;
const names = new Names(`t_${randomBytes(3).toString('hex')}`);
let db: Db;
let other: Db;
beforeAll(async () => {
  db = await openPostgres({ url: TEST_DATABASE_URL, schema });
  other = await openPostgres({ url: TEST_DATABASE_URL, schema });
  await migrate(db, [...OUTBOX_MIGRATIONS, ...MIGRATIONS]);
});
afterAll(async () => {
  await db?.close();
  await other?.close();
  await dropSchema(schema);
});

async function placed(): Promise<string> {
  const o = newOrder(names, { customerId: 'c', currency: 'EUR', items: [{ productId: 'p', quantity: 1 }] }, 'corr');
  await createOrder(db, o);
  return o.orderId;
}

/** An event naming an order, as a peer of a consumer batch. */
const about = (orderId: string): IncomingEvent =>
  ({
    ...makeEvent(names, 'payments.completed', {
      version: 'v1',
      orderId,
      correlationId: 'corr',
      occurredAt: new Date().toISOString(),
      paymentId: 'ch',
      amount: 1,
      currency: 'EUR',
    }),
    data: { orderId },
  }) as unknown as IncomingEvent;

test('the first event of a batch locks every order of the batch; later events see earlier changes', async () => {
  const [a, b] = [await placed(), await placed()];
  const unknown = '00000000-0000-4000-8000-000000000000';
  const peers = [about(a), about(unknown), about(b), about(a)];
  const writes: string[] = [];
  const computed = await db.tx(async (tx) => {
    // Queued writes recorded: the batch's changes go out as one, at commit.
    const sql: TxSql = { ...tx, write: (text, params) => void (writes.push(text), tx.write(text, params)) };
    expect(await applySaga(sql, names, a, { kind: 'reserved', amount: 10 }, peers)).toMatchObject({ order: { status: 'reserved' } });
    // b is locked already, by the statement that locked a: another session cannot take it.
    await expect(other.tx((o) => o.query(`SELECT id FROM orders WHERE id = $1 FOR UPDATE NOWAIT`, [b]))).rejects.toMatchObject({
      code: '55P03',
    });
    expect(await applySaga(sql, names, unknown, { kind: 'paid' }, peers)).toBeUndefined();
    const rejected = await applySaga(sql, names, b, { kind: 'rejected', reason: 'out_of_stock' }, peers);
    expect(rejected).toMatchObject({ order: { status: 'cancelled', reason: 'out_of_stock' } });
    // a again, in the same transaction: it moves on from where the first event left it.
    const again = await applySaga(sql, names, a, { kind: 'paid' }, peers);
    expect(again).toMatchObject({ before: 'reserved', order: { status: 'confirmed', total: 10 } });
    expect(again?.order.history.map((h) => h.status)).toEqual(['pending', 'reserved', 'paid', 'confirmed']);
    expect(writes).toEqual([]);
    return { a: again?.order, b: rejected?.order };
  });
  // Three saga steps on two orders and their two events: one statement, written at commit.
  expect(writes).toHaveLength(1);
  expect(writes[0]).toMatch(/UPDATE orders o[\s\S]*FROM unnest[\s\S]*INSERT INTO outbox/);
  // What the transaction computed is what it stored, to the last history entry.
  expect(await getOrder(db, a)).toEqual(computed.a);
  expect(await getOrder(db, b)).toEqual(computed.b);
  expect(await getOrder(db, a)).toMatchObject({ status: 'confirmed', total: 10 });
  expect((await getOrder(db, a))?.history.map((h) => h.status)).toEqual(['pending', 'reserved', 'paid', 'confirmed']);
  expect(await getOrder(db, b)).toMatchObject({ status: 'cancelled', reason: 'out_of_stock' });
  const events = await db.query<{ subject: string }>(`SELECT subject FROM outbox WHERE payload::jsonb->>'orderId' = ANY($1) ORDER BY id`, [
    [a, b],
  ]);
  expect(events.map((e) => names.eventType(e.subject))).toEqual([
    'orders.created',
    'orders.created',
    'orders.cancelled',
    'orders.confirmed',
  ]);
});
