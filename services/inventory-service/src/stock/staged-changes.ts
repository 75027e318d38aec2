import { txState, type TxSql } from '@orderflow/kit';
import { heldRows } from './batch-lock.js';
import type { LineItem, StockDelta } from './plan.js';

/** One transaction's changes to the product and reservation rows it holds, not yet written. */
interface Staged {
  /** Per product, the sum of the units moved (on hand, reserved, sold). */
  stock: Map<string, StockDelta>;
  /**
   * The reservations (lowercase order ids) changed. What they change to is not kept here: the
   * transaction's copies of the rows (batch-lock.ts) are as the changes left them, and are written.
   */
  reservations: Set<string>;
}

const stagedIn = txState<Staged>(() => ({ stock: new Map(), reservations: new Set() }), write);

/**
 * Stages a stock move (per unit, × each item's quantity) and notes that a reservation changed.
 * They are written at commit, the whole transaction's in one statement (sql.beforeCommit): a
 * consumer batch of twenty reservations and their settlements updates each product and each
 * reservation row once, not once per event. Before, each event sent its own UPDATE: two per order,
 * each reading the hot products table, together about a third of Postgres's statement time in the
 * saga.
 *
 * Only rows this transaction holds locked may be staged, and nothing may read them back from the
 * database before COMMIT: the repository's in-memory copies (batch-lock.ts) are what the rest of
 * the transaction plans against, and the reservation rows are written from them. Moves stay
 * deltas, so the stock written does not depend on those copies.
 */
export function stage(sql: TxSql, items: readonly LineItem[], perUnit: StockDelta, orderId: string): void {
  const s = stagedIn(sql);
  for (const { productId, quantity } of items) {
    const sum = s.stock.get(productId) ?? { onHand: 0, reserved: 0, sold: 0 };
    sum.onHand += perUnit.onHand * quantity;
    sum.reserved += perUnit.reserved * quantity;
    sum.sold += perUnit.sold * quantity;
    s.stock.set(productId, sum);
  }
  s.reservations.add(orderId.toLowerCase());
}

function write(sql: TxSql, s: Staged): void {
  // A product whose moves cancel out (reserved and released in one batch) is left alone.
  const stock = [...s.stock].filter(([, d]) => d.onHand !== 0 || d.reserved !== 0 || d.sold !== 0);
  const held = heldRows(sql).reservation;
  const reservations = [...s.reservations].map((id) => {
    const r = held.get(id);
    if (!r) throw new Error(`reservation ${id} was changed in a transaction that does not hold its row`);
    return { ...r, orderId: id };
  });
  if (stock.length === 0 && reservations.length === 0) return;
  // Both tables in one statement: a data-modifying CTE always runs to completion. The rows are
  // locked already, so this takes no lock and cannot wait. The copy leaves out a reason or an
  // amount the row has none of (a NULL, or for the reason also ''): COALESCE keeps the row's.
  sql.write(
    `WITH stock AS (
       UPDATE products p
          SET on_hand = p.on_hand + u.on_hand, reserved = p.reserved + u.reserved, sold = p.sold + u.sold, updated_at = now()
         FROM unnest($1::text[], $2::int[], $3::int[], $4::int[]) AS u(id, on_hand, reserved, sold)
        WHERE p.product_id = u.id
     )
     UPDATE reservations r
        SET status = c.status,
            reason = COALESCE(c.reason, r.reason),
            items = c.items::jsonb,
            amount = COALESCE(c.amount, r.amount),
            updated_at = now()
       FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[], $9::numeric[]) AS c(order_id, status, reason, items, amount)
      WHERE r.order_id = c.order_id`,
    [
      stock.map(([id]) => id),
      stock.map(([, d]) => d.onHand),
      stock.map(([, d]) => d.reserved),
      stock.map(([, d]) => d.sold),
      reservations.map((r) => r.orderId),
      reservations.map((r) => r.status),
      reservations.map((r) => r.reason ?? null),
      reservations.map((r) => JSON.stringify(r.items)),
      reservations.map((r) => r.amount ?? null),
    ],
  );
}
