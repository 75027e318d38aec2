import { GroupCommit, injectTraceHeaders, recheckDelay, type BackoffSettings, type ServiceContext } from '@orderflow/kit';
import type { ChargeResult, PaymentGateway } from '../gateway/client.js';
import type { GatewayPolicy } from '../gateway/resilience.js';
import { chargeOutcome, clearFailure, type CallResult, type Outcome } from './charge-outcome.js';
import type { PaymentMetrics } from './metrics.js';
import { captureDeadline } from './capture-deadline.js';
import { recordOutcomes, type OutcomeToRecord, type Recorded } from './outcome-record.js';
import { getPayment, resolveInDoubt, resolveNeverCaptured, scheduleInDoubtCheck, type PaymentRow } from './repository.js';

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
 * `charging` row, which the recovery sweep resumes: the gateway sees the same Idempotency-Key
 * (the order id), so a charge repeated after a crash is never doubled.
 *
 * Gateway unavailable (retries exhausted, or the breaker open): the order is failed at once with
 * payments.failed `gateway_unavailable` rather than nak'ed for a retry minutes later. The
 * retries already cover a short blip; beyond that the customer is better served by an order
 * that ends (and releases its stock) than by one that hangs until the saga timeout.
 *
 * In doubt: an attempt that got no answer may still capture (charge-outcome.ts). Such a charge is
 * re-checked at the gateway on a growing delay until a capture shows up — then it is refunded,
 * the order having failed — or until the gateway's maximum processing time has passed since the
 * last attempt was sent and a lookup started after that still finds nothing: the gateway never
 * captures a request that late (its request deadline, part of the gateway contract), so nothing
 * was or will be captured and the doubt is resolved `never_captured`, on that fact. Lookups that
 * keep failing (gateway away) go on until the horizon; then the charge stays in doubt, counted and
 * logged as unresolved for a person to settle. It is never silently cleared: a gateway that
 * captures late, within its deadline, is still caught.
 */

export interface InDoubtPolicy extends BackoffSettings {
  /** How long a charge is re-checked before it is given up on (surfaced as unresolved). */
  horizonMs: number;
  /**
   * The gateway's maximum processing time: it never captures a charge request later than this
   * after it was sent (the sandbox's SANDBOX_MAX_PROCESSING_MS). Must not be below the gateway's.
   */
  maxProcessingMs: number;
}

export interface ProcessorOptions {
  ctx: ServiceContext;
  gateway: PaymentGateway;
  policy: GatewayPolicy;
  metrics: PaymentMetrics;
  inDoubt: InDoubtPolicy;
}

export class PaymentProcessor {
  /** One piece of work per order at a time in this process (the sweeps must not race the fast path). */
  readonly #inflight = new Map<string, Promise<void>>();

  /**
   * Outcomes finishing while others are being written are recorded together, in one transaction
   * (outcome-record.ts): under load one commit answers many charges. A group that fails for a
   * reason other than the database being away is written again charge by charge.
   */
  readonly #outcomes: GroupCommit<OutcomeToRecord, Recorded>;

  constructor(private readonly o: ProcessorOptions) {
    const { db, names } = o.ctx;
    this.#outcomes = new GroupCommit({
      writeGroup: async (items) => (await recordOutcomes(db, names, items)).map((value) => ({ ok: true as const, value })),
      writeOne: async (item) => (await recordOutcomes(db, names, [item]))[0]!,
    });
  }

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

  /**
   * Charges a `charging` order and records the outcome with its event. `claimed` is what the
   * handler's just-committed claim wrote: the fast path needs no read. Whoever else got to the
   * row meanwhile (a sweep of another replica) is harmless: the gateway sees the same
   * idempotency key, and only the first outcome recorded under `status = 'charging'` counts.
   */
  charge(orderId: string, claimed?: { amount: number; currency: string }): Promise<void> {
    return this.#once(orderId, async () => {
      const { ctx, gateway, policy } = this.o;
      let charge = claimed;
      if (!charge) {
        const row = await getPayment(ctx.db, orderId);
        if (!row || row.status !== 'charging' || row.amount === null || !row.currency) return;
        charge = { amount: Number(row.amount), currency: row.currency };
      }
      const { amount, currency } = charge;
      const tally = { sent: 0, clear: 0 };
      // When the last attempt was sent: the gateway's deadline for a capture runs from it.
      let lastSentAt: Date | undefined;
      let result: CallResult;
      try {
        const ok = await policy.execute(async (signal): Promise<ChargeResult> => {
          tally.sent++;
          lastSentAt = new Date();
          try {
            const r = await gateway.charge({ orderId, amount, currency, idempotencyKey: orderId }, signal);
            tally.clear++;
            return r;
          } catch (err) {
            if (clearFailure(err)) tally.clear++;
            throw err;
          }
        });
        result = { ok };
      } catch (err) {
        result = { err };
      }
      const refundNow = await this.#record(orderId, tally.sent, chargeOutcome(result, tally), lastSentAt);
      if (refundNow) await this.#refund(orderId);
    });
  }

  /** Returns true when the capture must be refunded now (the order was cancelled while charging). */
  async #record(orderId: string, attempts: number, outcome: Outcome, lastSentAt: Date | undefined): Promise<boolean> {
    const { ctx, metrics } = this.o;
    const firstCheckMs = recheckDelay(0, this.o.inDoubt);
    const r = await this.#outcomes.submit({ orderId, attempts, outcome, lastSentAt, firstCheckMs, trace: injectTraceHeaders({}) });
    if (!r.recorded) return false;
    ctx.relay.committed([r.event]);
    metrics.outcomes.inc({ outcome: r.label });
    const inDoubt = outcome.kind !== 'captured' && outcome.inDoubt;
    ctx.log.info(
      {
        orderId,
        outcome: r.label,
        attempts,
        ...(outcome.kind === 'captured' ? { chargeId: outcome.chargeId } : { detail: outcome.detail, inDoubt }),
        ...(inDoubt ? { firstCheckInMs: firstCheckMs } : {}),
      },
      'payment.recorded',
    );
    return r.refund;
  }

  /** Refunds a capture of a cancelled order (orders.cancelled after capture, during the charge, or found by the refund sweep). */
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
        await ctx.db.query(
          `UPDATE payments SET cancel_requested = false, reason = 'refund_unknown_charge', updated_at = now()
            WHERE order_id = $1 AND status = 'captured'`,
          [orderId],
        );
        return;
      }
    } catch (err) {
      // Left for the recovery sweep; touching updated_at spaces the next try.
      ctx.log.warn({ err, orderId, chargeId }, 'payment.refund_deferred');
      await ctx.db.query(`UPDATE payments SET updated_at = now() WHERE order_id = $1`, [orderId]);
      return;
    }
    await ctx.db.query(
      `UPDATE payments SET status = 'refunded', cancel_requested = false, reason = 'order_cancelled', updated_at = now()
        WHERE order_id = $1 AND status = 'captured'`,
      [orderId],
    );
    metrics.outcomes.inc({ outcome: 'refunded' });
    ctx.log.info({ orderId, chargeId }, 'payment.refunded');
  }

  /**
   * Looks a charge in doubt up at the gateway: a capture found is refunded (the order failed) and
   * the doubt is over; nothing found by a lookup started past the gateway's deadline for the last
   * attempt means nothing will ever be captured (resolved never_captured); nothing found before
   * it means the next check later (no later than just past the deadline); a lookup that fails is
   * retried on the backoff until the horizon, then given up on loudly while the row stays in doubt.
   */
  recheckInDoubt(orderId: string): Promise<void> {
    return this.#once(orderId, async () => {
      const { ctx, gateway, policy, metrics } = this.o;
      const row = await getPayment(ctx.db, orderId);
      if (!row?.in_doubt || row.in_doubt_gave_up_at !== null) return;
      // Taken before the lookup is sent: only a lookup that starts past the deadline proves anything.
      const lookupAt = Date.now();
      let charges;
      try {
        charges = await policy.execute((signal) => gateway.findCharges(orderId, signal));
      } catch (err) {
        await this.#nextCheck(row, 'lookup_failed', err);
        return;
      }
      try {
        for (const c of charges.filter((x) => x.status === 'captured'))
          await policy.execute((signal) => gateway.refund(c.chargeId, `refund-${c.chargeId}`, signal));
      } catch (err) {
        await this.#nextCheck(row, 'refund_failed', err);
        return;
      }
      if (charges.length === 0) {
        const deadline = captureDeadline(row, this.o.inDoubt.maxProcessingMs);
        if (lookupAt > deadline) {
          await this.#neverCaptured(row, deadline, lookupAt);
          return;
        }
        await this.#nextCheck(row, 'nothing_captured', undefined, deadline - Date.now() + 1);
        return;
      }
      // Every charge the gateway holds for the order is refunded now: that settles the doubt.
      if (await resolveInDoubt(ctx.db, orderId, charges[0]!.chargeId)) {
        metrics.inDoubtChecks.inc({ result: 'capture_refunded' });
        metrics.outcomes.inc({ outcome: 'refunded' });
        ctx.log.warn(
          { orderId, checks: row.in_doubt_checks + 1, refunded: charges.map((c) => c.chargeId) },
          'payment.in_doubt_capture_refunded',
        );
      }
    });
  }

  async #neverCaptured(row: PaymentRow, deadline: number, lookupAt: number): Promise<void> {
    const { ctx, metrics, inDoubt } = this.o;
    if (!(await resolveNeverCaptured(ctx.db, row.order_id))) return;
    metrics.inDoubtChecks.inc({ result: 'never_captured' });
    ctx.log.info(
      {
        orderId: row.order_id,
        checks: row.in_doubt_checks + 1,
        lastAttemptSentAt: new Date(deadline - inDoubt.maxProcessingMs).toISOString(),
        maxProcessingMs: inDoubt.maxProcessingMs,
        lookupAt: new Date(lookupAt).toISOString(),
      },
      'payment.in_doubt_never_captured',
    );
  }

  /** `dueWithinMs`: check again no later than this (just past the capture deadline), whatever the backoff says. */
  async #nextCheck(
    row: PaymentRow,
    result: 'lookup_failed' | 'refund_failed' | 'nothing_captured',
    err?: unknown,
    dueWithinMs?: number,
  ): Promise<void> {
    const { ctx, metrics, inDoubt } = this.o;
    const backoffMs = recheckDelay(row.in_doubt_checks + 1, inDoubt);
    const nextInMs = dueWithinMs === undefined ? backoffMs : Math.max(0, Math.min(backoffMs, dueWithinMs));
    const s = await scheduleInDoubtCheck(ctx.db, row.order_id, nextInMs, inDoubt.horizonMs);
    if (!s) return;
    if (s.gaveUp) {
      metrics.inDoubtChecks.inc({ result: 'gave_up' });
      ctx.log.error(
        { orderId: row.order_id, since: s.since, checks: s.checks, horizonMs: inDoubt.horizonMs, lastResult: result },
        'payment.in_doubt_unresolved',
      );
      return;
    }
    metrics.inDoubtChecks.inc({ result });
    ctx.log[err ? 'warn' : 'info'](
      { orderId: row.order_id, checks: s.checks, nextInMs, result, ...(err ? { err } : {}) },
      'payment.in_doubt_still_open',
    );
  }

  /** Finishes what a row left by a crash or a refused refund still needs. */
  resume(row: PaymentRow): Promise<void> {
    if (row.status === 'charging') return this.charge(row.order_id);
    if (row.status === 'captured' && row.cancel_requested) return this.refund(row.order_id);
    return Promise.resolve();
  }
}
