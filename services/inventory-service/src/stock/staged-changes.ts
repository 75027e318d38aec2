import type { TxSql } from '@orderflow/kit';
import type { LineItem, PricedItem, StockDelta } from './plan.js';
import type { ReservationStatus } from './types.js';

/** What changes in a reservation row; a field left out keeps the row's value. */
export interface ReservationChange {
  orderId: string;
  status?: ReservationStatus;
  reason?: string;
  items?: readonly PricedItem[];
  amount?: number;
}

/** One transaction's changes to the product and reservation rows it holds, not yet written. */
interface Staged {
  /** Per product, the sum of the units moved (on hand, reserved, sold). */
  stock: Map<string, StockDelta>;
  /** Per reservation (lowercase order id), its changes folded in order. */
  reservations: Map<string, ReservationChange>;
}

const stagedIn = new WeakMap<TxSql, Staged>();

/**
 * Stages a stock move (per unit, × each item's quantity) and a reservation change. They are
 * written at commit, the whole transaction's in one statement (sql.beforeCommit): a consumer batch
 * of twenty reservations and their settlements updates each product and each reservation row
 * once, not once per event. Before, each event sent its own UPDATE: two per order, each reading
 * the hot products table, together about a third of Postgres's statement time in the saga.
 *
 * Only rows this transaction holds locked may be staged, and nothing may read them back from the
 * database before COMMIT: the repository's in-memory copies (batch-lock.ts) are what the rest of
 * the transaction plans against. Moves are deltas, so the write does not depend on those copies.
 */
export function stage(sql: TxSql, items: readonly LineItem[], perUnit: StockDelta, change: ReservationChange): void {
  let s = stagedIn.get(sql);
  if (!s) {
    const fresh: Staged = { stock: new Map(), reservations: new Map() };
    stagedIn.set(sql, fresh);
    sql.beforeCommit(() => write(sql, fresh));
    s = fresh;
  }
  for (const { productId, quantity } of items) {
    const sum = s.stock.get(productId) ?? { onHand: 0, reserved: 0, sold: 0 };
    sum.onHand += perUnit.onHand * quantity;
    sum.reserved += perUnit.reserved * quantity;
    sum.sold += perUnit.sold * quantity;
    s.stock.set(productId, sum);
  }
  const id = change.orderId.toLowerCase();
  const prior = s.reservations.get(id);
  // As the per-event UPDATEs did with COALESCE: a later value replaces an earlier one.
  s.reservations.set(id, {
    orderId: id,
    status: change.status ?? prior?.status,
    reason: change.reason ?? prior?.reason,
    items: change.items ?? prior?.items,
    amount: change.amount ?? prior?.amount,
  });
}

function write(sql: TxSql, s: Staged): void {
  // A product whose moves cancel out (reserved and released in one batch) is left alone.
  const stock = [...s.stock].filter(([, d]) => d.onHand !== 0 || d.reserved !== 0 || d.sold !== 0);
  const changes = [...s.reservations.values()];
  if (stock.length === 0 && changes.length === 0) return;
  // Both tables in one statement: a data-modifying CTE always runs to completion. The rows are
  // locked already, so this takes no lock and cannot wait.
  sql.write(
    `WITH stock AS (
       UPDATE products p
          SET on_hand = p.on_hand + u.on_hand, reserved = p.reserved + u.reserved, sold = p.sold + u.sold, updated_at = now()
         FROM unnest($1::text[], $2::int[], $3::int[], $4::int[]) AS u(id, on_hand, reserved, sold)
        WHERE p.product_id = u.id
     )
     UPDATE reservations r
        SET status = COALESCE(c.status, r.status),
            reason = COALESCE(c.reason, r.reason),
            items = COALESCE(c.items::jsonb, r.items),
            amount = COALESCE(c.amount, r.amount),
            updated_at = now()
       FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[], $9::numeric[]) AS c(order_id, status, reason, items, amount)
      WHERE r.order_id = c.order_id`,
    [
      stock.map(([id]) => id),
      stock.map(([, d]) => d.onHand),
      stock.map(([, d]) => d.reserved),
      stock.map(([, d]) => d.sold),
      changes.map((c) => c.orderId),
      changes.map((c) => c.status ?? null),
      changes.map((c) => c.reason ?? null),
      changes.map((c) => (c.items ? JSON.stringify(c.items) : null)),
      changes.map((c) => c.amount ?? null),
    ],
  );
}
