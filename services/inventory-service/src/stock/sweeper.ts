import { bulkhead, ExponentialBackoff, halfJitterGenerator } from 'cockatiel';
import { enqueue, makeEvent, type Lifecycle, type OrderOutcome, type OrderOutcomes, type ServiceContext } from '@orderflow/kit';
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
  const { ctx, orders, metrics } = o;
  const log = ctx.log;
  const lookups = bulkhead(o.lookupConcurrency ?? 4, Number.MAX_SAFE_INTEGER);
  // An undecided hold is looked at again after a growing delay: a few times soon, then rarely.
  const recheck = new ExponentialBackoff({
    initialDelay: o.intervalMs,
    maxDelay: Math.max(o.intervalMs, 15 * 60_000),
    generator: halfJitterGenerator,
  });
  const recheckDelay = (checks: number) => {
    let b = recheck.next();
    for (let i = 1; i < checks; i++) b = b.next(undefined);
    return b.duration;
  };
  // A claimed hold is not claimed again by anyone before this, unless its check reschedules it.
  const leaseMs = Math.max(60_000, 2 * o.intervalMs);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const abort = new AbortController();

  const act = async (hold: StaleHold, outcome: OrderOutcome): Promise<void> => {
    const base = { orderId: hold.orderId, ageMs: hold.ageMs, checks: hold.checks };
    if (outcome.kind === 'final' && outcome.status === 'confirmed') {
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
    if (outcome.kind === 'final') {
      const reason = outcome.reason ?? 'order_cancelled';
      const out = await ctx.db.tx(async (sql) => {
        const r = await release(sql, hold.orderId, reason);
        if (r.kind === 'released') {
          const data = {
            version: 'v1' as const,
            orderId: hold.orderId,
            correlationId: hold.correlationId,
            occurredAt: new Date().toISOString(),
            reason,
          };
          await enqueue(sql, [makeEvent(ctx.names, 'inventory.released', data)]);
        }
        return r;
      });
      if (out.kind === 'released') ctx.relay.wake();
      const action = out.kind === 'released' ? 'released' : 'already_settled';
      metrics.sweeper.inc({ action });
      metrics.outcomes.inc({ event: 'sweeper', result: out.kind });
      log.warn(
        { ...base, orderStatus: 'cancelled', reason, action },
        out.kind === 'released' ? 'inventory.sweep_released' : 'inventory.sweep_already_settled',
      );
      return;
    }
    const nextInMs = recheckDelay(hold.checks);
    await scheduleHoldCheck(ctx.db, hold.orderId, nextInMs);
    if (outcome.kind === 'open') {
      metrics.sweeper.inc({ action: 'order_open' });
      log.warn({ ...base, orderStatus: outcome.status, nextInMs }, 'inventory.sweep_order_open');
    } else {
      metrics.sweeper.inc({ action: 'unknown_order' });
      log.error({ ...base, nextInMs }, 'inventory.sweep_unknown_order');
    }
  };

  const round = async (): Promise<void> => {
    const holds = await claimStaleHolds(ctx.db, {
      olderThanMs: o.afterMs,
      limit: o.batchSize ?? 100,
      leaseMs,
      skipLocked: ctx.db.kind === 'postgres',
    });
    // order-service away: the first failed lookup ends the round (the rest keep their lease).
    let away = false;
    await Promise.all(
      holds.map((hold) =>
        lookups.execute(async () => {
          if (away || stopped) return;
          let outcome: OrderOutcome;
          try {
            outcome = await orders.outcome(hold.orderId, abort.signal);
          } catch (err) {
            if (stopped) return;
            away = true;
            metrics.sweeper.inc({ action: 'lookup_failed' });
            log.warn({ err, orderId: hold.orderId, ageMs: hold.ageMs }, 'inventory.sweep_lookup_failed');
            return;
          }
          try {
            await act(hold, outcome);
          } catch (err) {
            metrics.sweeper.inc({ action: 'failed' });
            log.warn({ err, orderId: hold.orderId, outcome }, 'inventory.sweep_failed');
          }
        }),
      ),
    );
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = round()
        .catch((err: unknown) => log.warn({ err }, 'inventory.sweep_round_failed'))
        .finally(schedule);
    }, o.intervalMs);
  };

  return {
    start() {
      if (timer || running || stopped) return;
      schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      abort.abort();
      await running;
    },
  };
}
