import { injectTraceHeaders, outboxInsertSql, outboxParams, txState, type OutgoingEvent, type TxSql } from '@orderflow/kit';
import type { OrderStatus } from '../saga/transitions.js';

/** The fields of an order row a saga step changes. */
export interface OrderState {
  /** Lowercase, as Postgres returns a uuid. */
  id: string;
  status: OrderStatus;
  reason: string | null;
  total: number | string | null;
  history: ReadonlyArray<{ status: OrderStatus; at: string; reason?: string }>;
}

/**
 * The orders one transaction holds locked, as it has changed them (an id looked for and not found
 * is there as undefined), which of them it changed, and the events it emits. A consumer batch
 * locks the orders of all its events with its first one, and each event works from, and changes,
 * these copies: nothing reads the rows back from the database before COMMIT.
 */
export interface HeldOrders<R extends OrderState> {
  rows: Map<string, R | undefined>;
  changed: Set<string>;
  events: OutgoingEvent[];
}

/**
 * The orders a transaction holds, made on first use; what it changed is written at commit, the
 * whole transaction's in one statement (sql.beforeCommit): a consumer batch of twenty saga steps
 * updates each order once and inserts its events in one go, instead of one UPDATE (with its
 * outbox insert) per event. Each order is written as the transaction's copy ends, so only which
 * ones changed is kept besides.
 */
export function heldOrders<R extends OrderState>(): (sql: TxSql) => HeldOrders<R> {
  return txState<HeldOrders<R>>(() => ({ rows: new Map(), changed: new Set(), events: [] }), write);
}

/**
 * Records an order's new state and the event it emits, to be written at commit. Only orders the
 * transaction holds locked may be changed. The event's trace context is taken now, in the
 * handler's span, not at commit.
 */
export function stageOrderChange<R extends OrderState>(held: HeldOrders<R>, order: R, event?: OutgoingEvent): void {
  if (!held.rows.has(order.id)) throw new Error(`order ${order.id} is not held by this transaction: it cannot be changed`);
  held.rows.set(order.id, order);
  held.changed.add(order.id);
  if (event) {
    injectTraceHeaders(event.headers);
    held.events.push(event);
  }
}

function write(sql: TxSql, held: HeldOrders<OrderState>): void {
  const orders = [...held.changed].map((id) => held.rows.get(id)!);
  if (orders.length === 0) return;
  // The orders and their events in one statement (a data-modifying CTE runs to completion); the
  // rows are locked already.
  sql.write(
    `WITH o AS (
       UPDATE orders o
          SET status = c.status, reason = c.reason, total = c.total, history = c.history::jsonb, updated_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::text[]) AS c(id, status, reason, total, history)
        WHERE o.id = c.id
     ) ${outboxInsertSql(6)}`,
    [
      orders.map((o) => o.id),
      orders.map((o) => o.status),
      orders.map((o) => o.reason),
      orders.map((o) => o.total),
      orders.map((o) => JSON.stringify(o.history)),
      ...outboxParams(held.events),
    ],
  );
}
