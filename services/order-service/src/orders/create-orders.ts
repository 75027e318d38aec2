import type { Settled, Sql } from '@orderflow/kit';
import type { OrderStatus } from '../saga/transitions.js';
import type { NewOrder } from './new-order.js';
import type { CreateResult } from './repository.js';

/**
 * Every order of a group, its idempotency key claim and its orders.created events in ONE
 * statement (atomic on its own: one round trip, one commit). A keyed order is inserted only if
 * its key was claimed by this statement; the outbox rows follow the orders actually inserted.
 * Keys are claimed in key order: two groups in flight (or two replicas) holding the same keys wait
 * on each other in one order, never in a cycle (a deadlock would be a 503 for both groups).
 */
const INSERT_GROUP = `WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::jsonb[], $7::text[], $8::text[])
      AS i(id, customer_id, currency, items, correlation_id, history, key, request_hash)
  ), claimed AS (
    INSERT INTO idempotency_keys (key, request_hash, order_id)
    SELECT key, request_hash, id FROM input WHERE key IS NOT NULL ORDER BY key
    ON CONFLICT (key) DO NOTHING RETURNING order_id
  ), o AS (
    INSERT INTO orders (id, customer_id, currency, items, status, correlation_id, history)
    SELECT id, customer_id, currency, items, 'pending', correlation_id, history FROM input
    WHERE key IS NULL OR id IN (SELECT order_id FROM claimed)
    RETURNING id
  ), e AS (
    INSERT INTO outbox (event_id, subject, headers, payload)
    SELECT event_id, subject, headers, payload
    FROM unnest($9::text[], $10::text[], $11::jsonb[], $12::text[], $13::uuid[]) WITH ORDINALITY
      AS x(event_id, subject, headers, payload, order_id, n)
    WHERE order_id IN (SELECT id FROM o)
    ORDER BY n
  )
  SELECT id FROM o`;

/**
 * Keys this statement did not claim: taken before (a replay or a conflict), also by another
 * replica whose claim committed while ours waited on it. Read after the group statement, so a
 * fresh snapshot sees that commit.
 */
const PRIOR_KEYS = `SELECT k.key, k.request_hash, k.order_id, o.status
  FROM idempotency_keys k LEFT JOIN orders o ON o.id = k.order_id WHERE k.key = ANY($1::text[])`;

/**
 * Writes a group of orders: one outcome per order, in order. A second request in the same group
 * with an already-present key is answered like any replay, from the first one's committed row.
 * Throws (nothing written) when the statement fails; the group writer then decides.
 */
export async function createOrders(sql: Sql, orders: readonly NewOrder[]): Promise<Array<Settled<CreateResult>>> {
  // Column arrays of the orders (ids, customers, currencies, items, correlation ids, histories,
  // keys, hashes) and of their events (ids, subjects, headers, payloads, order ids).
  const cols: Array<Array<string | null>> = [[], [], [], [], [], [], [], []];
  const events: string[][] = [[], [], [], [], []];
  const keys = new Set<string>();
  // Whether each order goes into the statement (a key repeated within the group stays out).
  const sent: boolean[] = [];
  for (const o of orders) {
    const key = o.idem?.key;
    if (key !== undefined && keys.has(key)) {
      sent.push(false);
      continue;
    }
    if (key !== undefined) keys.add(key);
    sent.push(true);
    const row = [o.orderId, o.customerId, o.currency, o.items, o.correlationId, o.history, key ?? null, o.idem?.hash ?? null];
    row.forEach((v, c) => cols[c]!.push(v));
    const [ids, subjects, headers, payloads] = o.outbox;
    for (let i = 0; i < ids.length; i++) {
      events[0]!.push(ids[i]!);
      events[1]!.push(subjects[i]!);
      events[2]!.push(headers[i]!);
      events[3]!.push(payloads[i]!);
      events[4]!.push(o.orderId);
    }
  }
  const inserted = new Set((await sql.query<{ id: string }>(INSERT_GROUP, [...cols, ...events])).map((r) => r.id));

  const unclaimed = orders.filter((o, i) => o.idem && !(sent[i] && inserted.has(o.orderId))).map((o) => o.idem!.key);
  const prior = new Map<string, { request_hash: string; order_id: string; status: OrderStatus | null }>();
  // The group has committed: from here a failure is settled per order and never thrown, or the
  // writer would split the group and write the created orders a second time.
  let lookupFailed: unknown;
  if (unclaimed.length > 0) {
    try {
      const rows = await sql.query<{ key: string; request_hash: string; order_id: string; status: OrderStatus | null }>(PRIOR_KEYS, [
        [...new Set(unclaimed)],
      ]);
      for (const r of rows) prior.set(r.key, r);
    } catch (err) {
      lookupFailed = err;
    }
  }
  return orders.map((o, i): Settled<CreateResult> => {
    if (sent[i] && inserted.has(o.orderId)) return { ok: true, value: { kind: 'created', orderId: o.orderId, status: 'pending' } };
    if (!o.idem) return { ok: false, error: new Error(`order ${o.orderId} was not inserted by its group`) };
    if (lookupFailed) return { ok: false, error: lookupFailed };
    const p = prior.get(o.idem.key);
    if (!p) return { ok: false, error: new Error(`idempotency key ${o.idem.key} vanished`) };
    if (p.request_hash !== o.idem.hash) return { ok: true, value: { kind: 'conflict', orderId: p.order_id } };
    if (!p.status) return { ok: false, error: new Error(`idempotency key ${o.idem.key} points at missing order ${p.order_id}`) };
    return { ok: true, value: { kind: 'replayed', orderId: p.order_id, status: p.status } };
  });
}
