import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { waitFor } from '@orderflow/kit/testing';
import { FAST_IN_DOUBT, Harness } from './harness.js';

/**
 * Charges whose outcome at the gateway is unknown, against a real sandbox gateway that captures
 * after the client gave up (captureDelayMs: the charge waits at the gateway until the test lowers
 * the delay, so "not captured yet" is a fact, not a race) and, in one test, answers a retry with
 * 409 while the first request still runs (keyInUse: conflict), as real card gateways do.
 */
describe.sequential('in-doubt charges are re-checked until settled', () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start('postgres', FAST_IN_DOUBT);
  });
  afterAll(async () => {
    await h.stop();
  });

  test('a charge the gateway captures after every attempt timed out is found by a later re-check and refunded', async () => {
    await h.setGateway({ captureDelayMs: 600_000, keyInUse: 'wait' });
    const orderId = h.newOrder();
    await h.publish('inventory.reserved', h.reserved(orderId, 11));
    const failed = await h.waitForEvent(orderId, 'payments.failed');
    expect(failed.data).toMatchObject({ reason: 'gateway_unavailable' });
    // Looked up at the gateway twice while the charge still waits there: nothing found, still in doubt.
    const lookupsBefore = h.stats().lookups;
    await waitFor('two re-checks with nothing captured', async () => h.stats().lookups - lookupsBefore >= 2, 45_000);
    expect(await h.gatewayCharges(orderId)).toHaveLength(0);
    const pending = (await h.payment(orderId)).body;
    expect(pending).toMatchObject({ status: 'failed', reason: 'gateway_unavailable' });
    expect(pending.inDoubt?.checks).toBeGreaterThanOrEqual(1);
    expect(pending.inDoubt?.nextCheckAt).toBeTypeOf('string');
    expect(await h.metric('orderflow_payment_in_doubt_checks_total', { result: 'nothing_captured' })).toBeGreaterThanOrEqual(1);

    // The gateway finally captures, long after the client gave up.
    await h.setGateway({ captureDelayMs: 0 });
    await waitFor('late capture refunded', async () => (await h.gatewayCharges(orderId))[0]?.status === 'refunded');
    await waitFor('payment settled', async () => (await h.payment(orderId)).body.status === 'refunded');
    const settled = (await h.payment(orderId)).body;
    expect(settled.inDoubt).toBeUndefined();
    expect(settled.reason).toBe('in_doubt_capture_refunded');
    expect(await h.gatewayCharges(orderId)).toHaveLength(1);
    expect(h.eventsFor(orderId).map((e) => e.type)).toEqual(['payments.failed']);
    expect(await h.metric('orderflow_payment_in_doubt_checks_total', { result: 'capture_refunded' })).toBeGreaterThanOrEqual(1);
  });

  test(
    'a 409 "key in use" answer to the retry of a timed-out attempt is not a decline: the charge stays in ' +
      'doubt and its late capture is refunded',
    async () => {
      await h.setGateway({ captureDelayMs: 600_000, keyInUse: 'conflict' });
      const orderId = h.newOrder();
      const before = h.stats();
      await h.publish('inventory.reserved', h.reserved(orderId, 13));
      const failed = await h.waitForEvent(orderId, 'payments.failed');
      // The first attempt timed out, the retry got 409 while the first still runs.
      expect(h.stats().keyInUse - before.keyInUse).toBeGreaterThanOrEqual(1);
      expect(failed.data).toMatchObject({ reason: 'gateway_unavailable' });
      expect(String(failed.data.detail)).toMatch(/409.*in doubt/);
      const pending = (await h.payment(orderId)).body;
      expect(pending.status).toBe('failed');
      expect(pending.inDoubt).toBeDefined();

      await h.setGateway({ captureDelayMs: 0, keyInUse: 'wait' });
      await waitFor('late capture refunded', async () => (await h.gatewayCharges(orderId))[0]?.status === 'refunded');
      await waitFor('payment settled', async () => (await h.payment(orderId)).body.status === 'refunded');
      expect((await h.payment(orderId)).body.inDoubt).toBeUndefined();
    },
  );
});

describe('past the horizon an in-doubt charge is surfaced, never cleared', () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start('postgres', { ...FAST_IN_DOUBT, PAYMENT_IN_DOUBT_HORIZON_MS: '300' });
  });
  afterAll(async () => {
    await h.stop();
  });

  test('nothing found within the horizon: the checks stop, the row stays in doubt, the gauge counts it unresolved', async () => {
    await h.setGateway({ captureDelayMs: 600_000 });
    const orderId = h.newOrder();
    await h.publish('inventory.reserved', h.reserved(orderId, 7));
    await h.waitForEvent(orderId, 'payments.failed');
    await waitFor('given up', async () => (await h.payment(orderId)).body.inDoubt?.gaveUpAt);
    const p = (await h.payment(orderId)).body;
    expect(p).toMatchObject({ status: 'failed', reason: 'gateway_unavailable' });
    expect(p.inDoubt?.nextCheckAt).toBeUndefined();
    expect(await h.metric('orderflow_payment_in_doubt_checks_total', { result: 'gave_up' })).toBe(1);
    await waitFor('gauge shows it unresolved', async () => (await h.metric('orderflow_payments_in_doubt', { state: 'unresolved' })) === 1);
    // Still in doubt in the row: given up on, not cleared.
    const [row] = await h.svc.ctx.db.query<{ in_doubt: boolean; status: string }>(
      `SELECT in_doubt, status FROM payments WHERE order_id = $1`,
      [orderId],
    );
    expect(row).toEqual({ in_doubt: true, status: 'failed' });
  });
});
