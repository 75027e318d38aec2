import { enqueue, makeEvent, type Db, type EventData, type Names, type OutgoingEvent, type Sql } from '@orderflow/kit';
import type { PaymentRow } from './repository.js';
import type { Outcome } from './charge-outcome.js';

/** One charge's outcome, to be recorded with its payments.* event. */
export interface OutcomeToRecord {
  orderId: string;
  /** Attempts sent to the gateway by this charge. */
  attempts: number;
  outcome: Outcome;
  /** When the last attempt was sent (the gateway's capture deadline runs from it). */
  lastSentAt?: Date;
  /** When an in-doubt failure is first re-checked, ms from now. */
  firstCheckMs: number;
  /**
   * The charge's trace context (W3C headers, `injectTraceHeaders`), taken where the charge ran: a
   * group is written in the context of whichever charge started the writer, and each event must
   * join its own order's trace.
   */
  trace: Record<string, string>;
}

/** What recording came to: nothing (someone else answered first), or the outcome's label and whether to refund now. */
/** `event`: its payments.* event, in the outbox with the outcome; the relay publishes it after the commit. */
export type Recorded = { recorded: false } | { recorded: true; label: string; refund: boolean; event: OutgoingEvent };

type Claimed = Pick<PaymentRow, 'order_id' | 'correlation_id' | 'amount' | 'currency' | 'cancel_requested'> & { reason?: string };

// The rows are locked in one order (by id) before they change: two writers touching the same rows
// (a group and a batch of cancellations) then wait for each other instead of deadlocking.
const lockCharging = (ids: string) =>
  `WITH l AS MATERIALIZED (SELECT order_id FROM payments WHERE order_id = ANY(${ids}) AND status = 'charging'
     ORDER BY order_id FOR UPDATE)`;

/**
 * The guarded UPDATE is the claim: it changes a row only while still `charging` (no other outcome
 * recorded first) and returns what the event needs, so no read comes first. correlation_id,
 * amount, currency and cancel_requested are not changed by it.
 */
const CAPTURED = `${lockCharging('$1::uuid[]')}
  UPDATE payments p SET status = 'captured', charge_id = u.charge_id, attempts = p.attempts + u.attempts, reason = NULL,
         answered = true, updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::int[]) AS u(order_id, charge_id, attempts)
   WHERE p.order_id = u.order_id AND p.order_id IN (SELECT order_id FROM l) AND p.status = 'charging'
  RETURNING p.order_id, p.correlation_id, p.amount, p.currency, p.cancel_requested`;

const FAILED = `${lockCharging('$1::uuid[]')}
  UPDATE payments p SET status = u.status, reason = CASE WHEN p.cancel_requested THEN 'order_cancelled' ELSE u.reason END,
         attempts = p.attempts + u.attempts, answered = true, updated_at = now(),
         in_doubt = u.in_doubt, in_doubt_since = CASE WHEN u.in_doubt THEN now() END,
         in_doubt_next_at = CASE WHEN u.in_doubt THEN now() + make_interval(secs => u.first_check_ms / 1000) END,
         in_doubt_last_sent_at = CASE WHEN u.in_doubt THEN u.last_sent_at END
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::boolean[], $6::double precision[], $7::timestamptz[])
         AS u(order_id, status, reason, attempts, in_doubt, first_check_ms, last_sent_at)
   WHERE p.order_id = u.order_id AND p.order_id IN (SELECT order_id FROM l) AND p.status = 'charging'
  RETURNING p.order_id, p.correlation_id, p.amount, p.currency, p.cancel_requested, p.reason`;

/**
 * Records the outcomes of several charges, and queues their payments.* events, in one transaction:
 * one statement per kind of outcome and the COMMIT, whatever the number of charges. An order
 * whose row is no longer `charging` (another replica's sweep answered first) is left alone.
 * Results come in the order of `items`.
 */
export async function recordOutcomes(db: Db, names: Names, items: readonly OutcomeToRecord[]): Promise<Recorded[]> {
  const captured = items.filter((i) => i.outcome.kind === 'captured');
  const failed = items.filter((i) => i.outcome.kind !== 'captured');
  // Postgres answers a uuid in lower case.
  const byId = new Map(items.map((i) => [i.orderId.toLowerCase(), i]));
  return db.tx(async (sql) => {
    const events: OutgoingEvent[] = [];
    const results = new Map<string, Recorded>();
    const record = (orderId: string, label: string, refund: boolean, e: OutgoingEvent) => {
      results.set(orderId, { recorded: true, label, refund, event: e });
      events.push(e);
    };
    const event = (cur: Claimed) => ({
      base: { version: 'v1' as const, orderId: cur.order_id, correlationId: cur.correlation_id, occurredAt: new Date().toISOString() },
      amount: Number(cur.amount),
    });
    for (const cur of await claim(sql, CAPTURED, captured, (i) => [i.outcome.kind === 'captured' ? i.outcome.chargeId : '', i.attempts])) {
      const { base, amount } = event(cur);
      const item = byId.get(cur.order_id)!;
      const chargeId = (item.outcome as { chargeId: string }).chargeId;
      if (cur.cancel_requested) {
        record(
          cur.order_id,
          'order_cancelled',
          true,
          makeEvent(
            names,
            'payments.failed',
            { ...base, reason: 'order_cancelled', detail: 'order cancelled while charging; the capture is refunded', amount },
            item.trace,
          ),
        );
      } else {
        record(
          cur.order_id,
          'captured',
          false,
          makeEvent(
            names,
            'payments.completed',
            { ...base, paymentId: chargeId, amount, currency: cur.currency as EventData<'payments.completed'>['currency'] },
            item.trace,
          ),
        );
      }
    }
    const failure = (i: OutcomeToRecord) => i.outcome as Exclude<Outcome, { kind: 'captured' }>;
    const failedRows = await claim(sql, FAILED, failed, (i) => [
      failure(i).kind === 'declined' ? 'declined' : 'failed',
      failure(i).kind === 'declined' ? 'payment_declined' : 'gateway_unavailable',
      i.attempts,
      failure(i).inDoubt,
      i.firstCheckMs,
      (i.lastSentAt ?? new Date()).toISOString(),
    ]);
    for (const cur of failedRows) {
      const { base, amount } = event(cur);
      const item = byId.get(cur.order_id)!;
      const reason = cur.reason as 'order_cancelled' | 'payment_declined' | 'gateway_unavailable';
      record(
        cur.order_id,
        reason === 'payment_declined' ? 'declined' : reason,
        false,
        makeEvent(names, 'payments.failed', { ...base, reason, detail: failure(item).detail.slice(0, 1024), amount }, item.trace),
      );
    }
    await enqueue(sql, events);
    return items.map((i) => results.get(i.orderId.toLowerCase()) ?? { recorded: false });
  });
}

/** Runs one guarded UPDATE for these items (none: no statement); `columns` gives each item's values after its order id. */
async function claim(
  sql: Sql,
  text: string,
  items: readonly OutcomeToRecord[],
  columns: (i: OutcomeToRecord) => unknown[],
): Promise<Claimed[]> {
  if (items.length === 0) return [];
  const rows = items.map(columns);
  const params = [items.map((i) => i.orderId), ...rows[0]!.map((_, c) => rows.map((r) => r[c]))];
  return sql.query<Claimed>(text, params);
}
