import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { waitFor } from '@orderflow/kit/testing';
import { Harness, sleep } from './harness.js';
import { claimInDoubtDue, claimUnsettledCaptures, countInDoubt } from '../src/payments/repository.js';

/**
 * The same service on embedded PGlite (one connection: the gateway call must never hold a
 * transaction), plus the two paths that need a slow charge or a crash: a cancel arriving while
 * the charge is in flight, and a claim left `charging` by a crash after the ack.
 */
const h = new Harness();

beforeAll(async () => {
  await h.start('pglite', { PAYMENT_RECOVERY_INTERVAL_MS: '200', PAYMENT_RECOVERY_AFTER_MS: '1000' });
});
afterAll(async () => {
  await h.stop();
});

describe.sequential('payment-service on PGlite', () => {
  test('captures once for a burst of orders, each answered once', async () => {
    const ids = Array.from({ length: 20 }, () => h.newOrder());
    await Promise.all(ids.map((id, i) => h.publish('inventory.reserved', h.reserved(id, 10 + i))));
    for (const id of ids) await h.waitForEvent(id, 'payments.completed');
    for (const id of ids) expect(await h.gatewayCharges(id)).toHaveLength(1);
    for (const id of ids) expect(h.eventsFor(id)).toHaveLength(1);
  });

  test('a slow charge keeps reads answering (no transaction held across the call)', async () => {
    await h.setGateway({ latencyMs: 700 });
    const orderId = h.newOrder();
    await h.publish('inventory.reserved', h.reserved(orderId, 3));
    await waitFor('charging', async () => (await h.payment(orderId)).body.status === 'charging');
    // Reads go through while the charge is still out: it holds no transaction (and no connection).
    expect((await h.payment(h.newOrder())).status).toBe(404);
    expect((await h.payment(orderId)).body.status).toBe('charging');
    await h.waitForEvent(orderId, 'payments.completed');
    await h.setGateway({ latencyMs: 0 });
  });

  test('orders.cancelled while the charge is in flight → payments.failed order_cancelled and the capture refunded', async () => {
    await h.setGateway({ latencyMs: 600 });
    const orderId = h.newOrder();
    await h.publish('inventory.reserved', h.reserved(orderId, 21));
    await waitFor('charging', async () => (await h.payment(orderId)).body.status === 'charging');
    await h.publish('orders.cancelled', h.cancelled(orderId));
    const failed = await h.waitForEvent(orderId, 'payments.failed');
    expect(failed.data).toMatchObject({ reason: 'order_cancelled', amount: 21 });
    await waitFor('refunded', async () => (await h.payment(orderId)).body.status === 'refunded');
    const charges = await h.gatewayCharges(orderId);
    expect(charges).toHaveLength(1);
    expect(charges[0]!.status).toBe('refunded');
    expect(h.eventsFor(orderId)).toHaveLength(1);
    await h.setGateway({ latencyMs: 0 });
  });

  test('a claim left `charging` by a crash after the ack is resumed by the recovery sweep', async () => {
    const orderId = h.newOrder();
    // What a crash between the claim's commit (message acked) and the gateway call leaves behind.
    await h.svc.ctx.db.query(
      `INSERT INTO payments (order_id, status, amount, currency, correlation_id, updated_at) VALUES ($1,
        'charging', 14, 'USD', 'corr-crash', now() - interval '1 minute')`,
      [orderId],
    );
    const done = await h.waitForEvent(orderId, 'payments.completed');
    expect(done.data).toMatchObject({ orderId, amount: 14, correlationId: 'corr-crash' });
    expect(await h.gatewayCharges(orderId)).toHaveLength(1);
    await sleep(500);
    expect(h.eventsFor(orderId)).toHaveLength(1);
  });

  test('cancel before reserve and duplicate reservations on PGlite', async () => {
    const orderId = h.newOrder();
    await h.publish('orders.cancelled', h.cancelled(orderId));
    await waitFor('tombstone', async () => (await h.payment(orderId)).body.status === 'cancelled');
    await h.publish('inventory.reserved', h.reserved(orderId, 4));
    await h.publish('inventory.reserved', h.reserved(orderId, 4));
    expect((await h.waitForEvent(orderId, 'payments.failed')).data).toMatchObject({ reason: 'order_cancelled' });
    await sleep(500);
    expect(h.eventsFor(orderId)).toHaveLength(1);
    expect(await h.gatewayCharges(orderId)).toHaveLength(0);
  });

  test("the sweeps' claims and counts run on PGlite (no SKIP LOCKED there)", async () => {
    const db = h.svc.ctx.db;
    const orderId = h.newOrder();
    await h.publish('inventory.reserved', h.reserved(orderId, 4));
    await h.waitForEvent(orderId, 'payments.completed');
    const unsettled = await claimUnsettledCaptures(db, { olderThanMs: 0, limit: 100, leaseMs: 60_000, skipLocked: false });
    expect(unsettled.map((c) => c.orderId)).toContain(orderId);
    expect(
      (await claimUnsettledCaptures(db, { olderThanMs: 0, limit: 100, leaseMs: 60_000, skipLocked: false })).map((c) => c.orderId),
    ).not.toContain(orderId);
    // Given up on: the running recovery sweep leaves it alone, so the counts are this row's.
    await db.query(`UPDATE payments SET in_doubt = true, in_doubt_since = now(), in_doubt_gave_up_at = now() WHERE order_id = $1`, [
      orderId,
    ]);
    expect(await claimInDoubtDue(db, { limit: 100, leaseMs: 60_000, skipLocked: false })).not.toContain(orderId);
    expect(await countInDoubt(db)).toEqual({ checking: 0, unresolved: 1 });
    await db.query(`UPDATE payments SET in_doubt = false, in_doubt_gave_up_at = NULL WHERE order_id = $1`, [orderId]);
  });
});
