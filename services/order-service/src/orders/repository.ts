import { randomUUID } from 'node:crypto';
import {
  enqueue,
  makeEvent,
  makeEventVersions,
  outboxInsertSql,
  outboxParams,
  type EventData,
  type EventVersion,
  type Names,
  type Sql,
} from '@orderflow/kit';
import type { CreateOrder } from './request.js';
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

export type CreateResult =
  { kind: 'created'; order: OrderView } | { kind: 'replayed'; order: OrderView } | { kind: 'conflict'; orderId: string };

export type OrdersCreatedVersion = EventVersion<'orders.created'>;

/**
 * Stores the order and its orders.created event in one transaction. With an idempotency key,
 * the key row is claimed first, so two racing requests with one key create one order.
 * `versions` (ORDERS_CREATED_VERSIONS, default v1) are the versions of orders.created to publish:
 * during a migration both, each its own message, enqueued together (docs/contracts.md).
 */
export async function createOrder(
  sql: Sql,
  names: Names,
  body: CreateOrder,
  correlationId: string,
  idem?: { key: string; hash: string },
  versions: readonly OrdersCreatedVersion[] = ['v1'],
): Promise<CreateResult> {
  const orderId = randomUUID();
  if (idem) {
    const claimed = await sql.query(
      `INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING RETURNING order_id`,
      [idem.key, idem.hash, orderId],
    );
    if (claimed.length === 0) {
      const [prior] = await sql.query<{ request_hash: string; order_id: string }>(
        `SELECT request_hash, order_id FROM idempotency_keys WHERE key = $1`,
        [idem.key],
      );
      if (!prior) throw new Error(`idempotency key ${idem.key} vanished`);
      if (prior.request_hash !== idem.hash) return { kind: 'conflict', orderId: prior.order_id };
      const order = await getOrder(sql, prior.order_id);
      if (!order) throw new Error(`idempotency key ${idem.key} points at missing order ${prior.order_id}`);
      return { kind: 'replayed', order };
    }
  }
  const now = new Date().toISOString();
  const history = [{ status: 'pending', at: now }];
  const created: { [V in OrdersCreatedVersion]: EventData<'orders.created', V> } = {
    v1: { version: 'v1', orderId, customerId: body.customerId, currency: body.currency, items: body.items, correlationId, occurredAt: now },
    v2: {
      version: 'v2',
      orderId,
      customer: { id: body.customerId },
      currency: body.currency,
      items: body.items,
      correlationId,
      occurredAt: now,
    },
  };
  const events = makeEventVersions(
    names,
    'orders.created',
    versions.map((v) => created[v]),
  );
  // The order and its events in one statement: atomic on its own, so a request without an
  // idempotency key needs no BEGIN/COMMIT round trips.
  const [row] = await sql.query<OrderRow>(
    `WITH o AS (
       INSERT INTO orders (id, customer_id, currency, items, status, correlation_id, history)
       VALUES ($1, $2, $3, $4, 'pending', $5, $6) RETURNING *
     ), e AS (${outboxInsertSql(7)})
     SELECT * FROM o`,
    [orderId, body.customerId, body.currency, JSON.stringify(body.items), correlationId, JSON.stringify(history), ...outboxParams(events)],
  );
  return { kind: 'created', order: toView(row!) };
}

export async function getOrder(sql: Sql, orderId: string): Promise<OrderView | undefined> {
  const [row] = await sql.query<OrderRow>(`SELECT * FROM orders WHERE id = $1`, [orderId]);
  return row ? toView(row) : undefined;
}

export interface Applied {
  before: OrderStatus;
  t: Transition;
  order: OrderView;
}

/**
 * Applies a saga input to an order under a row lock, records history and queues the resulting
 * event in the same transaction. Returns undefined for an order this service never stored.
 */
export async function applySaga(sql: Sql, names: Names, orderId: string, input: SagaInput): Promise<Applied | undefined> {
  const [row] = await sql.query<OrderRow>(`SELECT * FROM orders WHERE id = $1 FOR UPDATE`, [orderId]);
  if (!row) return undefined;
  const t = transition(row.status, input);
  const now = new Date().toISOString();
  const steps = t.steps.map((s) => ({ ...s, at: now }));
  const total = t.total ?? row.total;
  if (steps.length === 0 && total === row.total) return { before: row.status, t, order: toView(row) };
  const [updated] = await sql.query<OrderRow>(
    `UPDATE orders SET status = $2, reason = COALESCE($3, reason), total = $4, history = history || $5::jsonb, updated_at = now()
     WHERE id = $1 RETURNING *`,
    [orderId, t.status, t.reason ?? null, total, JSON.stringify(steps)],
  );
  if (t.emit) {
    const base = { version: 'v1' as const, orderId, correlationId: row.correlation_id, occurredAt: now };
    const event =
      t.emit === 'orders.confirmed'
        ? makeEvent(names, 'orders.confirmed', base)
        : makeEvent(names, 'orders.cancelled', { ...base, reason: t.reason ?? 'cancelled' });
    await enqueue(sql, [event]);
  }
  return { before: row.status, t, order: toView(updated!) };
}
