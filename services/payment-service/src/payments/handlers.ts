import type { HandlerMap, Sql } from '@orderflow/kit';
import type { PAYMENT_CONSUMERS } from '../definition.js';
import { getPayment, insertCharging, type PaymentRow } from './repository.js';
import type { PaymentProcessor } from './processor.js';

/**
 * Both handlers run in the kit's transaction, after the event id went into processed_events; the
 * payments row (one per order) catches the rest: the same inventory.reserved republished under
 * another message id finds the row and does nothing, so an order is charged and answered once.
 */
export function paymentHandlers(processor: PaymentProcessor): HandlerMap<typeof PAYMENT_CONSUMERS> {
  return {
    'payment-inventory': {
      'inventory.reserved': async ({ event, sql, emit, afterCommit, log }) => {
        const d = event.data;
        // The claim first: an order's first inventory.reserved (nearly always) costs one statement;
        // only a row already there (a duplicate, a tombstone, a racing handler) is read and locked.
        const claim = { orderId: d.orderId, amount: d.amount, currency: d.currency, correlationId: d.correlationId };
        if (await insertCharging(sql, claim)) {
          // The gateway call runs after the commit, outside the transaction (see processor.ts).
          afterCommit(() => processor.charge(d.orderId, claim));
          return;
        }
        const row = await getPayment(sql, d.orderId, true);
        if (!row) throw new Error(`payment row of order ${d.orderId} conflicted on insert but is gone`);
        if (row.status === 'cancelled' && !row.answered) {
          // orders.cancelled came first (tombstone): answer without charging, so inventory releases.
          sql.write(`UPDATE payments SET amount = $2, currency = $3, answered = true, updated_at = now() WHERE order_id = $1`, [
            d.orderId,
            d.amount,
            d.currency,
          ]);
          emit('payments.failed', {
            version: 'v1',
            orderId: d.orderId,
            correlationId: d.correlationId,
            occurredAt: new Date().toISOString(),
            reason: 'order_cancelled',
            detail: 'order was cancelled before payment',
            amount: d.amount,
          });
          log.info({ orderId: d.orderId }, 'payment.cancelled_before_charge');
          return;
        }
        log.info({ orderId: d.orderId, status: row.status }, 'payment.duplicate_reservation_ignored');
      },
    },
    'payment-orders': {
      'orders.cancelled': async ({ event, sql, afterCommit, log }) => {
        const d = event.data;
        const row = await tombstoneOrGet(sql, d.orderId, d.correlationId, d.reason);
        if (!row) {
          log.info({ orderId: d.orderId }, 'payment.tombstone_written');
          return;
        }
        if ((row.status === 'charging' || row.status === 'captured') && !row.cancel_requested) {
          // While charging, the charge's outcome step sees the flag and refunds; once captured, refund now.
          sql.write(`UPDATE payments SET cancel_requested = true, updated_at = now() WHERE order_id = $1`, [d.orderId]);
          if (row.status === 'captured') afterCommit(() => processor.refund(d.orderId));
          log.info({ orderId: d.orderId, status: row.status }, 'payment.cancel_requested');
        }
        // declined / failed / cancelled / refunded: nothing was captured (an in-doubt charge is reconciled by the sweep).
      },
    },
  };
}

/** The existing row (locked), or undefined after writing a `cancelled` tombstone for an order we never saw. */
async function tombstoneOrGet(sql: Sql, orderId: string, correlationId: string, reason: string): Promise<PaymentRow | undefined> {
  const row = await getPayment(sql, orderId, true);
  if (row) return row;
  const ins = await sql.query(
    `INSERT INTO payments (order_id, status, correlation_id, reason) VALUES ($1, 'cancelled', $2, $3)
      ON CONFLICT (order_id) DO NOTHING RETURNING 1`,
    [orderId, correlationId, `order_cancelled: ${reason}`.slice(0, 200)],
  );
  if (ins.length) return undefined;
  return getPayment(sql, orderId, true);
}
