import { makeEvent, outboxInsertSql, type IncomingEvent, type Names, type OutgoingEvent, type Sql, type TxSql } from '@orderflow/kit';
import type { NewOrder } from './new-order.js';
import { heldOrders, stageOrderChange } from './staged-changes.js';
import { transition, type OrderStatus, type SagaInput, type Transition } from '../saga/transitions.js';

export interface OrderView {
  orderId: string;
  status: OrderStatus;
  customerId: string;
  currency: string;
  items: Array<{ productId: string; quantity: number }>;
  total?: number;
  reason?: string;
  correlationId: string;
  createdAt: string;
  history: Array<{ status: OrderStatus; at: string; reason?: string }>;
}

interface OrderRow {
  id: string;
  customer_id: string;
  currency: string;
  items: OrderView['items'];
  status: OrderStatus;
  reason: string | null;
  total: number | null;
  correlation_id: string;
  history: OrderView['history'];
  created_at: Date | string;
  [k: string]: unknown;
}

const iso = (d: Date | string) => new Date(d).toISOString();

export function toView(r: OrderRow): OrderView {
  return {
    orderId: r.id,
    status: r.status,
    customerId: r.customer_id,
    currency: r.currency,
    items: r.items,
    ...(r.total !== null ? { total: Number(r.total) } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    correlationId: r.correlation_id,
    createdAt: iso(r.created_at),
    history: r.history,
  };
}

export type CreateResult = { kind: 'created' | 'replayed'; orderId: string; status: OrderStatus } | { kind: 'conflict'; orderId: string };

/**
 * Stores one order and its orders.created events atomically, on its own (the group writer's
 * fallback, see create-orders.ts for the set form). With an idempotency key it must run in a
 * transaction: the key row is claimed first, so two racing requests with one key create one order.
 */
export async function createOrder(sql: Sql, order: NewOrder): Promise<CreateResult> {
  const idem = order.idem;
  if (idem) {
    const claimed = await sql.query(
      `INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING RETURNING order_id`,
      [idem.key, idem.hash, order.orderId],
    );
    if (claimed.length === 0) {
      const [prior] = await sql.query<{ request_hash: string; order_id: string }>(
        `SELECT request_hash, order_id FROM idempotency_keys WHERE key = $1`,
        [idem.key],
      );
      if (!prior) throw new Error(`idempotency key ${idem.key} vanished`);
      if (prior.request_hash !== idem.hash) return { kind: 'conflict', orderId: prior.order_id };
      const existing = await getOrder(sql, prior.order_id);
      if (!existing) throw new Error(`idempotency key ${idem.key} points at missing order ${prior.order_id}`);
      return { kind: 'replayed', orderId: existing.orderId, status: existing.status };
    }
  }
  // The order and its events in one statement: atomic on its own, so a request without an
  // idempotency key needs no BEGIN/COMMIT round trips.
  await sql.query(
    `WITH o AS (
       INSERT INTO orders (id, customer_id, currency, items, status, correlation_id, history)
       VALUES ($1, $2, $3, $4, 'pending', $5, $6) RETURNING id
     ), e AS (${outboxInsertSql(7)})
     SELECT id FROM o`,
    [order.orderId, order.customerId, order.currency, order.items, order.correlationId, order.history, ...order.outbox],
  );
  return { kind: 'created', orderId: order.orderId, status: 'pending' };
}

export async function getOrder(sql: Sql, orderId: string): Promise<OrderView | undefined> {
  const [row] = await sql.query<OrderRow>(`SELECT * FROM orders WHERE id = $1`, [orderId]);
  return row ? toView(row) : undefined;
}

export interface Applied {
  before: OrderStatus;
  t: Transition;
  order: OrderView;
  /** The event the transition put in the outbox, if any: the relay publishes it after the commit. */
  event?: OutgoingEvent;
}

/** The orders one transaction has locked, as they stand in it (applySaga keeps them current). */
const lockedIn = heldOrders<OrderRow>();

/**
 * The order, locked. The first call in a transaction whose events (`peers`) name several orders
 * locks them all in one statement, in id order: one round trip for the batch instead of one per
 * event, and two transactions sharing orders take their locks in the same order.
 */
async function lockOrder(sql: TxSql, orderId: string, peers: readonly IncomingEvent[]): Promise<OrderRow | undefined> {
  const id = orderId.toLowerCase();
  const locked = lockedIn(sql).rows;
  if (locked.has(id)) return locked.get(id);
  // The first call locks every order of the batch; a later one only an order outside it.
  const ids = new Set([id]);
  if (locked.size === 0) {
    for (const e of peers) {
      const other = (e.data as { orderId?: unknown }).orderId;
      if (typeof other === 'string') ids.add(other.toLowerCase());
    }
  }
  const rows = await sql.query<OrderRow>(`SELECT * FROM orders WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, [[...ids]]);
  // An id asked for and not found is no order of ours: remembered as such.
  for (const i of ids) locked.set(i, undefined);
  for (const r of rows) locked.set(r.id, r);
  return locked.get(id);
}

/**
 * Applies a saga input to an order under a row lock, records history and queues the resulting
 * event in the same transaction. Returns undefined for an order this service never stored.
 *
 * The order as changed is computed here from the locked row, so the change is staged
 * (staged-changes.ts) and written at commit with the transaction's other orders: the lock is the
 * handler's only round trip, and with `peers` (the other events of a consumer batch) one lock and
 * one write serve the whole batch.
 */
export async function applySaga(
  sql: TxSql,
  names: Names,
  orderId: string,
  input: SagaInput,
  peers: readonly IncomingEvent[] = [],
): Promise<Applied | undefined> {
  const row = await lockOrder(sql, orderId, peers);
  if (!row) return undefined;
  const t = transition(row.status, input);
  const now = new Date().toISOString();
  const steps = t.steps.map((s) => ({ ...s, at: now }));
  const total = t.total ?? row.total;
  if (steps.length === 0 && total === row.total) return { before: row.status, t, order: toView(row) };
  // The row as the step leaves it (a reason kept unless given, history appended): written at commit.
  const updated: OrderRow = { ...row, status: t.status, reason: t.reason ?? row.reason, total, history: [...row.history, ...steps] };
  let event: OutgoingEvent | undefined;
  if (t.emit) {
    const base = { version: 'v1' as const, orderId, correlationId: row.correlation_id, occurredAt: now };
    event =
      t.emit === 'orders.confirmed'
        ? makeEvent(names, 'orders.confirmed', base)
        : makeEvent(names, 'orders.cancelled', { ...base, reason: t.reason ?? 'cancelled' });
  }
  stageOrderChange(lockedIn(sql), updated, event);
  return { before: row.status, t, order: toView(updated), ...(event ? { event } : {}) };
}
