import { bulkhead } from 'cockatiel';
import type { Lifecycle, OrderOutcome, OrderOutcomes, ServiceContext } from '@orderflow/kit';
import { periodic } from '../periodic.js';
import type { PaymentMetrics } from './metrics.js';
import type { PaymentProcessor } from './processor.js';
import { recheckDelay } from './recheck-delay.js';
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
  const { ctx, processor, orders, metrics } = o;
  const log = ctx.log;
  const lookups = bulkhead(o.lookupConcurrency ?? 4, Number.MAX_SAFE_INTEGER);
  const leaseMs = Math.max(60_000, 2 * o.intervalMs);
  const backoff = { initialMs: o.intervalMs, maxMs: Math.max(o.intervalMs, 15 * 60_000) };

  const act = async (c: UnsettledCapture, outcome: OrderOutcome): Promise<void> => {
    const base = { orderId: c.orderId, ageMs: c.ageMs, checks: c.checks };
    if (outcome.kind === 'final' && outcome.status === 'cancelled') {
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
    if (outcome.kind === 'final') {
      await markOrderConfirmed(ctx.db, c.orderId);
      metrics.refundSweeper.inc({ action: 'order_confirmed' });
      // The normal case for every capture: not worth more than a debug line.
      log.debug({ ...base, orderStatus: 'confirmed' }, 'payment.sweep_order_confirmed');
      return;
    }
    const nextInMs = recheckDelay(c.checks - 1, backoff);
    await scheduleOrderCheck(ctx.db, c.orderId, nextInMs);
    if (outcome.kind === 'open') {
      metrics.refundSweeper.inc({ action: 'order_open' });
      log.warn({ ...base, orderStatus: outcome.status, nextInMs }, 'payment.sweep_order_open');
    } else {
      metrics.refundSweeper.inc({ action: 'unknown_order' });
      log.error({ ...base, nextInMs }, 'payment.sweep_unknown_order');
    }
  };

  return periodic('refund', o.intervalMs, log, async (signal) => {
    const captures = await claimUnsettledCaptures(ctx.db, {
      olderThanMs: o.afterMs,
      limit: o.batchSize ?? 100,
      leaseMs,
      skipLocked: ctx.db.kind === 'postgres',
    });
    // order-service away: the first failed lookup ends the round (the rest keep their lease).
    let away = false;
    await Promise.all(
      captures.map((c) =>
        lookups.execute(async () => {
          if (away || signal.aborted) return;
          let outcome: OrderOutcome;
          try {
            outcome = await orders.outcome(c.orderId, signal);
          } catch (err) {
            if (signal.aborted) return;
            away = true;
            metrics.refundSweeper.inc({ action: 'lookup_failed' });
            log.warn({ err, orderId: c.orderId, ageMs: c.ageMs }, 'payment.sweep_lookup_failed');
            return;
          }
          try {
            await act(c, outcome);
          } catch (err) {
            metrics.refundSweeper.inc({ action: 'failed' });
            log.warn({ err, orderId: c.orderId, outcome }, 'payment.sweep_failed');
          }
        }),
      ),
    );
  });
}
