import {
  claimWindow,
  orderOutcomeSweep,
  type FinalOrderOutcome,
  type Lifecycle,
  type OrderOutcomes,
  type ServiceContext,
} from '@orderflow/kit';
import type { PaymentMetrics } from './metrics.js';
import type { PaymentProcessor } from './processor.js';
import { claimUnsettledCaptures, markOrderConfirmed, markRefundOwed, scheduleOrderCheck, type UnsettledCapture } from './repository.js';

/**
 * Refunds captured charges of cancelled orders, found by state rather than by a message.
 *
 * orders.cancelled is what tells us a capture is owed back (an order that timed out while its
 * charge was still running). If that message is lost, the row still says `captured`; nothing we
 * hold can tell this order from a confirmed one. Every saga is final once the saga timeout has
 * passed, so for each capture older than the timeout plus a margin whose outcome we never heard,
 * the sweeper asks order-service — the saga's owner, whose row is durable — once: cancelled → the
 * capture is refunded (the same refund path as orders.cancelled), confirmed → noted, never asked
 * again. Not final yet, unknown, or order-service away: nothing is guessed, the row is looked at
 * again later with a growing delay.
 *
 * Idempotent with two replicas and with the orders.cancelled handler: rows are claimed with
 * SKIP LOCKED and a lease, the refund is owed only by a conditional update of a `captured` row not
 * yet flagged, and the gateway refund carries the key `refund-<chargeId>`.
 */

export interface RefundSweepOptions {
  ctx: ServiceContext;
  processor: PaymentProcessor;
  orders: OrderOutcomes;
  metrics: PaymentMetrics;
  intervalMs: number;
  /** A capture older than this belongs to a saga that has ended (saga timeout + margin). */
  afterMs: number;
  batchSize?: number;
  lookupConcurrency?: number;
}

export function refundSweep(o: RefundSweepOptions): Lifecycle {
  const { ctx, processor, metrics } = o;
  const log = ctx.log;
  const window = claimWindow(o, ctx.db);

  const settle = async (c: UnsettledCapture, outcome: FinalOrderOutcome): Promise<void> => {
    const base = { orderId: c.orderId, ageMs: c.ageMs, checks: c.checks };
    if (outcome.status === 'cancelled') {
      if (!(await markRefundOwed(ctx.db, c.orderId))) {
        metrics.refundSweeper.inc({ action: 'already_settled' });
        log.info({ ...base, orderStatus: 'cancelled' }, 'payment.sweep_already_settled');
        return;
      }
      metrics.refundSweeper.inc({ action: 'refund_owed' });
      log.warn({ ...base, orderStatus: 'cancelled', reason: outcome.reason }, 'payment.sweep_refund_owed');
      await processor.refund(c.orderId);
      return;
    }
    await markOrderConfirmed(ctx.db, c.orderId);
    metrics.refundSweeper.inc({ action: 'order_confirmed' });
    // The normal case for every capture: not worth more than a debug line.
    log.debug({ ...base, orderStatus: 'confirmed' }, 'payment.sweep_order_confirmed');
  };

  return orderOutcomeSweep({
    service: 'payment',
    name: 'refund',
    log,
    orders: o.orders,
    actions: metrics.refundSweeper,
    intervalMs: o.intervalMs,
    lookupConcurrency: o.lookupConcurrency,
    claim: () => claimUnsettledCaptures(ctx.db, window),
    settle,
    recheckIn: (c, inMs) => scheduleOrderCheck(ctx.db, c.orderId, inMs),
  });
}
