import {
  claimWindow,
  enqueue,
  makeEvent,
  orderOutcomeSweep,
  type FinalOrderOutcome,
  type Lifecycle,
  type OrderOutcomes,
  type ServiceContext,
} from '@orderflow/kit';
import type { StockMetrics } from './metrics.js';
import { claimStaleHolds, commit, release, scheduleHoldCheck, type StaleHold } from './repository.js';

/**
 * Compensation that does not depend on one message surviving.
 *
 * A hold normally ends with orders.confirmed (commit) or orders.cancelled / payments.failed
 * (release). If that message is lost (dead-lettered, deleted, a bug), the hold would stay forever:
 * units kept from sale, or sold units still on the shelf. Every saga is final once the saga timeout
 * has passed, so a hold older than the timeout plus a margin has lost its message; the sweeper asks
 * order-service (GET /orders/:id) what became of the order and does what the message would have
 * done: commit for confirmed, release (with inventory.released) for cancelled.
 *
 * Why ask order-service rather than decide by age alone or by state kept here: the outcome message
 * is the very thing that was lost, so nothing we recorded can tell a confirmed order from a
 * cancelled one, and releasing the hold of a confirmed order would put sold units back on sale.
 * order-service is the saga's single writer and its row is durable. When it cannot be asked
 * (down, 5xx) or does not know the order (404), nothing is guessed: the hold stays, the sweeper
 * logs and counts it, and looks again later with a growing delay.
 *
 * Idempotent with two replicas and with the handlers: holds are claimed with SKIP LOCKED and a
 * lease, and commit()/release() act only on a reservation still `held`, under its row lock.
 */

export interface ReservationSweeperOptions {
  ctx: ServiceContext;
  orders: OrderOutcomes;
  metrics: StockMetrics;
  /** How often to look for stale holds. */
  intervalMs: number;
  /** A hold older than this has outlived every saga (saga timeout + margin). */
  afterMs: number;
  /** Holds looked at per round. */
  batchSize?: number;
  /** order-service lookups at once. */
  lookupConcurrency?: number;
}

export function reservationSweeper(o: ReservationSweeperOptions): Lifecycle {
  const { ctx, metrics } = o;
  const log = ctx.log;
  const window = claimWindow(o, ctx.db);

  const settle = async (hold: StaleHold, outcome: FinalOrderOutcome): Promise<void> => {
    const base = { orderId: hold.orderId, ageMs: hold.ageMs, checks: hold.checks };
    if (outcome.status === 'confirmed') {
      const out = await ctx.db.tx((sql) => commit(sql, hold.orderId));
      const action = out.kind === 'committed' ? 'committed' : 'already_settled';
      metrics.sweeper.inc({ action });
      metrics.outcomes.inc({ event: 'sweeper', result: out.kind });
      log.warn(
        { ...base, orderStatus: 'confirmed', action },
        out.kind === 'committed' ? 'inventory.sweep_committed' : 'inventory.sweep_already_settled',
      );
      return;
    }
    const reason = outcome.reason ?? 'order_cancelled';
    const { out, events } = await ctx.db.tx(async (sql) => {
      const r = await release(sql, hold.orderId, reason);
      if (r.kind !== 'released') return { out: r, events: [] };
      const data = {
        version: 'v1' as const,
        orderId: hold.orderId,
        correlationId: hold.correlationId,
        occurredAt: new Date().toISOString(),
        reason,
      };
      const released = [makeEvent(ctx.names, 'inventory.released', data)];
      await enqueue(sql, released);
      return { out: r, events: released };
    });
    ctx.relay.committed(events);
    const action = out.kind === 'released' ? 'released' : 'already_settled';
    metrics.sweeper.inc({ action });
    metrics.outcomes.inc({ event: 'sweeper', result: out.kind });
    log.warn(
      { ...base, orderStatus: 'cancelled', reason, action },
      out.kind === 'released' ? 'inventory.sweep_released' : 'inventory.sweep_already_settled',
    );
  };

  return orderOutcomeSweep({
    service: 'inventory',
    name: 'reservation',
    log,
    orders: o.orders,
    actions: metrics.sweeper,
    intervalMs: o.intervalMs,
    lookupConcurrency: o.lookupConcurrency,
    claim: () => claimStaleHolds(ctx.db, window),
    settle,
    recheckIn: (hold, inMs) => scheduleHoldCheck(ctx.db, hold.orderId, inMs),
  });
}
