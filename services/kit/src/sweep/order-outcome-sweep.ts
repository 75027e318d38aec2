import { bulkhead } from 'cockatiel';
import type { Counter } from 'prom-client';
import type { OrderOutcome, OrderOutcomes } from '../clients/order-outcome.js';
import type { Lifecycle } from '../definition.js';
import type { Logger } from '../log.js';
import { periodic } from './periodic.js';
import { recheckDelay } from './recheck-delay.js';

/** A row whose order outcome was never heard, claimed for one round. */
export interface UnsettledOrder {
  orderId: string;
  /** Lookups so far, this one included. */
  checks: number;
  ageMs: number;
}

export type FinalOrderOutcome = Extract<OrderOutcome, { kind: 'final' }>;

export interface OrderOutcomeSweepOptions<T extends UnsettledOrder> {
  /** Prefix of the log events (`<service>.sweep_order_open`, …), e.g. 'inventory'. */
  service: string;
  /** Named in the round-failure log line, e.g. 'refund'. */
  name: string;
  log: Logger;
  orders: OrderOutcomes;
  /** Counts what became of each row, by `action`. */
  actions: Counter<'action'>;
  intervalMs: number;
  /** order-service lookups at once. */
  lookupConcurrency?: number;
  /** Claims this round's rows (with a lease, so replicas do not ask twice). */
  claim: () => Promise<T[]>;
  /** Does what the lost outcome message would have done; counts and logs its own action. */
  settle: (row: T, outcome: FinalOrderOutcome) => Promise<void>;
  /** The order is not final or not known: look at the row again in `inMs`. */
  recheckIn: (row: T, inMs: number) => Promise<void>;
}

/**
 * The sweep both inventory (stale holds) and payment (unsettled captures) run: rows whose outcome
 * message may have been lost are looked up at order-service, the saga's owner, and settled from its
 * answer. Nothing is guessed: an order not final yet or unknown is asked about again after a delay
 * that grows with each check (cockatiel, half jitter); order-service away ends the round at the
 * first failed lookup, and the rest keep their lease until the next round.
 */
export function orderOutcomeSweep<T extends UnsettledOrder>(o: OrderOutcomeSweepOptions<T>): Lifecycle {
  const { log, actions } = o;
  const lookups = bulkhead(o.lookupConcurrency ?? 4, Number.MAX_SAFE_INTEGER);
  const recheck = { initialMs: o.intervalMs, maxMs: Math.max(o.intervalMs, 15 * 60_000) };

  const act = async (row: T, outcome: OrderOutcome): Promise<void> => {
    if (outcome.kind === 'final') return o.settle(row, outcome);
    const nextInMs = recheckDelay(row.checks - 1, recheck);
    await o.recheckIn(row, nextInMs);
    const base = { orderId: row.orderId, ageMs: row.ageMs, checks: row.checks, nextInMs };
    if (outcome.kind === 'open') {
      actions.inc({ action: 'order_open' });
      log.warn({ ...base, orderStatus: outcome.status }, `${o.service}.sweep_order_open`);
    } else {
      actions.inc({ action: 'unknown_order' });
      log.error(base, `${o.service}.sweep_unknown_order`);
    }
  };

  return periodic({
    name: o.name,
    intervalMs: o.intervalMs,
    log,
    failedEvent: `${o.service}.sweep_round_failed`,
    round: async (signal) => {
      const rows = await o.claim();
      let away = false;
      await Promise.all(
        rows.map((row) =>
          lookups.execute(async () => {
            if (away || signal.aborted) return;
            let outcome: OrderOutcome;
            try {
              outcome = await o.orders.outcome(row.orderId, signal);
            } catch (err) {
              if (signal.aborted) return;
              away = true;
              actions.inc({ action: 'lookup_failed' });
              log.warn({ err, orderId: row.orderId, ageMs: row.ageMs }, `${o.service}.sweep_lookup_failed`);
              return;
            }
            try {
              await act(row, outcome);
            } catch (err) {
              actions.inc({ action: 'failed' });
              log.warn({ err, orderId: row.orderId, outcome }, `${o.service}.sweep_failed`);
            }
          }),
        ),
      );
    },
  });
}
