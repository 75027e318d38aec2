import type { ClaimWindow, IncomingEvent, Sql, TxSql } from '@orderflow/kit';
import {
  mergeItems,
  planReservation,
  shifted,
  type LineItem,
  type PricedItem,
  type Shortage,
  type StockDelta,
  type StockLevel,
} from './plan.js';
import { compareIds, holding } from './lock-order.js';
import { heldRows, lockMissing } from './batch-lock.js';
import { claimGroup, settleOrders, type CreatedEvent } from './peers.js';
import { stage } from './staged-changes.js';
import type { ReservationStatus, ReservationView } from './types.js';

export interface ProductView {
  productId: string;
  onHand: number;
  reserved: number;
  available: number;
  sold: number;
  price?: number;
}

type ProductRow = { product_id: string; on_hand: number; reserved: number; sold: number; price: number | string | null };

export type { ReservationStatus, ReservationView };

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
 * not even when a batch transaction covers several of them. A row the transaction holds already
 * is not asked for again: its level as the transaction left it is in memory (batch-lock.ts).
 */
async function lockProducts(sql: TxSql, productIds: readonly string[]): Promise<Map<string, StockLevel>> {
  const held = heldRows(sql).product;
  await lockMissing(
    sql,
    'product',
    held,
    productIds,
    (ids, mode) =>
      sql.query<ProductRow>(
        `SELECT product_id, on_hand, reserved, sold, price FROM products WHERE product_id = ANY($1::text[])
         ORDER BY product_id COLLATE "C" FOR UPDATE${mode === 'nowait' ? ' NOWAIT' : ''}`,
        [ids],
      ),
    (r) => r.product_id,
    (r) => ({ productId: r.product_id, onHand: r.on_hand, reserved: r.reserved, price: r.price === null ? null : Number(r.price) }),
  );
  const levels = new Map<string, StockLevel>();
  for (const id of productIds) {
    const level = held.get(id);
    if (level) levels.set(id, level);
  }
  return levels;
}

/** What changes in a reservation row; a field left out keeps the row's value. */
interface ReservationChange {
  orderId: string;
  status?: ReservationStatus;
  reason?: string;
  items?: readonly PricedItem[];
  amount?: number;
}

/**
 * Changes the transaction's copy of a reservation row it holds. The copy, as the transaction
 * leaves it, is what is written at commit for a row staged (staged-changes.ts), so it must change
 * as the row would: a reason is kept as given, an empty one too.
 */
function changeReservation(sql: TxSql, c: ReservationChange): void {
  const held = heldRows(sql).reservation;
  const id = c.orderId.toLowerCase();
  const prior = held.get(id);
  if (!prior) throw new Error(`reservation ${id} is not held by this transaction: it cannot be changed`);
  const next: ReservationView = { ...prior };
  if (c.status) next.status = c.status;
  if (c.reason !== undefined) next.reason = c.reason;
  if (c.items) next.items = [...c.items];
  if (c.amount !== undefined) next.amount = c.amount;
  held.set(id, next);
}

/**
 * Locks (unless the transaction holds the rows already), then moves per-unit deltas (×quantity)
 * of each product and changes the reservation row. Both are staged (staged-changes.ts) and
 * written at commit with the rest of the transaction's, so no statement goes out here; the
 * transaction's copies of the rows change now. A missing product row means the data is broken.
 */
async function adjust(sql: TxSql, items: readonly LineItem[], delta: StockDelta, reservation: ReservationChange): Promise<void> {
  const locked = await lockProducts(
    sql,
    items.map((i) => i.productId),
  );
  const missing = items.filter((i) => !locked.has(i.productId));
  if (missing.length) throw new Error(`products missing for a reservation: ${missing.map((i) => i.productId).join(', ')}`);
  const held = heldRows(sql).product;
  for (const i of items) held.set(i.productId, shifted(held.get(i.productId)!, i.quantity, delta));
  changeReservation(sql, reservation);
  stage(sql, items, delta, reservation.orderId);
}

// ---- reservations ---------------------------------------------------------------------------

/**
 * The consumer batch a handler runs in (a HandlerContext is one): its first event does the
 * locking for the events after it. Without one an event is handled on its own.
 */
export interface Batch {
  event: { id: string };
  peers: readonly IncomingEvent[];
}

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

interface Claim {
  eventId?: string;
  /** Lowercase, as Postgres returns a uuid. */
  orderId: string;
  items: LineItem[];
  currency: string;
  correlationId: string;
}

const claimOf = (e: CreatedEvent): Claim => ({
  eventId: e.id,
  orderId: e.data.orderId.toLowerCase(),
  items: mergeItems(e.data.items),
  currency: e.data.currency,
  correlationId: e.data.correlationId,
});

/**
 * Claims the reservation row of an order: a second orders.created for the same order (a
 * republish under a new message id) blocks on that insert until the first commits, then finds
 * the row and does nothing. The first claim of a batch makes the claims of the batch's later
 * orders.created too (those peers.ts allows), in one statement, and locks the products of every
 * order it claimed in one more: two round trips for the batch, however many orders it has.
 */
async function claim(sql: TxSql, self: Claim, batch?: Batch): Promise<boolean> {
  const held = heldRows(sql);
  const decided = batch ? held.claims.get(batch.event.id) : undefined;
  if (decided !== undefined) return decided;
  const group = batch ? claimGroup(batch.peers, batch.event.id, (id) => held.claims.has(id)) : { others: [], repeats: [] };
  // In id order, as rows are locked: two batches claiming the same orders wait in one direction.
  const orders = [self, ...group.others.map(claimOf)].sort((a, b) => compareIds(a.orderId, b.orderId));
  const rows = await sql.query<{ order_id: string }>(
    `INSERT INTO reservations (order_id, status, items, currency, correlation_id)
     SELECT o, 'held', i::jsonb, c, r FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(o, i, c, r)
     ON CONFLICT (order_id) DO NOTHING RETURNING order_id`,
    [
      orders.map((o) => o.orderId),
      orders.map((o) => JSON.stringify(o.items)),
      orders.map((o) => o.currency),
      orders.map((o) => o.correlationId),
    ],
  );
  const won = new Set(rows.map((r) => r.order_id));
  const claimed = orders.filter((o) => won.has(o.orderId));
  for (const o of orders) if (o.eventId !== undefined) held.claims.set(o.eventId, won.has(o.orderId));
  for (const e of group.repeats) held.claims.set(e.id, false);
  for (const o of claimed) {
    holding(sql, 'reservation', o.orderId);
    held.reservation.set(o.orderId, {
      orderId: o.orderId,
      status: 'held',
      items: o.items,
      currency: o.currency,
      correlationId: o.correlationId,
    });
  }
  await lockProducts(
    sql,
    claimed.flatMap((o) => o.items.map((i) => i.productId)),
  );
  return won.has(self.orderId);
}

/**
 * Reserves every line of an order or none, planned against the stock as this transaction sees
 * it: after the orders of the batch before it, so a batch never promises a unit twice.
 */
export async function reserve(sql: TxSql, input: ReserveInput, batch?: Batch): Promise<ReserveOutcome> {
  const items = mergeItems(input.items);
  const orderId = input.orderId.toLowerCase();
  const self = { eventId: batch?.event.id, orderId, items, currency: input.currency, correlationId: input.correlationId };
  if (!(await claim(sql, self, batch))) {
    const known = heldRows(sql).reservation.get(orderId);
    if (known) return { kind: 'duplicate', status: known.status };
    const [prior] = await sql.query<{ status: ReservationStatus }>(`SELECT status FROM reservations WHERE order_id = $1`, [input.orderId]);
    return { kind: 'duplicate', status: prior?.status ?? 'held' };
  }
  // Locked with the claim: no round trip here.
  const locked = await lockProducts(
    sql,
    items.map((i) => i.productId),
  );
  const plan = planReservation(items, locked);
  if (plan.kind === 'reject') {
    changeReservation(sql, { orderId, status: 'rejected', reason: plan.reason });
    stage(sql, [], NO_MOVE, orderId);
    return { kind: 'rejected', reason: plan.reason, shortages: plan.shortages };
  }
  await adjust(sql, plan.items, { onHand: 0, reserved: 1, sold: 0 }, { orderId: input.orderId, items: plan.items, amount: plan.amount });
  return { kind: 'reserved', items: plan.items, amount: plan.amount };
}

export type SettleOutcome =
  | { kind: 'committed' | 'released'; reservation: ReservationView }
  | { kind: 'tombstoned' }
  /** Nothing held: already settled, rejected, or never reserved. */
  | { kind: 'noop'; status?: ReservationStatus };

/**
 * The reservation row, locked. The first settle event of a batch locks the reservations of all
 * the batch's settle events in one statement, in the lock order, and the products of those still
 * held in one more, so the settles after it find their rows held and cost no round trip.
 */
async function lockReservation(sql: TxSql, orderId: string, batch?: Batch): Promise<ReservationView | undefined> {
  const held = heldRows(sql);
  const id = orderId.toLowerCase();
  if (held.reservation.has(id)) return held.reservation.get(id);
  const ids = [id];
  if (batch && !held.settlesLocked) {
    held.settlesLocked = true;
    ids.push(...settleOrders(batch.peers));
  }
  await lockMissing(
    sql,
    'reservation',
    held.reservation,
    ids,
    (ids, mode) =>
      sql.query<ReservationRow>(
        `SELECT order_id, status, items, amount, currency, reason, correlation_id FROM reservations
          WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE${mode === 'nowait' ? ' NOWAIT' : ''}`,
        [ids],
      ),
    (r) => r.order_id,
    toReservationView,
  );
  const holds = [...new Set(ids)].flatMap((i) => {
    const r = held.reservation.get(i);
    return r?.status === 'held' ? [r] : [];
  });
  await lockProducts(
    sql,
    holds.flatMap((r) => r.items.map((i) => i.productId)),
  );
  return held.reservation.get(id);
}

/** How a hold ends: the status the reservation takes, and a release's reason. */
type Settlement = { status: 'committed' } | { status: 'released'; reason: string };

/** A reservation change that moves no stock (a rejection). */
const NO_MOVE: StockDelta = { onHand: 0, reserved: 0, sold: 0 };

/** What a settlement does to the held units, per unit (×quantity). */
const SETTLED_STOCK: Record<Settlement['status'], StockDelta> = {
  // Sold: they leave the shelf (on hand and reserved down, sold up).
  committed: { onHand: -1, reserved: -1, sold: 1 },
  // Compensation: they go back on sale.
  released: { onHand: 0, reserved: -1, sold: 0 },
};

/**
 * Ends a hold: the units move and the reservation row changes, in one statement. Only a held
 * reservation is settled, so a hold ends once; anything else (settled already, rejected, a
 * tombstone, no row) is a noop. `r` is the reservation row, locked.
 */
async function settleHeld(sql: TxSql, r: ReservationView | undefined, change: Settlement): Promise<SettleOutcome> {
  if (!r || r.status !== 'held') return { kind: 'noop', status: r?.status };
  await adjust(sql, r.items, SETTLED_STOCK[change.status], { orderId: r.orderId, ...change });
  return { kind: change.status, reservation: { ...r, ...change } };
}

/** orders.confirmed: the held units are sold. */
export async function commit(sql: TxSql, orderId: string, batch?: Batch): Promise<SettleOutcome> {
  return settleHeld(sql, await lockReservation(sql, orderId, batch), { status: 'committed' });
}

/** payments.failed (and a cancel of a held order): the held units go back on sale. */
export async function release(sql: TxSql, orderId: string, reason: string, batch?: Batch): Promise<SettleOutcome> {
  return settleHeld(sql, await lockReservation(sql, orderId, batch), { status: 'released', reason });
}

/**
 * orders.cancelled: release what is held; if orders.created hasn't arrived yet, leave a
 * tombstone so it reserves nothing when it does.
 */
export async function cancel(sql: TxSql, orderId: string, reason: string, correlationId: string, batch?: Batch): Promise<SettleOutcome> {
  const r = await lockReservation(sql, orderId, batch);
  if (r) return settleHeld(sql, r, { status: 'released', reason });
  const held = heldRows(sql).reservation;
  const id = orderId.toLowerCase();
  const tomb = await sql.query(
    `INSERT INTO reservations (order_id, status, reason, correlation_id) VALUES ($1, 'cancelled', $2, $3)
     ON CONFLICT (order_id) DO NOTHING RETURNING order_id`,
    [orderId, reason, correlationId],
  );
  if (tomb.length) {
    holding(sql, 'reservation', id);
    held.set(id, { orderId: id, status: 'cancelled', items: [], ...(reason ? { reason } : {}), correlationId });
    return { kind: 'tombstoned' };
  }
  // Lost the race: another transaction's orders.created inserted the row after the lookup above
  // found none (had it not committed yet, the INSERT waited for it), so the INSERT did nothing.
  // The lookup's "no row" is stale: forget it, lock the row now (through the lock order, since a
  // third transaction may hold it by now; its products are locked with it) and release what it
  // holds, exactly as for a cancel that found the row held.
  held.delete(id);
  return settleHeld(sql, await lockReservation(sql, orderId), { status: 'released', reason });
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
