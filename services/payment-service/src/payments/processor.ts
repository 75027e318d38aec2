import { enqueue, makeEvent, type EventData, type Lifecycle, type OutgoingEvent, type ServiceContext } from '@orderflow/kit';
import { Counter, type Registry } from 'prom-client';
import { PermanentGatewayError, type PaymentGateway } from '../gateway/client.js';
import { isBreakerOpen, isTimeout, type GatewayPolicy } from '../gateway/resilience.js';
import { getPayment, rowsNeedingWork, type PaymentRow } from './repository.js';

/**
 * Where the gateway call happens, and why here.
 *
 * The kit runs a handler inside a DB transaction (the processed_events record and our state
 * change commit together). A gateway call inside it would hold that transaction, and with PGlite
 * its only connection, for as long as the call takes with its timeouts and retries (seconds when
 * the gateway is down), stalling every other handler and HTTP request. So the handler only claims
 * the order (inserts a `charging` row) and registers `afterCommit(charge)`; the call runs here,
 * outside any transaction, and a second short transaction records the outcome and queues the one
 * payments.* event, guarded by `status = 'charging'` so that whoever finishes first (this fast
 * path, or the recovery sweep of another replica) is the only one to answer.
 *
 * The message is acked when the claim commits, before the charge. A crash in between leaves a
 * `charging` row, which the recovery sweep (below) resumes: the gateway sees the same
 * Idempotency-Key (the order id), so a charge repeated after a crash is never doubled.
 *
 * Gateway unavailable (retries exhausted, or the breaker open): the order is failed at once with
 * payments.failed `gateway_unavailable` rather than nak'ed for a retry minutes later. The
 * retries already cover a short blip; beyond that the customer is better served by an order
 * that ends (and releases its stock) than by one that hangs until the saga timeout. A failed
 * charge whose request may have reached the gateway (a timeout, a dropped connection) is marked
 * `in_doubt` and reconciled later: any capture found is refunded, so a cancelled order is never
 * left charged.
 */

export interface PaymentMetrics {
  outcomes: Counter<'outcome'>;
}

export function paymentMetrics(registry: Registry): PaymentMetrics {
  return {
    outcomes: new Counter({ name: 'orderflow_payments_total', help: 'Payment outcomes (captured, declined, gateway_unavailable, order_cancelled, refunded)', labelNames: ['outcome'], registers: [registry] }),
  };
}

type Outcome =
  | { kind: 'captured'; chargeId: string }
  | { kind: 'declined'; detail: string }
  | { kind: 'unavailable'; detail: string; inDoubt: boolean };

export interface ProcessorOptions {
  ctx: ServiceContext;
  gateway: PaymentGateway;
  policy: GatewayPolicy;
  metrics: PaymentMetrics;
}

export class PaymentProcessor {
  /** One piece of work per order at a time in this process (the sweep must not race the fast path). */
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(private readonly o: ProcessorOptions) {}

  #once(key: string, fn: () => Promise<void>): Promise<void> {
    const running = this.#inflight.get(key);
    if (running) return running;
    const p = fn().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  isBusy(orderId: string): boolean {
    return this.#inflight.has(orderId);
  }

  /** Charges a `charging` order and records the outcome with its event. */
  charge(orderId: string): Promise<void> {
    return this.#once(orderId, async () => {
      const { ctx, gateway, policy } = this.o;
      const row = await getPayment(ctx.db, orderId);
      if (!row || row.status !== 'charging' || row.amount === null || !row.currency) return;
      const amount = Number(row.amount);
      const currency = row.currency;
      let attempts = 0;
      let outcome: Outcome;
      try {
        const r = await policy.execute((signal) => {
          attempts++;
          return gateway.charge({ orderId, amount, currency, idempotencyKey: orderId }, signal);
        });
        outcome = r.kind === 'captured' ? { kind: 'captured', chargeId: r.chargeId } : { kind: 'declined', detail: r.reason };
      } catch (err) {
        if (err instanceof PermanentGatewayError) {
          // Our request was refused (4xx): retrying cannot help, so it ends like a decline.
          outcome = { kind: 'declined', detail: err.message };
        } else {
          const detail = isBreakerOpen(err) ? 'circuit breaker open' : isTimeout(err) ? `gateway timed out after ${attempts} attempt(s)` : `${(err as Error).message} after ${attempts} attempt(s)`;
          outcome = { kind: 'unavailable', detail, inDoubt: attempts > 0 };
        }
      }
      const refundNow = await this.#record(orderId, attempts, outcome);
      if (refundNow) await this.#refund(orderId);
    });
  }

  /** Returns true when the capture must be refunded now (the order was cancelled while charging). */
  async #record(orderId: string, attempts: number, outcome: Outcome): Promise<boolean> {
    const { ctx, metrics } = this.o;
    let refund = false;
    let label = '';
    const committed = await ctx.db.tx(async (sql) => {
      const cur = await getPayment(sql, orderId, true);
      if (!cur || cur.status !== 'charging') return false;
      const amount = Number(cur.amount);
      const base = { version: 'v1' as const, orderId, correlationId: cur.correlation_id, occurredAt: new Date().toISOString() };
      const events: OutgoingEvent[] = [];
      const cancelled = cur.cancel_requested;
      if (outcome.kind === 'captured') {
        await sql.query(`UPDATE payments SET status = 'captured', charge_id = $2, attempts = attempts + $3, reason = NULL, answered = true, updated_at = now() WHERE order_id = $1`, [orderId, outcome.chargeId, attempts]);
        if (cancelled) {
          refund = true;
          label = 'order_cancelled';
          events.push(makeEvent(ctx.names, 'payments.failed', { ...base, reason: 'order_cancelled', detail: 'order cancelled while charging; the capture is refunded', amount }));
        } else {
          label = 'captured';
          events.push(makeEvent(ctx.names, 'payments.completed', { ...base, paymentId: outcome.chargeId, amount, currency: cur.currency as EventData<'payments.completed'>['currency'] }));
        }
      } else {
        const status = outcome.kind === 'declined' ? 'declined' : 'failed';
        const reason = cancelled ? 'order_cancelled' : outcome.kind === 'declined' ? 'payment_declined' : 'gateway_unavailable';
        const inDoubt = outcome.kind === 'unavailable' && outcome.inDoubt;
        await sql.query(`UPDATE payments SET status = $2, reason = $3, attempts = attempts + $4, in_doubt = $5, answered = true, updated_at = now() WHERE order_id = $1`, [orderId, status, reason, attempts, inDoubt]);
        label = reason === 'payment_declined' ? 'declined' : reason;
        events.push(makeEvent(ctx.names, 'payments.failed', { ...base, reason, detail: outcome.detail.slice(0, 1024), amount }));
      }
      await enqueue(sql, events);
      return true;
    });
    if (!committed) return false;
    ctx.relay.wake();
    metrics.outcomes.inc({ outcome: label });
    ctx.log.info({ orderId, outcome: label, attempts, ...(outcome.kind === 'captured' ? { chargeId: outcome.chargeId } : { detail: outcome.detail }) }, 'payment.recorded');
    return refund;
  }

  /** Refunds a capture of a cancelled order (orders.cancelled after capture, or during the charge). */
  refund(orderId: string): Promise<void> {
    return this.#once(orderId, () => this.#refund(orderId));
  }

  async #refund(orderId: string): Promise<void> {
    const { ctx, gateway, policy, metrics } = this.o;
    const row = await getPayment(ctx.db, orderId);
    if (!row || row.status !== 'captured' || !row.cancel_requested || !row.charge_id) return;
    const chargeId = row.charge_id;
    try {
      const r = await policy.execute((signal) => gateway.refund(chargeId, `refund-${chargeId}`, signal));
      if (r.kind === 'unknown_charge') {
        // The gateway lost the charge (a sandbox restart): nothing to refund, and nothing will ever be.
        ctx.log.error({ orderId, chargeId }, 'payment.refund_unknown_charge');
        await ctx.db.query(`UPDATE payments SET cancel_requested = false, reason = 'refund_unknown_charge', updated_at = now() WHERE order_id = $1 AND status = 'captured'`, [orderId]);
        return;
      }
    } catch (err) {
      // Left for the recovery sweep; touching updated_at spaces the next try.
      ctx.log.warn({ err, orderId, chargeId }, 'payment.refund_deferred');
      await ctx.db.query(`UPDATE payments SET updated_at = now() WHERE order_id = $1`, [orderId]);
      return;
    }
    await ctx.db.query(`UPDATE payments SET status = 'refunded', cancel_requested = false, reason = 'order_cancelled', updated_at = now() WHERE order_id = $1 AND status = 'captured'`, [orderId]);
    metrics.outcomes.inc({ outcome: 'refunded' });
    ctx.log.info({ orderId, chargeId }, 'payment.refunded');
  }

  /** A failed charge that may have reached the gateway: refund whatever it captured for the order. */
  reconcile(orderId: string): Promise<void> {
    return this.#once(orderId, async () => {
      const { ctx, gateway, policy, metrics } = this.o;
      const row = await getPayment(ctx.db, orderId);
      if (!row?.in_doubt) return;
      try {
        const charges = await policy.execute((signal) => gateway.findCharges(orderId, signal));
        const captured = charges.filter((c) => c.status === 'captured');
        for (const c of captured) await policy.execute((signal) => gateway.refund(c.chargeId, `refund-${c.chargeId}`, signal));
        const chargeId = captured[0]?.chargeId ?? charges[0]?.chargeId ?? null;
        await ctx.db.query(
          `UPDATE payments SET in_doubt = false, charge_id = COALESCE($2, charge_id), status = CASE WHEN $3 THEN 'refunded' ELSE status END, updated_at = now() WHERE order_id = $1`,
          [orderId, chargeId, captured.length > 0],
        );
        if (captured.length) {
          metrics.outcomes.inc({ outcome: 'refunded' });
          ctx.log.warn({ orderId, refunded: captured.map((c) => c.chargeId) }, 'payment.in_doubt_capture_refunded');
        }
      } catch (err) {
        ctx.log.warn({ err, orderId }, 'payment.reconcile_deferred');
        await ctx.db.query(`UPDATE payments SET updated_at = now() WHERE order_id = $1`, [orderId]);
      }
    });
  }

  /** Finishes whatever a row still needs. */
  resume(row: PaymentRow): Promise<void> {
    if (row.status === 'charging') return this.charge(row.order_id);
    if (row.status === 'captured' && row.cancel_requested) return this.refund(row.order_id);
    if (row.in_doubt) return this.reconcile(row.order_id);
    return Promise.resolve();
  }
}

export interface SweepOptions {
  intervalMs: number;
  /** A row untouched this long is considered abandoned (longer than one charge with all its retries can take). */
  afterMs: number;
  concurrency?: number;
}

/**
 * Recovery sweep: resumes charges left `charging` by a crash after the ack, retries refunds the
 * gateway refused, and reconciles charges in doubt. It runs at start and every interval.
 */
export function recoverySweep(ctx: ServiceContext, processor: PaymentProcessor, o: SweepOptions): Lifecycle {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      const rows = (await rowsNeedingWork(ctx.db, o.afterMs, 100)).filter((r) => !processor.isBusy(r.order_id));
      const queue = [...rows];
      const worker = async () => {
        for (let r = queue.shift(); r && !stopped; r = queue.shift()) await processor.resume(r);
      };
      await Promise.all(Array.from({ length: o.concurrency ?? 4 }, worker));
      if (rows.length) ctx.log.info({ rows: rows.length }, 'payment.recovery_sweep');
    } catch (err) {
      ctx.log.warn({ err }, 'payment.recovery_sweep_failed');
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().finally(schedule);
    }, o.intervalMs);
  };
  return {
    start() {
      running = tick().finally(schedule);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
