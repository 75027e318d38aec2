/**
 * A consumer batch (the kit runs the handlers of many messages in one transaction, HandlerContext
 * .peers naming them all): its first orders.created claims the reservations of the batch and locks
 * all their products, one statement each; its first settle event locks the batch's reservations
 * and their products the same way. Each event still ends exactly as it would handled alone, in
 * order: the same scenario runs in a second schema one event per transaction, and both must agree.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { migrate, OUTBOX_MIGRATIONS, openPostgres, type Db, type IncomingEvent, type TxSql } from '@orderflow/kit';
import { dropSchema, testNamespace, TEST_DATABASE_URL, waitFor } from '@orderflow/kit/testing';
import { MIGRATIONS, cancel, commit, getProduct, getReservation, release, reserve, setStock, type Batch } from '../src/index.js';
import { LockOrderError } from '../src/stock/lock-order.js';
import { batchThenOneByOne, deadlocked, meeting } from './helpers.js';

let db: Db;
/** The reference: the same events, one transaction each. */
let ref: Db;
/** Another session, to see which rows the batch holds. */
let other: Db;
beforeAll(async () => {
  db = await openPostgres({ url: TEST_DATABASE_URL, schema: testNamespace('inv_batch') });
  ref = await openPostgres({ url: TEST_DATABASE_URL, schema: testNamespace('inv_batch_ref') });
  other = await openPostgres({ url: TEST_DATABASE_URL, schema: db.schema });
  for (const d of [db, ref]) await migrate(d, [...OUTBOX_MIGRATIONS, ...MIGRATIONS]);
});
afterAll(async () => {
  await other?.close();
  for (const d of [db, ref]) {
    if (!d) continue;
    await d.close();
    await dropSchema(d.schema);
  }
});

type Items = Array<{ productId: string; quantity: number }>;
const incoming = (type: string, data: Record<string, unknown>): IncomingEvent =>
  ({ id: randomUUID(), type, version: 'v1', correlationId: 'c-batch', data, publishedVersions: ['v1'] }) as unknown as IncomingEvent;
const base = (orderId: string) => ({ version: 'v1', orderId, correlationId: `corr-${orderId}`, occurredAt: new Date().toISOString() });
const created = (orderId: string, items: Items) =>
  incoming('orders.created', { ...base(orderId), customerId: 'cu', currency: 'EUR', items });
const confirmed = (orderId: string) => incoming('orders.confirmed', base(orderId));
const cancelled = (orderId: string) => incoming('orders.cancelled', { ...base(orderId), reason: 'timeout' });
const failed = (orderId: string) => incoming('payments.failed', { ...base(orderId), reason: 'payment_declined', amount: 1 });

/** What inventory's handler for the event does (stock/handlers.ts), given the batch or not. */
function handle(sql: TxSql, e: IncomingEvent, batch?: Batch): Promise<unknown> {
  const d = e.data as unknown as { orderId: string; items: Items; currency: string; correlationId: string; reason: string };
  switch (e.type) {
    case 'orders.created':
      return reserve(sql, { orderId: d.orderId, items: d.items, currency: d.currency, correlationId: d.correlationId }, batch);
    case 'orders.confirmed':
      return commit(sql, d.orderId, batch);
    case 'orders.cancelled':
      return cancel(sql, d.orderId, d.reason, d.correlationId, batch);
    case 'payments.failed':
      return release(sql, d.orderId, d.reason, batch);
    default:
      throw new Error(`no handler for ${e.type}`);
  }
}

/** The transaction with every statement it awaits recorded (queued writes cost no round trip), and its queued writes apart. */
function counted(sql: TxSql, into: string[], writes: string[] = []): TxSql {
  return {
    query: (text, params) => {
      into.push(text.replace(/\s+/g, ' ').trim());
      return sql.query(text, params);
    },
    exec: (text) => {
      into.push(text);
      return sql.exec(text);
    },
    atCommit: (text, params) => sql.atCommit(text, params),
    write: (text, params) => {
      writes.push(text.replace(/\s+/g, ' ').trim());
      sql.write(text, params);
    },
    beforeCommit: (fn) => sql.beforeCommit(fn),
  };
}

/** Fails unless another session finds the row locked. */
async function lockedElsewhere(table: 'products' | 'reservations', id: string): Promise<void> {
  const key = table === 'products' ? 'product_id' : 'order_id';
  await expect(other.tx((o) => o.query(`SELECT 1 FROM ${table} WHERE ${key} = $1 FOR UPDATE NOWAIT`, [id]))).rejects.toMatchObject({
    code: '55P03',
  });
}

/** The events as one batch in `db`, then one transaction each in `ref`; both end the same. */
async function batchAgreesWithOneByOne(
  events: IncomingEvent[],
  opts: { afterFirst?: (statements: readonly string[]) => Promise<void> } = {},
): Promise<{ outcomes: unknown[]; statements: string[]; writes: string[] }> {
  const statements: string[] = [];
  const writes: string[] = [];
  const outcomes = await db.tx(async (tx) => {
    const sql = counted(tx, statements, writes);
    const out: unknown[] = [];
    for (const [i, e] of events.entries()) {
      out.push(await handle(sql, e, { event: e, peers: events }));
      if (i === 0) await opts.afterFirst?.(statements);
    }
    return out;
  });
  const alone: unknown[] = [];
  for (const e of events) alone.push(await ref.tx((sql) => handle(sql, e)));
  expect(outcomes).toEqual(alone);
  const orders = [...new Set(events.map((e) => (e.data as { orderId: string }).orderId))];
  for (const o of orders) expect(await getReservation(db, o)).toEqual(await getReservation(ref, o));
  return { outcomes, statements, writes };
}

const stock = async (productId: string, onHand: number, price?: number) => {
  for (const d of [db, ref]) await d.tx((sql) => setStock(sql, productId, onHand, price));
};
const product = async (productId: string) => {
  const p = await getProduct(db, productId);
  expect(p).toEqual(await getProduct(ref, productId));
  return p;
};

test('a batch of orders.created: one claim, one product lock, reserved in order while stock lasts, written once at commit', async () => {
  await stock('bl-x', 5, 2);
  await stock('bl-y', 3, 1);
  await stock('bl-z', 1, 10);
  // Reserved before the batch: its orders.created in the batch is a late duplicate.
  const p = randomUUID();
  for (const d of [db, ref])
    await d.tx((sql) => reserve(sql, { orderId: p, items: [{ productId: 'bl-y', quantity: 1 }], currency: 'EUR', correlationId: 'c' }));
  const [a, b, c, d, e, f] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const events = [
    created(a, [
      { productId: 'bl-x', quantity: 2 },
      { productId: 'bl-y', quantity: 1 },
    ]),
    created(b, [{ productId: 'bl-x', quantity: 2 }]),
    created(p, [{ productId: 'bl-y', quantity: 1 }]),
    created(c, [
      { productId: 'bl-x', quantity: 2 },
      { productId: 'bl-y', quantity: 1 },
    ]),
    created(d, [{ productId: 'bl-z', quantity: 1 }]),
    // a, republished under a new message id within the same batch.
    created(a, [
      { productId: 'bl-x', quantity: 2 },
      { productId: 'bl-y', quantity: 1 },
    ]),
    created(e, [
      { productId: 'bl-y', quantity: 1 },
      { productId: 'bl-z', quantity: 1 },
    ]),
    created(f, [
      { productId: 'bl-x', quantity: 1 },
      { productId: 'bl-y', quantity: 1 },
    ]),
  ];
  const { outcomes, statements, writes } = await batchAgreesWithOneByOne(events, {
    afterFirst: async (first) => {
      // bl-z is in d's order only, yet held already: the first handler locked every order's products.
      for (const id of ['bl-x', 'bl-y', 'bl-z']) await lockedElsewhere('products', id);
      // In two statements: the claim of all orders, then the lock of all their products.
      expect(first).toHaveLength(2);
      expect(first[0]).toMatch(/^INSERT INTO reservations .* unnest/);
      expect(first[1]).toMatch(/FROM products .* FOR UPDATE$/);
    },
  });
  expect(outcomes).toEqual([
    {
      kind: 'reserved',
      items: [
        { productId: 'bl-x', quantity: 2, unitPrice: 2 },
        { productId: 'bl-y', quantity: 1, unitPrice: 1 },
      ],
      amount: 5,
    },
    { kind: 'reserved', items: [{ productId: 'bl-x', quantity: 2, unitPrice: 2 }], amount: 4 },
    { kind: 'duplicate', status: 'held' },
    { kind: 'rejected', reason: 'out_of_stock', shortages: [{ productId: 'bl-x', requested: 2, available: 1 }] },
    { kind: 'reserved', items: [{ productId: 'bl-z', quantity: 1, unitPrice: 10 }], amount: 10 },
    { kind: 'duplicate', status: 'held' },
    { kind: 'rejected', reason: 'out_of_stock', shortages: [{ productId: 'bl-z', requested: 1, available: 0 }] },
    {
      kind: 'reserved',
      items: [
        { productId: 'bl-x', quantity: 1, unitPrice: 2 },
        { productId: 'bl-y', quantity: 1, unitPrice: 1 },
      ],
      amount: 3,
    },
  ]);
  // Eight orders.created, three statements: the claim, the product lock, and the status of p
  // (claimed by an earlier transaction, so not one this one holds).
  expect(statements).toHaveLength(3);
  expect(statements[2]).toMatch(/^SELECT status FROM reservations/);
  // Four reservations and two rejections change stock and reservation rows in one write, at commit.
  expect(writes).toHaveLength(1);
  expect(writes[0]).toMatch(/^WITH stock AS \( UPDATE products .* UPDATE reservations r .* FROM unnest/);
  // Every unit promised once: on hand − reserved never below zero, nothing lost.
  expect(await product('bl-x')).toMatchObject({ onHand: 5, reserved: 5, available: 0 });
  expect(await product('bl-y')).toMatchObject({ onHand: 3, reserved: 3, available: 0 });
  expect(await product('bl-z')).toMatchObject({ onHand: 1, reserved: 1, available: 0 });
  expect(await getReservation(db, c)).toMatchObject({ status: 'rejected', reason: 'out_of_stock' });
  expect(await getReservation(db, f)).toMatchObject({ status: 'held', amount: 3 });
});

test('a batch of settle events: one reservation lock, one product lock, every change written once at commit', async () => {
  await stock('bs-1', 10);
  await stock('bs-2', 10);
  const [g, h, i, j, k] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const holds: Array<[string, Items]> = [
    [g, [{ productId: 'bs-1', quantity: 2 }]],
    [
      h,
      [
        { productId: 'bs-1', quantity: 1 },
        { productId: 'bs-2', quantity: 1 },
      ],
    ],
    [i, [{ productId: 'bs-2', quantity: 1 }]],
    [j, [{ productId: 'bs-2', quantity: 2 }]],
  ];
  for (const d of [db, ref])
    for (const [orderId, items] of holds) await d.tx((sql) => reserve(sql, { orderId, items, currency: 'EUR', correlationId: 'c' }));
  const events = [
    confirmed(g),
    cancelled(h),
    confirmed(g),
    failed(i),
    confirmed(h),
    // Cancelled before its orders.created arrived: a tombstone, then the created reserves nothing.
    cancelled(k),
    created(k, [{ productId: 'bs-1', quantity: 1 }]),
    confirmed(j),
    failed(j),
  ];
  const { outcomes, statements, writes } = await batchAgreesWithOneByOne(events, {
    afterFirst: async (first) => {
      // The first settle (g's) holds the reservations of the whole batch and their products.
      for (const o of [h, i, j]) await lockedElsewhere('reservations', o);
      await lockedElsewhere('products', 'bs-2');
      expect(first).toHaveLength(2);
      expect(first[0]).toMatch(/FROM reservations WHERE order_id = ANY\(\$1::uuid\[\]\) ORDER BY order_id FOR UPDATE$/);
      expect(first[1]).toMatch(/FROM products .* FOR UPDATE$/);
    },
  });
  expect(outcomes).toMatchObject([
    { kind: 'committed', reservation: { orderId: g, status: 'committed' } },
    { kind: 'released', reservation: { orderId: h, status: 'released', reason: 'timeout' } },
    { kind: 'noop', status: 'committed' },
    { kind: 'released', reservation: { orderId: i, status: 'released', reason: 'payment_declined' } },
    { kind: 'noop', status: 'released' },
    { kind: 'tombstoned' },
    { kind: 'duplicate', status: 'cancelled' },
    { kind: 'committed', reservation: { orderId: j, status: 'committed' } },
    { kind: 'noop', status: 'committed' },
  ]);
  // Nine events, four statements: the two locks, k's tombstone and k's claim (which finds it).
  expect(statements).toHaveLength(4);
  // Four settlements, one write at commit.
  expect(writes).toHaveLength(1);
  expect(await product('bs-1')).toMatchObject({ onHand: 8, reserved: 0, sold: 2 });
  expect(await product('bs-2')).toMatchObject({ onHand: 8, reserved: 0, sold: 2 });
  for (const [o, status] of [
    [g, 'committed'],
    [h, 'released'],
    [i, 'released'],
    [j, 'committed'],
    [k, 'cancelled'],
  ] as const)
    expect((await getReservation(db, o))?.status).toBe(status);
});

test('an order named by another event between two orders.created is claimed in its turn, not with the batch', async () => {
  await stock('bm-1', 1, 1);
  const [m, n, o] = [randomUUID(), randomUUID(), randomUUID()];
  const one = [{ productId: 'bm-1', quantity: 1 }];
  // n is cancelled before its orders.created: claimed with m's, it would be held, then released,
  // then reserved again. In turn, it finds the tombstone. A release in between frees m's unit for o.
  const { outcomes } = await batchAgreesWithOneByOne([
    created(m, one),
    cancelled(n),
    created(n, one),
    cancelled(m),
    created(o, one),
    created(o, one),
  ]);
  expect(outcomes).toMatchObject([
    { kind: 'reserved' },
    { kind: 'tombstoned' },
    { kind: 'duplicate', status: 'cancelled' },
    { kind: 'released' },
    { kind: 'reserved' },
    { kind: 'duplicate', status: 'held' },
  ]);
  expect(await product('bm-1')).toMatchObject({ onHand: 1, reserved: 1, available: 0 });
});

// ---- two consumers at once ------------------------------------------------------------------
// Two batches in two transactions on two connections (`db` and `other`, the same schema), handled
// the way the kit does it: the batch in one transaction; if that fails, each event in a
// transaction of its own. Each sequencing point waits for a fact (a backend blocked by the other).

/** Handles the events as one consumer batch on `on`, each alone if the batch fails; resolves to the batch's error. */
const consume = (on: Db, events: IncomingEvent[], hooks: Parameters<typeof batchThenOneByOne>[3] = {}) =>
  batchThenOneByOne(
    on,
    events.length,
    (sql, i, inBatch) => handle(sql, events[i]!, inBatch ? { event: events[i]!, peers: events } : undefined),
    hooks,
  );

const backendPid = async (sql: TxSql) => (await sql.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`))[0]!.pid;

/** Resolves once `waiter`'s backend is waiting for a lock `holder`'s backend holds. */
const blockedBy = (waiter: () => number | undefined, holder: number) =>
  waitFor(`backend ${waiter()} blocked by ${holder}`, async () => {
    const pid = waiter();
    if (pid === undefined) return false;
    const [row] = await db.query<{ blocked: boolean }>(`SELECT $2::int = ANY(pg_blocking_pids($1::int)) AS blocked`, [pid, holder]);
    return row?.blocked === true;
  });

/** The stock the scenario should leave: what is held is reserved, what is committed is sold. */
class Tally {
  readonly reserved = new Map<string, number>();
  readonly sold = new Map<string, number>();
  private readonly holds = new Map<string, Items>();
  held(orderId: string, items: Items): void {
    this.holds.set(orderId, items);
    for (const i of items) this.reserved.set(i.productId, (this.reserved.get(i.productId) ?? 0) + i.quantity);
  }
  settled(orderId: string, sold: boolean): void {
    for (const i of this.holds.get(orderId)!) {
      this.reserved.set(i.productId, this.reserved.get(i.productId)! - i.quantity);
      if (sold) this.sold.set(i.productId, (this.sold.get(i.productId) ?? 0) + i.quantity);
    }
    this.holds.delete(orderId);
  }
  async check(products: readonly string[], onHand: number): Promise<void> {
    for (const id of products) {
      const sold = this.sold.get(id) ?? 0;
      const reserved = this.reserved.get(id) ?? 0;
      expect(await getProduct(db, id)).toMatchObject({
        productId: id,
        onHand: onHand - sold,
        reserved,
        sold,
        available: onHand - sold - reserved,
      });
    }
  }
}

const line = (...ids: string[]): Items => ids.map((productId) => ({ productId, quantity: 1 }));

test('two batches locking overlapping products in opposite orders, many rounds: both commit, one waiting for the other', async () => {
  const P = ['bc-1', 'bc-2', 'bc-3', 'bc-4'];
  for (const id of P) await db.tx((sql) => setStock(sql, id, 1000));
  const tally = new Tally();
  /**
   * A holds what its first event locked for the whole batch (every product, in one sorted
   * statement) until B is seen waiting for it; B's first event asks for the same products
   * (its events list them the other way round) and waits, upwards only: no cycle. Both commit.
   */
  const round = async (a: IncomingEvent[], b: IncomingEvent[]) => {
    let aPid = 0;
    let bPid: number | undefined;
    let aHolds!: () => void;
    const held = new Promise<void>((r) => (aHolds = r));
    const aDone = consume(db, a, {
      start: async (sql) => void (aPid = await backendPid(sql)),
      afterFirst: async () => {
        aHolds();
        await blockedBy(() => bPid, aPid);
      },
    });
    await Promise.race([held, aDone]);
    const bDone = consume(other, b, { start: async (sql) => void (bPid = await backendPid(sql)) });
    const failures = await Promise.all([aDone, bDone]);
    expect(failures.filter(deadlocked)).toEqual([]);
    expect(failures).toEqual([undefined, undefined]);
  };
  for (let r = 0; r < 12; r++) {
    const [a1, a2, b1, b2] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const items = { [a1]: line('bc-1', 'bc-2'), [a2]: line('bc-3', 'bc-4'), [b1]: line('bc-4', 'bc-3'), [b2]: line('bc-2', 'bc-1') };
    // orders.created: A's orders name the products upwards, B's downwards.
    await round([created(a1, items[a1]!), created(a2, items[a2]!)], [created(b1, items[b1]!), created(b2, items[b2]!)]);
    for (const o of [a1, a2, b1, b2]) tally.held(o, items[o]!);
    // The settles of the same orders, each batch in the same opposite order; every kind of settle.
    await round([confirmed(a1), cancelled(a2)], [failed(b1), confirmed(b2)]);
    tally.settled(a1, true);
    tally.settled(a2, false);
    tally.settled(b1, false);
    tally.settled(b2, true);
    for (const [o, status] of [
      [a1, 'committed'],
      [a2, 'released'],
      [b1, 'released'],
      [b2, 'committed'],
    ] as const)
      expect((await getReservation(db, o))?.status).toBe(status);
  }
  await tally.check(P, 1000);
});

test('two batches each locking in two steps against the other, many rounds: never a deadlock, the one that would wait downwards steps back', async () => {
  const P = ['bd-1', 'bd-2', 'bd-3', 'bd-4'];
  for (const id of P) await db.tx((sql) => setStock(sql, id, 1000));
  const tally = new Tally();
  const [lo, hi] = [line('bd-1', 'bd-2'), line('bd-4', 'bd-3')];
  const settles = [
    (o: string) => ({ event: confirmed(o), sold: true }),
    (o: string) => ({ event: cancelled(o), sold: false }),
    (o: string) => ({ event: failed(o), sold: false }),
  ];
  for (let r = 0; r < 15; r++) {
    // Each batch: an orders.created (its claim locks one pair of products), then a settle of an
    // order held on the other pair (locks its reservation, then that pair). The upward batch
    // locks bd-1, bd-2 then bd-3, bd-4; the downward one bd-3, bd-4 then bd-1, bd-2. Both hold
    // their first pair before either goes on (the meeting), so each then wants the other's pair.
    const [up, down, upHold, downHold] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    for (const [o, items] of [
      [upHold, hi],
      [downHold, lo],
    ] as const) {
      await db.tx((sql) => reserve(sql, { orderId: o, items, currency: 'EUR', correlationId: 'c' }));
      tally.held(o, items);
    }
    const upSettle = settles[r % 3]!(upHold);
    const downSettle = settles[(r + 1) % 3]!(downHold);
    const upward = [created(up, lo), upSettle.event];
    const downward = [created(down, hi), downSettle.event];
    const meet = meeting();
    // Who starts on which connection alternates.
    const [first, second] = r % 2 ? [other, db] : [db, other];
    const [upFailure, downFailure] = await Promise.all([
      consume(first, upward, { afterFirst: meet }),
      consume(second, downward, { afterFirst: meet }),
    ]);
    expect([upFailure, downFailure].filter(deadlocked)).toEqual([]);
    // The upward batch only ever waits upwards and commits. The downward one would wait for
    // rows ranked below what it holds: it fails at once with LockOrderError instead, its events
    // are then handled one at a time, and commit.
    expect(upFailure).toBeUndefined();
    expect(downFailure).toBeInstanceOf(LockOrderError);
    for (const [o, items] of [
      [up, lo],
      [down, hi],
    ] as const) {
      expect((await getReservation(db, o))?.status).toBe('held');
      tally.held(o, items);
    }
    tally.settled(upHold, upSettle.sold);
    tally.settled(downHold, downSettle.sold);
    expect((await getReservation(db, upHold))?.status).toBe(upSettle.sold ? 'committed' : 'released');
    expect((await getReservation(db, downHold))?.status).toBe(downSettle.sold ? 'committed' : 'released');
  }
  await tally.check(P, 1000);
});

test("a cancel whose tombstone loses the race to another transaction's orders.created releases what that reserved", async () => {
  await db.tx((sql) => setStock(sql, 'br-1', 3, 2));
  const o = randomUUID();
  const e = cancelled(o);
  let reserverPid = 0;
  let cancelPid: number | undefined;
  let reserved!: () => void;
  const claimed = new Promise<void>((r) => (reserved = r));
  // Reserves, and commits only once the cancel's tombstone INSERT waits for this row.
  const reserving = db.tx(async (sql) => {
    reserverPid = await backendPid(sql);
    const out = await reserve(sql, {
      orderId: o,
      items: [{ productId: 'br-1', quantity: 2 }],
      currency: 'EUR',
      correlationId: `corr-${o}`,
    });
    reserved();
    await blockedBy(() => cancelPid, reserverPid);
    return out;
  });
  await Promise.race([claimed, reserving]);
  // The cancel's lookup doesn't see the uncommitted row; its INSERT then waits for it.
  const cancelling = other.tx(async (sql) => {
    cancelPid = await backendPid(sql);
    return handle(sql, e, { event: e, peers: [e] });
  });
  expect(await reserving).toMatchObject({ kind: 'reserved', amount: 4 });
  expect(await cancelling).toEqual({
    kind: 'released',
    reservation: {
      orderId: o,
      status: 'released',
      items: [{ productId: 'br-1', quantity: 2, unitPrice: 2 }],
      amount: 4,
      currency: 'EUR',
      reason: 'timeout',
      correlationId: `corr-${o}`,
    },
  });
  expect(await getReservation(db, o)).toMatchObject({ status: 'released', reason: 'timeout' });
  expect(await getProduct(db, 'br-1')).toMatchObject({ onHand: 3, reserved: 0, sold: 0 });
});
