import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { waitFor } from '@orderflow/kit/testing';
import { FAST_IN_DOUBT, Harness } from './harness.js';
import { SwallowingProxy } from './swallowing-proxy.js';

/**
 * A charge whose request never reaches the gateway (a pass-through in front of it swallows every
 * charge request, so each attempt times out): the gateway has no charge, and never will. The
 * gateway contract bounds its work (it never captures a request later than its maximum processing
 * time after it was sent), so a lookup made past the last attempt's send time + that bound which
 * finds nothing settles the doubt as never_captured — on that fact, with no refund. Before the
 * bound the same finding only schedules the next check. (The late capture within the bound, found
 * and refunded, is in-doubt.test.ts.)
 */
const MAX_PROCESSING_MS = 5000;

describe('a charge request that never reached the gateway', () => {
  const h = new Harness();
  const proxy = new SwallowingProxy(() => h.gw.url);
  beforeAll(async () => {
    await proxy.start();
    await h.start('postgres', {
      ...FAST_IN_DOUBT,
      GATEWAY_MAX_RETRIES: '1',
      PAYMENT_GATEWAY_URL: proxy.url,
      PAYMENT_GATEWAY_MAX_PROCESSING_MS: String(MAX_PROCESSING_MS),
    });
  });
  afterAll(async () => {
    await h.stop();
    await proxy.stop();
  });

  test('is resolved never_captured by the first lookup past the gateway deadline, without a refund', async () => {
    const orderId = h.newOrder();
    await h.publish('inventory.reserved', h.reserved(orderId, 17));
    const failed = await h.waitForEvent(orderId, 'payments.failed');
    expect(failed.data).toMatchObject({ reason: 'gateway_unavailable' });
    expect(String(failed.data.detail)).toMatch(/in doubt/);
    expect(proxy.swallowed).toBeGreaterThanOrEqual(1);

    // Before the bound nothing found only means "not yet": such a check schedules the next one
    // (nothing_captured is counted only for lookups started before the deadline).
    await waitFor(
      'a re-check before the bound that found nothing',
      async () => (await h.metric('orderflow_payment_in_doubt_checks_total', { result: 'nothing_captured' })) >= 1,
    );

    await waitFor('resolved never_captured', async () => (await h.payment(orderId)).body.reason === 'in_doubt_never_captured', 30_000);
    const p = (await h.payment(orderId)).body;
    expect(p).toMatchObject({ status: 'failed', reason: 'in_doubt_never_captured' });
    expect(p.inDoubt).toBeUndefined();
    // Resolved only after the last attempt's send time + the bound.
    const [row] = await h.svc.ctx.db.query<{ in_doubt: boolean; after_ms: number }>(
      `SELECT in_doubt, (extract(epoch FROM updated_at - in_doubt_last_sent_at) * 1000)::float8 AS after_ms
        FROM payments WHERE order_id = $1`,
      [orderId],
    );
    expect(row?.in_doubt).toBe(false);
    expect(row!.after_ms).toBeGreaterThan(MAX_PROCESSING_MS);

    expect(await h.metric('orderflow_payment_in_doubt_checks_total', { result: 'never_captured' })).toBe(1);
    expect(await h.metric('orderflow_payment_in_doubt_checks_total', { result: 'gave_up' })).toBe(0);
    await waitFor('in-doubt gauge back to 0', async () => (await h.metric('orderflow_payments_in_doubt', { state: 'checking' })) === 0);
    // The gateway never saw the charge, captured nothing, refunded nothing; one answer to the saga.
    expect(h.stats()).toMatchObject({ chargeRequests: 0, captures: 0, refundRequests: 0 });
    expect(h.stats().lookups).toBeGreaterThanOrEqual(2);
    expect(h.eventsFor(orderId).map((e) => e.type)).toEqual(['payments.failed']);
  });
});
