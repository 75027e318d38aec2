import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import pg from 'pg';
import { TEST_DATABASE_URL, waitFor } from '@orderflow/kit/testing';
import { Harness, sleep } from './harness.js';

/**
 * payment-service against real NATS + Postgres and a real sandbox gateway (in-process, random
 * port). Short timeouts and breaker timings come from env. The tests share one service, so they
 * run in order: the gateway-down / slow ones last, since they move the breaker.
 */
const h = new Harness();
const HALF_OPEN_AFTER_MS = 800;

beforeAll(async () => {
  await h.start('postgres', {
    GATEWAY_TIMEOUT_MS: '1000',
    GATEWAY_MAX_RETRIES: '2',
    GATEWAY_RETRY_INITIAL_MS: '20',
    GATEWAY_RETRY_MAX_MS: '60',
    BREAKER_THRESHOLD: '3',
    BREAKER_HALF_OPEN_AFTER_MS: String(HALF_OPEN_AFTER_MS),
    PAYMENT_RECOVERY_INTERVAL_MS: '200',
    PAYMENT_RECOVERY_AFTER_MS: '1500',
    PAYMENT_IN_DOUBT_CHECK_INITIAL_MS: '100',
    PAYMENT_IN_DOUBT_CHECK_MAX_MS: '400',
  });
});
afterAll(async () => {
  await h.stop();
});

describe.sequential('payment-service', () => {
  test('inventory.reserved → one capture at the gateway and payments.completed', async () => {
    const orderId = h.newOrder();
    await h.publish('inventory.reserved', h.reserved(orderId, 42.5));
    const done = await h.waitForEvent(orderId, 'payments.completed');
    const charges = await h.gatewayCharges(orderId);
    expect(charges).toHaveLength(1);
    expect(done.data).toMatchObject({ orderId, amount: 42.5, currency: 'USD', paymentId: charges[0]!.chargeId });
    const p = await h.payment(orderId);
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ orderId, status: 'captured', amount: 42.5, attempts: 1 });
    expect(h.eventsFor(orderId)).toHaveLength(1);
  });

  test('a decline (amount over the sandbox limit) → payments.failed payment_declined, no capture', async () => {
    const orderId = h.newOrder();
    const before = h.stats();
    await h.publish('inventory.reserved', h.reserved(orderId, 10_000.5));
    const failed = await h.waitForEvent(orderId, 'payments.failed');
    expect(failed.data).toMatchObject({ reason: 'payment_declined', amount: 10_000.5 });
    expect(await h.gatewayCharges(orderId)).toHaveLength(0);
    // A decline is an answer, not a fault: one request, no retry.
    expect(h.stats().chargeRequests - before.chargeRequests).toBe(1);
    expect(h.stats().declines - before.declines).toBe(1);
    expect((await h.payment(orderId)).body).toMatchObject({ status: 'declined', attempts: 1 });
  });

  test('GET /payments/:orderId is 404 for an unknown order', async () => {
    expect((await h.payment(h.newOrder())).status).toBe(404);
    expect((await h.payment('not-a-uuid')).status).toBe(404);
  });

  test('the same inventory.reserved delivered 3× (two republished copies + a forced nak) → one charge, one answer', async () => {
    const orderId = h.newOrder();
    const data = h.reserved(orderId, 17);
    const failedBefore = await h.metric('orderflow_nats_failed_total');
    // Force a nak: the handler's transaction fails while the table is away, the kit naks, JetStream redelivers.
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    const table = `"${h.svc.ctx.db.schema}".payments`;
    const ids: string[] = [];
    try {
      await admin.query(`ALTER TABLE ${table} RENAME TO payments_away`);
      ids.push(await h.publish('inventory.reserved', data));
      await waitFor('a failed delivery', async () => (await h.metric('orderflow_nats_failed_total')) > failedBefore);
    } finally {
      await admin.query(`ALTER TABLE "${h.svc.ctx.db.schema}".payments_away RENAME TO payments`);
      await admin.end();
    }
    // The producer republishing the event under new message ids (outside JetStream's de-dup).
    ids.push(await h.publish('inventory.reserved', data));
    ids.push(await h.publish('inventory.reserved', data));
    await h.waitForEvent(orderId, 'payments.completed');
    // Every copy handled and committed (the nak'ed one on its redelivery) before counting.
    await h.processed('payment-inventory', ids);
    expect(await h.gatewayCharges(orderId)).toHaveLength(1);
    expect(h.eventsFor(orderId).map((e) => e.type)).toEqual(['payments.completed']);
    expect((await h.payment(orderId)).body).toMatchObject({ status: 'captured', attempts: 1 });
  });

  test('orders.cancelled after capture → exactly one refund', async () => {
    const orderId = h.newOrder();
    await h.publish('inventory.reserved', h.reserved(orderId, 30));
    await h.waitForEvent(orderId, 'payments.completed');
    const before = h.stats();
    // The second is a republished copy.
    const copies = [await h.publish('orders.cancelled', h.cancelled(orderId)), await h.publish('orders.cancelled', h.cancelled(orderId))];
    await waitFor('refunded', async () => (await h.payment(orderId)).body.status === 'refunded');
    await h.processed('payment-orders', copies);
    // One refund asked for, not one per copy (the gateway would absorb a second; we must not send it).
    expect(h.stats().refundRequests - before.refundRequests).toBe(1);
    expect(h.stats().refunds - before.refunds).toBe(1);
    const charges = await h.gatewayCharges(orderId);
    expect(charges).toHaveLength(1);
    expect(charges[0]!.status).toBe('refunded');
    expect(h.eventsFor(orderId).map((e) => e.type)).toEqual(['payments.completed']);
  });

  test('orders.cancelled before inventory.reserved → no charge, payments.failed order_cancelled', async () => {
    const orderId = h.newOrder();
    await h.publish('orders.cancelled', h.cancelled(orderId));
    await waitFor('tombstone', async () => (await h.payment(orderId)).body.status === 'cancelled');
    const before = h.stats();
    await h.publish('inventory.reserved', h.reserved(orderId, 12));
    const failed = await h.waitForEvent(orderId, 'payments.failed');
    expect(failed.data).toMatchObject({ reason: 'order_cancelled', amount: 12 });
    const late = await h.publish('inventory.reserved', h.reserved(orderId, 12)); // late duplicate: no second answer
    await h.processed('payment-inventory', [late]);
    expect(h.stats().chargeRequests).toBe(before.chargeRequests);
    expect(await h.gatewayCharges(orderId)).toHaveLength(0);
    expect(h.eventsFor(orderId)).toHaveLength(1);
    expect((await h.payment(orderId)).body).toMatchObject({ status: 'cancelled', attempts: 0 });
  });

  test(
    'gateway down → retries, the breaker opens (fewer gateway calls than orders), orders fail ' +
      'gateway_unavailable; it half-opens and closes on recovery',
    async () => {
      await h.setGateway({ failureRate: 1 });
      const before = h.stats();
      const rejectedBefore = await h.metric('orderflow_payment_gateway_attempts_total', { outcome: 'rejected' });
      // Two orders first: their retries trip the breaker (3 consecutive failures)...
      const first = [h.newOrder(), h.newOrder()];
      for (const id of first) await h.publish('inventory.reserved', h.reserved(id, 5));
      for (const id of first) expect((await h.waitForEvent(id, 'payments.failed')).data).toMatchObject({ reason: 'gateway_unavailable' });
      await waitFor('breaker open', async () => (await h.ready()).body.circuitBreaker?.state === 'open');
      // ...then more orders fail fast without reaching the gateway.
      const more = Array.from({ length: 6 }, () => h.newOrder());
      for (const id of more) await h.publish('inventory.reserved', h.reserved(id, 5));
      for (const id of more) {
        const f = await h.waitForEvent(id, 'payments.failed');
        expect(f.data).toMatchObject({ reason: 'gateway_unavailable' });
      }
      const calls = h.stats().chargeRequests - before.chargeRequests;
      const orders = first.length + more.length;
      expect(calls).toBeGreaterThanOrEqual(3); // the retries happened
      expect(calls).toBeLessThan(orders); // the breaker cut the rest short
      expect((await h.metric('orderflow_payment_gateway_attempts_total', { outcome: 'rejected' })) - rejectedBefore).toBeGreaterThan(0);
      for (const id of [...first, ...more]) {
        expect((await h.payment(id)).body).toMatchObject({ status: 'failed' });
        expect(await h.gatewayCharges(id)).toHaveLength(0);
      }
      // Open breaker: visible on /ready and as the gauge, but the service stays ready.
      const r = await h.ready();
      expect(r.status).toBe(200);
      expect(r.body.circuitBreaker?.state).toBe('open');
      expect(await h.metric('orderflow_circuit_breaker_state')).toBe(2);

      // Recovery: after halfOpenAfter the next call is the trial; it succeeds and the breaker closes.
      await h.setGateway({ failureRate: 0 });
      const halfOpenBefore = await h.metric('orderflow_circuit_breaker_transitions_total', { to: 'half-open' });
      await sleep(HALF_OPEN_AFTER_MS + 100);
      const after = h.newOrder();
      await h.publish('inventory.reserved', h.reserved(after, 8));
      await h.waitForEvent(after, 'payments.completed');
      expect(await h.gatewayCharges(after)).toHaveLength(1);
      await waitFor('breaker closed', async () => (await h.ready()).body.circuitBreaker?.state === 'closed');
      expect((await h.metric('orderflow_circuit_breaker_transitions_total', { to: 'half-open' })) - halfOpenBefore).toBeGreaterThanOrEqual(
        1,
      );
      expect(await h.metric('orderflow_circuit_breaker_state')).toBe(0);
      const metricsText = await (await fetch(`${h.svc.url}/metrics`)).text();
      expect(metricsText).toMatch(/orderflow_circuit_breaker_state\{[^}]*breaker="payment-gateway"[^}]*\} 0/);
    },
  );

  test('slow gateway → timeouts, gateway_unavailable; the late capture is found and refunded', async () => {
    // Longer than all three attempts together: every attempt times out before the first captures.
    await h.setGateway({ latencyMs: 5000, failureRate: 0 });
    const orderId = h.newOrder();
    await h.publish('inventory.reserved', h.reserved(orderId, 9));
    const failed = await h.waitForEvent(orderId, 'payments.failed');
    expect(failed.data).toMatchObject({ reason: 'gateway_unavailable' });
    expect(String(failed.data.detail)).toMatch(/timed out|breaker/);
    await h.setGateway({ latencyMs: 0 });
    // The sandbox finished the first request after we gave up: one capture, same idempotency key for the retries.
    await waitFor('late capture', async () => (await h.gatewayCharges(orderId)).length === 1);
    // The recovery sweep reconciles the charge in doubt and refunds it: a failed order is never left charged.
    await waitFor('refunded', async () => (await h.gatewayCharges(orderId))[0]?.status === 'refunded', 20_000);
    await waitFor('payment refunded', async () => (await h.payment(orderId)).body.status === 'refunded');
    expect(await h.gatewayCharges(orderId)).toHaveLength(1);
    expect(h.eventsFor(orderId)).toHaveLength(1);
  });
});
