import { injectTraceHeaders, outboxInsertSql, outboxParams, type OutgoingEvent, type TxSql } from '@orderflow/kit';
import type { OrderStatus } from '../saga/transitions.js';

/** What a saga step changes in an order row: its status, a reason (kept when absent), the total, history appended. */
export interface OrderChange {
  /** Lowercase, as Postgres returns a uuid. */
  id: string;
  status: OrderStatus;
  reason?: string;
  total: number | null;
  steps: ReadonlyArray<{ status: OrderStatus; at: string; reason?: string }>;
}

/** One transaction's order changes and their events, not yet written. */
interface Staged {
  orders: Map<string, { status: OrderStatus; reason: string | null; total: number | null; steps: OrderChange['steps'][number][] }>;
  events: OutgoingEvent[];
}

const stagedIn = new WeakMap<TxSql, Staged>();

/**
 * Stages an order's change and the event it emits. They are written at commit, the whole
 * transaction's in one statement (sql.beforeCommit): a consumer batch of twenty saga steps updates
 * each order once and inserts its events in one go, instead of one UPDATE (with its outbox insert)
 * per event.
 *
 * Only orders this transaction holds locked may be staged, and nothing may read them back from
 * the database before COMMIT: the repository's in-memory copies are what the rest of the
 * transaction works from. The event's trace context is taken now, in the handler's span, not at
 * commit.
 */
export function stageOrderChange(sql: TxSql, change: OrderChange, event?: OutgoingEvent): void {
  let s = stagedIn.get(sql);
  if (!s) {
    const fresh: Staged = { orders: new Map(), events: [] };
    stagedIn.set(sql, fresh);
    sql.beforeCommit(() => write(sql, fresh));
    s = fresh;
  }
  const prior = s.orders.get(change.id);
  // As the per-event UPDATEs did: status and total replaced, reason kept unless given, history appended.
  s.orders.set(change.id, {
    status: change.status,
    reason: change.reason ?? prior?.reason ?? null,
    total: change.total,
    steps: [...(prior?.steps ?? []), ...change.steps],
  });
  if (event) {
    injectTraceHeaders(event.headers);
    s.events.push(event);
  }
}

function write(sql: TxSql, s: Staged): void {
  const orders = [...s.orders];
  if (orders.length === 0) return;
  // The orders and their events in one statement (a data-modifying CTE runs to completion); the
  // rows are locked already.
  sql.write(
    `WITH o AS (
       UPDATE orders o
          SET status = c.status, reason = COALESCE(c.reason, o.reason), total = c.total,
              history = o.history || c.steps::jsonb, updated_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::text[]) AS c(id, status, reason, total, steps)
        WHERE o.id = c.id
     ) ${outboxInsertSql(6)}`,
    [
      orders.map(([id]) => id),
      orders.map(([, o]) => o.status),
      orders.map(([, o]) => o.reason),
      orders.map(([, o]) => o.total),
      orders.map(([, o]) => JSON.stringify(o.steps)),
      ...outboxParams(s.events),
    ],
  );
}
