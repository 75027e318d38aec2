/**
 * Invariant checker: reads the three services' Postgres schemas, the sandbox gateway's charges and
 * the JetStream streams after a run and says whether the platform kept its promises:
 *   - every accepted order (HTTP 202) exists and is final (confirmed | cancelled) — else "lost";
 *   - a confirmed order has exactly one charge at the gateway, captured; a cancelled one has none
 *     captured (a refunded charge is fine); the payment row agrees;
 *   - stock: on_hand ≥ 0, reserved = 0 and no held reservation at quiescence, sold = Σ committed
 *     reservations, and on_hand + sold = initial when the initial stock is known;
 *   - no event handled twice with effects: processed_events unique per (consumer, event id); in
 *     the streams at most one logical event of each type per order (two orders.confirmed, two
 *     payments.completed, or both a completion and a failure, are double effects); a Nats-Msg-Id
 *     stored twice in one stream is reported (the de-dup window was escaped);
 *   - the DLQ holds exactly the deliberately poisoned messages.
 * Used by the chaos tests (test/chaos) and by `npx tsx scripts/check-invariants.ts`.
 */
import pg from 'pg';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { Names } from '../../services/kit/src/topology.js';
import { platformTopology } from './topology.js';

export interface InvariantInput {
  databaseUrl: string;
  /** A service whose schema lives on another server than `databaseUrl` (by schema key). */
  databaseUrls?: Partial<Record<'order' | 'inventory' | 'payment', string>>;
  schemas: { order: string; inventory: string; payment: string };
  /** Sandbox gateway base URL; charges are not checked without it. */
  gatewayUrl?: string;
  /** NATS to read streams from; stream checks are skipped without it. */
  nats?: { servers: string[]; user?: string; pass?: string };
  namespace: string;
  /** Order ids that got 202. Orders in the database but not here are still checked for finality. */
  accepted?: readonly string[];
  initialStock?: Record<string, number>;
  /** Original Nats-Msg-Ids published as poison on purpose: the DLQ must hold these and nothing else. */
  expectedPoison?: readonly string[];
}

export interface Violation {
  kind: 'lost' | 'not_final' | 'double_effect' | 'charge' | 'payment' | 'stock' | 'reservation' | 'dlq' | 'stream' | 'quiescence';
  orderId?: string;
  productId?: string;
  detail: string;
}

export interface InvariantReport {
  ok: boolean;
  orders: { inDb: number; accepted: number; final: number; confirmed: number; cancelled: number; byReason: Record<string, number> };
  lost: number;
  doubleEffects: number;
  stockDrift: number;
  charges: { total: number; captured: number; refunded: number };
  streams: { messages: Record<string, number>; duplicateMsgIds: number } | undefined;
  dlq: { total: number; expected: number; unexpected: number; missing: number; reasons: string[] } | undefined;
  violations: Violation[];
}

interface OrderRow {
  id: string;
  status: string;
  reason: string | null;
}

async function pgQuery<R>(url: string, schema: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url, options: `-c search_path=${schema}`, application_name: 'invariant-checker' });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as R[];
  } finally {
    await c.end();
  }
}

/** Queries a schema of the run on the server that holds it. */
function querier(input: InvariantInput): <R>(schema: string, sql: string, params?: unknown[]) => Promise<R[]> {
  const bySchema = new Map<string, string>();
  for (const [key, schema] of Object.entries(input.schemas))
    bySchema.set(schema, input.databaseUrls?.[key as keyof InvariantInput['schemas']] ?? input.databaseUrl);
  return (schema, sql, params) => pgQuery(bySchema.get(schema) ?? input.databaseUrl, schema, sql, params);
}

export interface StreamMessage {
  subject: string;
  seq: number;
  headers: Record<string, string>;
  data: Uint8Array;
}

/** Every message of a stream, in order, through an ordered consumer (works on R3 streams). */
export async function readAllMessages(nc: NatsConnection, stream: string): Promise<StreamMessage[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const out: StreamMessage[] = [];
  if (info.state.messages === 0) return out;
  const last = info.state.last_seq;
  const c = await jetstream(nc).consumers.get(stream);
  const it = await c.consume({ max_messages: 1000 });
  const timer = setTimeout(() => void it.close(), 60_000);
  try {
    for await (const m of it as AsyncIterable<JsMsg>) {
      const headers: Record<string, string> = {};
      if (m.headers) for (const [k, vs] of m.headers) headers[k] = vs[0] ?? '';
      out.push({ subject: m.subject, seq: m.seq, headers, data: m.data });
      if (m.seq >= last) break;
    }
  } finally {
    clearTimeout(timer);
    await it.close();
  }
  return out;
}

async function gatewayCharges(url: string): Promise<Array<{ orderId: string; status: string; chargeId: string }>> {
  // GET /charges is subject to injected failures: retry a flapping gateway.
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(`${url}/charges`).catch(() => undefined);
    if (r?.ok) return ((await r.json()) as { charges: Array<{ orderId: string; status: string; chargeId: string }> }).charges;
    if (attempt >= 50) throw new Error(`gateway ${url}/charges: ${r?.status ?? 'unreachable'}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

function orderIdOf(data: Uint8Array): string | undefined {
  try {
    const j = JSON.parse(new TextDecoder().decode(data)) as { orderId?: unknown };
    return typeof j.orderId === 'string' ? j.orderId : undefined;
  } catch {
    return undefined;
  }
}

/** Event types that may appear at most once per order, and pairs that exclude each other. */
const ONCE = [
  'orders.created',
  'orders.confirmed',
  'orders.cancelled',
  'inventory.reserved',
  'inventory.rejected',
  'inventory.released',
  'payments.completed',
  'payments.failed',
];
const EXCLUSIVE: Array<[string, string]> = [
  ['orders.confirmed', 'orders.cancelled'],
  ['inventory.reserved', 'inventory.rejected'],
  ['payments.completed', 'payments.failed'],
];

export async function checkInvariants(input: InvariantInput): Promise<InvariantReport> {
  const v: Violation[] = [];
  const { schemas } = input;
  const q = querier(input);
  const orders = await q<OrderRow>(schemas.order, `SELECT id::text, status, reason FROM orders`);
  const byId = new Map(orders.map((o) => [o.id, o]));
  const accepted = input.accepted ?? [];
  let lost = 0;
  for (const id of accepted) {
    const o = byId.get(id);
    if (!o) {
      lost++;
      v.push({ kind: 'lost', orderId: id, detail: 'accepted (202) but not in the order database' });
    } else if (o.status !== 'confirmed' && o.status !== 'cancelled') {
      lost++;
      v.push({ kind: 'lost', orderId: id, detail: `accepted but still ${o.status}` });
    }
  }
  const acceptedSet = new Set(accepted);
  for (const o of orders) {
    if (!acceptedSet.has(o.id) && o.status !== 'confirmed' && o.status !== 'cancelled') {
      v.push({ kind: 'not_final', orderId: o.id, detail: `order (no 202 seen by the client) still ${o.status}` });
    }
  }
  const confirmed = orders.filter((o) => o.status === 'confirmed');
  const cancelled = orders.filter((o) => o.status === 'cancelled');
  const byReason: Record<string, number> = {};
  for (const o of cancelled) byReason[o.reason ?? 'none'] = (byReason[o.reason ?? 'none'] ?? 0) + 1;

  let doubleEffects = 0;
  const dbl = (orderId: string | undefined, detail: string) => {
    doubleEffects++;
    v.push({ kind: 'double_effect', orderId, detail });
  };

  // Charges at the gateway against the orders' final states.
  const charges = { total: 0, captured: 0, refunded: 0 };
  if (input.gatewayUrl) {
    const list = await gatewayCharges(input.gatewayUrl);
    const per = new Map<string, Array<{ status: string }>>();
    for (const c of list) {
      charges.total++;
      if (c.status === 'captured') charges.captured++;
      if (c.status === 'refunded') charges.refunded++;
      per.set(c.orderId, [...(per.get(c.orderId) ?? []), c]);
    }
    for (const [orderId, cs] of per) {
      const o = byId.get(orderId);
      if (!o) {
        // Other runs may share the gateway only if the caller passes one; ours is per run.
        v.push({ kind: 'charge', orderId, detail: `${cs.length} charge(s) for an order not in the database` });
        continue;
      }
      if (cs.length > 1) dbl(orderId, `${cs.length} charges at the gateway (${cs.map((c) => c.status).join(', ')})`);
      const captured = cs.filter((c) => c.status === 'captured').length;
      if (o.status === 'cancelled' && captured > 0)
        v.push({ kind: 'charge', orderId, detail: 'cancelled order has a captured (unrefunded) charge' });
    }
    for (const o of confirmed) {
      const cs = per.get(o.id) ?? [];
      if (cs.filter((c) => c.status === 'captured').length !== 1)
        v.push({
          kind: 'charge',
          orderId: o.id,
          detail: `confirmed order has ${cs.length} charge(s): ${cs.map((c) => c.status).join(', ') || 'none'}`,
        });
    }
  }

  /**
   * A service's row of each final order agrees with its outcome: a confirmed order's row is
   * `done`, a cancelled order's row (if any) is in none of `notAfterCancel`.
   */
  const agreeWithOutcome = (
    kind: 'payment' | 'reservation',
    byOrder: Map<string, { status: string }>,
    done: string,
    notAfterCancel: string[],
  ) => {
    for (const o of confirmed) {
      const r = byOrder.get(o.id);
      if (r?.status !== done) v.push({ kind, orderId: o.id, detail: `confirmed order's ${kind} is ${r?.status ?? 'missing'}` });
    }
    for (const o of cancelled) {
      const r = byOrder.get(o.id);
      if (r && notAfterCancel.includes(r.status)) v.push({ kind, orderId: o.id, detail: `cancelled order's ${kind} is ${r.status}` });
    }
  };

  // Payment rows agree with the order's outcome.
  const payments = await q<{ order_id: string; status: string; cancel_requested: boolean; in_doubt: boolean }>(
    schemas.payment,
    `SELECT order_id::text, status, cancel_requested, in_doubt FROM payments`,
  );
  const payBy = new Map(payments.map((p) => [p.order_id, p]));
  agreeWithOutcome('payment', payBy, 'captured', ['captured', 'charging']);
  for (const p of payments) if (p.in_doubt) v.push({ kind: 'quiescence', orderId: p.order_id, detail: 'payment still in doubt' });

  // Stock conservation from the inventory schema alone, and against the initial stock if known.
  let stockDrift = 0;
  const drift = (productId: string, detail: string) => {
    stockDrift++;
    v.push({ kind: 'stock', productId, detail });
  };
  const products = await q<{ product_id: string; on_hand: number; reserved: number; sold: number }>(
    schemas.inventory,
    `SELECT product_id, on_hand, reserved, sold FROM products`,
  );
  const reservations = await q<{ order_id: string; status: string; items: Array<{ productId: string; quantity: number }> }>(
    schemas.inventory,
    `SELECT order_id::text, status, items FROM reservations`,
  );
  const committed = new Map<string, number>();
  const held = new Map<string, number>();
  for (const r of reservations) {
    const into = r.status === 'committed' ? committed : r.status === 'held' ? held : undefined;
    if (into) for (const it of r.items) into.set(it.productId, (into.get(it.productId) ?? 0) + it.quantity);
  }
  for (const p of products) {
    if (p.on_hand < 0 || p.reserved < 0 || p.on_hand - p.reserved < 0)
      drift(p.product_id, `negative stock: on_hand ${p.on_hand}, reserved ${p.reserved}`);
    if (p.reserved !== 0) drift(p.product_id, `reserved ${p.reserved} at quiescence`);
    if (p.reserved !== (held.get(p.product_id) ?? 0))
      drift(p.product_id, `reserved ${p.reserved} ≠ held reservations ${held.get(p.product_id) ?? 0}`);
    if (p.sold !== (committed.get(p.product_id) ?? 0))
      drift(p.product_id, `sold ${p.sold} ≠ committed reservations ${committed.get(p.product_id) ?? 0}`);
    const initial = input.initialStock?.[p.product_id];
    if (initial !== undefined && p.on_hand + p.sold !== initial)
      drift(p.product_id, `on_hand ${p.on_hand} + sold ${p.sold} ≠ initial ${initial}`);
  }
  for (const pid of Object.keys(input.initialStock ?? {})) if (!products.some((p) => p.product_id === pid)) drift(pid, 'product missing');
  const resBy = new Map(reservations.map((r) => [r.order_id, r]));
  agreeWithOutcome('reservation', resBy, 'committed', ['held', 'committed']);

  // Exactly-once bookkeeping in every service's schema.
  for (const schema of Object.values(schemas)) {
    const dups = await q<{ consumer: string; event_id: string; n: number }>(
      schema,
      `SELECT consumer, event_id, count(*)::int AS n FROM processed_events GROUP BY 1, 2 HAVING count(*) > 1`,
    );
    for (const d of dups) dbl(undefined, `${schema}: event ${d.event_id} recorded ${d.n} times by ${d.consumer}`);
    const [outbox] = await q<{ n: number }>(schema, `SELECT count(*)::int AS n FROM outbox`);
    if (outbox!.n > 0) v.push({ kind: 'quiescence', detail: `${schema}: ${outbox!.n} outbox rows not yet published` });
  }

  let streams: InvariantReport['streams'];
  let dlq: InvariantReport['dlq'];
  if (input.nats) {
    const nc = await connect({ servers: input.nats.servers, name: 'invariant-checker', user: input.nats.user, pass: input.nats.pass });
    try {
      const names = new Names(input.namespace);
      streams = { messages: {}, duplicateMsgIds: 0 };
      const perOrder = new Map<string, Map<string, Set<string>>>();
      for (const base of ['ORDERS', 'INVENTORY', 'PAYMENTS']) {
        const msgs = await readAllMessages(nc, names.stream(base));
        streams.messages[base] = msgs.length;
        const seen = new Set<string>();
        for (const m of msgs) {
          const msgId = m.headers['Nats-Msg-Id'];
          if (msgId) {
            if (seen.has(msgId)) {
              streams.duplicateMsgIds++;
              v.push({ kind: 'stream', detail: `${base}: Nats-Msg-Id ${msgId} stored twice` });
            }
            seen.add(msgId);
          }
          const orderId = orderIdOf(m.data);
          if (!orderId || !msgId) continue;
          const type = m.headers['Event-Type'] || names.eventType(m.subject);
          const logical = m.headers['Event-Id'] || msgId;
          const types = perOrder.get(orderId) ?? new Map<string, Set<string>>();
          perOrder.set(orderId, types);
          const ids = types.get(type) ?? new Set<string>();
          types.set(type, ids.add(logical));
        }
      }
      for (const [orderId, types] of perOrder) {
        if (!byId.has(orderId)) continue; // deliberately poisoned or foreign test data
        for (const t of ONCE) if ((types.get(t)?.size ?? 0) > 1) dbl(orderId, `${types.get(t)!.size} distinct ${t} events`);
        for (const [a, b] of EXCLUSIVE) if (types.has(a) && types.has(b)) dbl(orderId, `both ${a} and ${b}`);
      }
      for (const id of accepted)
        if (!perOrder.get(id)?.has('orders.created')) v.push({ kind: 'stream', orderId: id, detail: 'no orders.created in the stream' });

      const dlqMsgs = await readAllMessages(nc, names.stream('DLQ')).catch(() => [] as StreamMessage[]);
      const expected = new Set(input.expectedPoison ?? []);
      const found = new Set<string>();
      let unexpected = 0;
      const reasons: string[] = [];
      for (const m of dlqMsgs) {
        const orig = m.headers['Dlq-Original-Msg-Id'] ?? '';
        const reason = m.headers['Dlq-Reason'] ?? '';
        if (!reason) v.push({ kind: 'dlq', detail: `DLQ message ${m.seq} has no Dlq-Reason` });
        if (reasons.length < 5 && !reasons.includes(reason)) reasons.push(reason);
        if (expected.has(orig)) found.add(orig);
        else {
          unexpected++;
          v.push({ kind: 'dlq', detail: `unexpected dead letter on ${m.subject} (original ${orig || 'no id'}): ${reason}` });
        }
      }
      const missing = [...expected].filter((id) => !found.has(id));
      for (const id of missing) v.push({ kind: 'dlq', detail: `poisoned message ${id} is not in the DLQ` });
      dlq = { total: dlqMsgs.length, expected: expected.size, unexpected, missing: missing.length, reasons };
    } finally {
      await nc.close();
    }
  }

  return {
    ok: v.length === 0,
    orders: {
      inDb: orders.length,
      accepted: accepted.length,
      final: confirmed.length + cancelled.length,
      confirmed: confirmed.length,
      cancelled: cancelled.length,
      byReason,
    },
    lost,
    doubleEffects,
    stockDrift,
    charges,
    streams,
    dlq,
    violations: v,
  };
}

/**
 * Waits until the run has settled: every order final, every outbox empty, no held reservation or
 * open payment, and every durable consumer has nothing pending or unacknowledged. Returns how
 * long it took; throws with what is still moving on timeout.
 */
export async function waitQuiescent(input: InvariantInput, timeoutMs: number, progress?: (what: string) => void): Promise<number> {
  const t0 = Date.now();
  let lastReport = t0;
  const { schemas } = input;
  const q = querier(input);
  let last: string;
  let nc: NatsConnection | undefined;
  try {
    for (;;) {
      const moving: string[] = [];
      try {
        const [o] = await q<{ n: number }>(
          schemas.order,
          `SELECT count(*)::int AS n FROM orders WHERE status NOT IN ('confirmed', 'cancelled')`,
        );
        if (o!.n) moving.push(`${o!.n} orders open`);
        const [r] = await q<{ n: number }>(schemas.inventory, `SELECT count(*)::int AS n FROM reservations WHERE status = 'held'`);
        if (r!.n) moving.push(`${r!.n} reservations held`);
        const [p] = await q<{ n: number }>(
          schemas.payment,
          `SELECT count(*)::int AS n FROM payments WHERE status = 'charging' OR (status = 'captured' AND cancel_requested) OR in_doubt`,
        );
        if (p!.n) moving.push(`${p!.n} payments open`);
        for (const s of Object.values(schemas)) {
          const [x] = await q<{ n: number }>(s, `SELECT count(*)::int AS n FROM outbox`);
          if (x!.n) moving.push(`${x!.n} outbox rows in ${s}`);
        }
        if (input.nats) {
          nc ??= await connect({
            servers: input.nats.servers,
            name: 'quiescence',
            user: input.nats.user,
            pass: input.nats.pass,
            maxReconnectAttempts: -1,
          });
          const jsm = await jetstreamManager(nc);
          for (const c of platformTopology({ namespace: input.namespace }).consumers) {
            const info = await jsm.consumers.info(c.streamName, c.durableName);
            if (info.num_pending || info.num_ack_pending)
              moving.push(`${c.durableName}: ${info.num_pending} pending, ${info.num_ack_pending} unacked`);
          }
        }
      } catch (err) {
        moving.push(`check failed: ${(err as Error).message}`);
      }
      if (moving.length === 0) return Date.now() - t0;
      last = moving.join('; ');
      if (progress && Date.now() - lastReport >= 10_000) {
        lastReport = Date.now();
        progress(`still moving after ${Math.round((lastReport - t0) / 1000)} s: ${last}`);
      }
      if (Date.now() - t0 > timeoutMs) throw new Error(`not quiescent after ${timeoutMs} ms: ${last}`);
      await new Promise((res) => setTimeout(res, 500));
    }
  } finally {
    await nc?.close().catch(() => undefined);
  }
}
