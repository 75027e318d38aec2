import type { ClaimWindow, Sql, TxSql } from '@orderflow/kit';
import { mergeItems, planReservation, type LineItem, type PricedItem, type Shortage, type StockLevel } from './plan.js';
import { holding, lockInOrder } from './lock-order.js';

export interface ProductView {
  productId: string;
  onHand: number;
  reserved: number;
  available: number;
  sold: number;
  price?: number;
}

type ProductRow = { product_id: string; on_hand: number; reserved: number; sold: number; price: number | string | null };

export type ReservationStatus = 'held' | 'committed' | 'released' | 'rejected' | 'cancelled';

export interface ReservationView {
  orderId: string;
  status: ReservationStatus;
  items: Array<LineItem & { unitPrice?: number }>;
  amount?: number;
  currency?: string;
  reason?: string;
  correlationId: string;
}

type ReservationRow = {
  order_id: string;
  status: ReservationStatus;
  items: ReservationView['items'];
  amount: number | string | null;
  currency: string | null;
  reason: string | null;
  correlation_id: string;
};

export function toProductView(r: ProductRow): ProductView {
  return {
    productId: r.product_id,
    onHand: r.on_hand,
    reserved: r.reserved,
    available: r.on_hand - r.reserved,
    sold: r.sold,
    ...(r.price !== null ? { price: Number(r.price) } : {}),
  };
}

function toReservationView(r: ReservationRow): ReservationView {
  return {
    orderId: r.order_id,
    status: r.status,
    items: r.items,
    ...(r.amount !== null ? { amount: Number(r.amount) } : {}),
    ...(r.currency ? { currency: r.currency } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    correlationId: r.correlation_id,
  };
}

// ---- products -------------------------------------------------------------------------------

export async function getProduct(sql: Sql, productId: string): Promise<ProductView | undefined> {
  const [row] = await sql.query<ProductRow>(`SELECT product_id, on_hand, reserved, sold, price FROM products WHERE product_id = $1`, [
    productId,
  ]);
  return row ? toProductView(row) : undefined;
}

export async function listProducts(sql: Sql, limit: number): Promise<ProductView[]> {
  const rows = await sql.query<ProductRow>(`SELECT product_id, on_hand, reserved, sold, price FROM products ORDER BY product_id LIMIT $1`, [
    limit,
  ]);
  return rows.map(toProductView);
}

export type SetStockResult = { kind: 'ok'; created: boolean; product: ProductView } | { kind: 'below_reserved'; reserved: number };

/**
 * Sets on-hand stock (admin). Refuses to go below what is reserved: those units are promised to
 * orders in flight. `price` undefined keeps the current price.
 */
export async function setStock(sql: Sql, productId: string, onHand: number, price?: number): Promise<SetStockResult> {
  const [prior] = await sql.query<{ reserved: number }>(`SELECT reserved FROM products WHERE product_id = $1 FOR UPDATE`, [productId]);
  if (prior && prior.reserved > onHand) return { kind: 'below_reserved', reserved: prior.reserved };
  const [row] = await sql.query<ProductRow>(
    `INSERT INTO products (product_id, on_hand, price) VALUES ($1, $2, $3)
     ON CONFLICT (product_id) DO UPDATE
       SET on_hand = EXCLUDED.on_hand,
           price = CASE WHEN $4::boolean THEN EXCLUDED.price ELSE products.price END,
           updated_at = now()
     RETURNING product_id, on_hand, reserved, sold, price`,
    [productId, onHand, price ?? null, price !== undefined],
  );
  return { kind: 'ok', created: !prior, product: toProductView(row!) };
}

/** Creates the products that don't exist yet; existing stock is never overwritten. Returns the ids created. */
export async function seedProducts(
  sql: Sql,
  products: ReadonlyArray<{ productId: string; onHand: number; price?: number }>,
): Promise<string[]> {
  if (products.length === 0) return [];
  const rows = await sql.query<{ product_id: string }>(
    `INSERT INTO products (product_id, on_hand, price)
     SELECT * FROM unnest($1::text[], $2::int[], $3::numeric[])
     ON CONFLICT (product_id) DO NOTHING
     RETURNING product_id`,
    [products.map((p) => p.productId), products.map((p) => p.onHand), products.map((p) => p.price ?? null)],
  );
  return rows.map((r) => r.product_id);
}

/**
 * Locks product rows in the one lock order (lock-order.ts): sorted by id, and never waiting for a
 * row ranked below one this transaction already holds, so orders sharing products can't deadlock,
 * not even when a batch transaction covers several of them.
 */
async function lockProducts(sql: Sql, productIds: readonly string[]): Promise<Map<string, StockLevel>> {
  const rows = await lockInOrder(
    sql,
    'product',
    productIds,
    (ids, mode) =>
      sql.query<ProductRow>(
        `SELECT product_id, on_hand, reserved, sold, price FROM products WHERE product_id = ANY($1::text[])
         ORDER BY product_id COLLATE "C" FOR UPDATE${mode === 'nowait' ? ' NOWAIT' : ''}`,
        [ids],
      ),
    (r) => r.product_id,
  );
  return new Map(
    rows.map((r) => [
      r.product_id,
      { productId: r.product_id, onHand: r.on_hand, reserved: r.reserved, price: r.price === null ? null : Number(r.price) },
    ]),
  );
}

/** What settles a reservation row in the same statement as its stock change. */
interface ReservationChange {
  orderId: string;
  status?: ReservationStatus;
  reason?: string;
  items?: readonly PricedItem[];
  amount?: number;
}

/**
 * Locks (unless the caller already holds the locks), then applies per-unit deltas (×quantity) to
 * each product and changes the reservation row, in one statement: a data-modifying CTE always
 * runs to completion, so the two stay one atomic step. Its result is not needed, so it is a
 * queued write (sql.write): it goes with the transaction's next statement or its COMMIT, no
 * round trip of its own. A missing product row means the data is broken.
 */
async function adjust(
  sql: TxSql,
  items: readonly LineItem[],
  delta: { onHand: number; reserved: number; sold: number },
  reservation: ReservationChange,
  held?: Map<string, StockLevel>,
): Promise<void> {
  const locked =
    held ??
    (await lockProducts(
      sql,
      items.map((i) => i.productId),
    ));
  const missing = items.filter((i) => !locked.has(i.productId));
  if (missing.length) throw new Error(`products missing for a reservation: ${missing.map((i) => i.productId).join(', ')}`);
  sql.write(
    `WITH stock AS (
       UPDATE products p
          SET on_hand = p.on_hand + $2::int * u.qty,
              reserved = p.reserved + $3::int * u.qty,
              sold = p.sold + $4::int * u.qty,
              updated_at = now()
         FROM unnest($1::text[], $5::int[]) AS u(id, qty)
        WHERE p.product_id = u.id
     )
     UPDATE reservations
        SET status = COALESCE($7, status),
            reason = COALESCE($8, reason),
            items = COALESCE($9::jsonb, items),
            amount = COALESCE($10::numeric, amount),
            updated_at = now()
      WHERE order_id = $6`,
    [
      items.map((i) => i.productId),
      delta.onHand,
      delta.reserved,
      delta.sold,
      items.map((i) => i.quantity),
      reservation.orderId,
      reservation.status ?? null,
      reservation.reason ?? null,
      reservation.items ? JSON.stringify(reservation.items) : null,
      reservation.amount ?? null,
    ],
  );
}

// ---- reservations ---------------------------------------------------------------------------

export interface ReserveInput {
  orderId: string;
  items: readonly LineItem[];
  currency: string;
  correlationId: string;
}

export type ReserveOutcome =
  | { kind: 'reserved'; items: PricedItem[]; amount: number }
  | { kind: 'rejected'; reason: 'out_of_stock' | 'unknown_product'; shortages: Shortage[] }
  /** A reservation (or tombstone) for this order exists: this orders.created is a duplicate or late. */
  | { kind: 'duplicate'; status: ReservationStatus };

/**
 * Reserves every line of an order or none. The reservation row is claimed first: a second
 * orders.created for the same order (a republish under a new message id) blocks on that insert
 * until the first commits, then finds the row and does nothing.
 */
export async function reserve(sql: TxSql, input: ReserveInput): Promise<ReserveOutcome> {
  const items = mergeItems(input.items);
  const claimed = await sql.query(
    `INSERT INTO reservations (order_id, status, items, currency, correlation_id) VALUES ($1, 'held', $2::jsonb, $3, $4)
     ON CONFLICT (order_id) DO NOTHING RETURNING order_id`,
    [input.orderId, JSON.stringify(items), input.currency, input.correlationId],
  );
  if (claimed.length === 0) {
    const [prior] = await sql.query<{ status: ReservationStatus }>(`SELECT status FROM reservations WHERE order_id = $1`, [input.orderId]);
    return { kind: 'duplicate', status: prior?.status ?? 'held' };
  }
  holding(sql, 'reservation', input.orderId);
  const locked = await lockProducts(
    sql,
    items.map((i) => i.productId),
  );
  const plan = planReservation(items, locked);
  if (plan.kind === 'reject') {
    sql.write(`UPDATE reservations SET status = 'rejected', reason = $2, updated_at = now() WHERE order_id = $1`, [
      input.orderId,
      plan.reason,
    ]);
    return { kind: 'rejected', reason: plan.reason, shortages: plan.shortages };
  }
  // The rows are locked already (planned on them): one SELECT ... FOR UPDATE less per order.
  await adjust(
    sql,
    plan.items,
    { onHand: 0, reserved: 1, sold: 0 },
    { orderId: input.orderId, items: plan.items, amount: plan.amount },
    locked,
  );
  return { kind: 'reserved', items: plan.items, amount: plan.amount };
}

export type SettleOutcome =
  | { kind: 'committed' | 'released'; reservation: ReservationView }
  | { kind: 'tombstoned' }
  /** Nothing held: already settled, rejected, or never reserved. */
  | { kind: 'noop'; status?: ReservationStatus };

async function lockReservation(sql: Sql, orderId: string): Promise<ReservationView | undefined> {
  const [row] = await lockInOrder(
    sql,
    'reservation',
    // Ranked by the id as Postgres returns a uuid (lowercase).
    [orderId.toLowerCase()],
    (ids, mode) =>
      sql.query<ReservationRow>(
        `SELECT order_id, status, items, amount, currency, reason, correlation_id FROM reservations WHERE
          order_id = $1 FOR UPDATE${mode === 'nowait' ? ' NOWAIT' : ''}`,
        [ids[0]],
      ),
    (r) => r.order_id,
  );
  return row ? toReservationView(row) : undefined;
}

/** orders.confirmed: the held units leave the shelf (on hand and reserved down, sold up). */
export async function commit(sql: TxSql, orderId: string): Promise<SettleOutcome> {
  const r = await lockReservation(sql, orderId);
  if (!r || r.status !== 'held') return { kind: 'noop', status: r?.status };
  await adjust(sql, r.items, { onHand: -1, reserved: -1, sold: 1 }, { orderId, status: 'committed' });
  return { kind: 'committed', reservation: { ...r, status: 'committed' } };
}

/** Compensation: give held units back. Only a held reservation is released, so it happens once. */
export async function release(sql: TxSql, orderId: string, reason: string): Promise<SettleOutcome> {
  const r = await lockReservation(sql, orderId);
  if (!r || r.status !== 'held') return { kind: 'noop', status: r?.status };
  await adjust(sql, r.items, { onHand: 0, reserved: -1, sold: 0 }, { orderId, status: 'released', reason });
  return { kind: 'released', reservation: { ...r, status: 'released', reason } };
}

/**
 * orders.cancelled: release what is held; if orders.created hasn't arrived yet, leave a
 * tombstone so it reserves nothing when it does.
 */
export async function cancel(sql: TxSql, orderId: string, reason: string, correlationId: string): Promise<SettleOutcome> {
  const tomb = await sql.query(
    `INSERT INTO reservations (order_id, status, reason, correlation_id) VALUES ($1, 'cancelled', $2, $3)
     ON CONFLICT (order_id) DO NOTHING RETURNING order_id`,
    [orderId, reason, correlationId],
  );
  if (tomb.length) {
    holding(sql, 'reservation', orderId);
    return { kind: 'tombstoned' };
  }
  return release(sql, orderId, reason);
}

export async function getReservation(sql: Sql, orderId: string): Promise<ReservationView | undefined> {
  const [row] = await sql.query<ReservationRow>(
    `SELECT order_id, status, items, amount, currency, reason, correlation_id FROM reservations WHERE order_id = $1`,
    [orderId],
  );
  return row ? toReservationView(row) : undefined;
}

// ---- sweeper --------------------------------------------------------------------------------

export interface StaleHold {
  orderId: string;
  correlationId: string;
  /** Checks so far, this one included. */
  checks: number;
  ageMs: number;
}

/**
 * Claims up to `limit` held reservations older than `olderThanMs` that are due for a check, and
 * pushes their next check `leaseMs` out, in one statement: SKIP LOCKED and the lease keep two
 * replicas (or a handler settling the same order right now) from working on the same rows.
 */
export async function claimStaleHolds(sql: Sql, o: ClaimWindow): Promise<StaleHold[]> {
  const rows = await sql.query<{ order_id: string; correlation_id: string; sweep_checks: number; age_ms: number }>(
    `UPDATE reservations r
        SET sweep_checks = r.sweep_checks + 1, sweep_next_at = now() + make_interval(secs => $3::double precision / 1000)
      WHERE r.order_id IN (
        SELECT order_id FROM reservations
         WHERE status = 'held' AND created_at < now() - make_interval(secs => $1::double precision / 1000)
           AND (sweep_next_at IS NULL OR sweep_next_at <= now())
         ORDER BY created_at LIMIT $2 FOR UPDATE${o.skipLocked ? ' SKIP LOCKED' : ''})
        AND r.status = 'held'
      RETURNING r.order_id, r.correlation_id, r.sweep_checks, (extract(epoch FROM now() - r.created_at) * 1000)::float8 AS age_ms`,
    [o.olderThanMs, o.limit, o.leaseMs],
  );
  return rows.map((r) => ({ orderId: r.order_id, correlationId: r.correlation_id, checks: r.sweep_checks, ageMs: Math.round(r.age_ms) }));
}

/** When an undecided hold is looked at again. */
export async function scheduleHoldCheck(sql: Sql, orderId: string, delayMs: number): Promise<void> {
  await sql.query(
    `UPDATE reservations SET sweep_next_at = now() + make_interval(secs => $2::double precision / 1000) WHERE
      order_id = $1 AND status = 'held'`,
    [orderId, delayMs],
  );
}
