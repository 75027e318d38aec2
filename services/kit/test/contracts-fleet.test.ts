/**
 * The migration playbook of docs/contracts.md, end to end: the real order-service publishing
 * orders.created through its outbox, a mixed fleet of kit EventConsumers on two durables of the
 * ORDERS stream, real NATS and Postgres.
 *
 *   0. order-service publishes v1 only (history).
 *   1. Consumers that read v1 and v2 are deployed: "a" still handles v1 (ignores v2 twins),
 *      "b" handles v2 (v1 history upcast).
 *   2. Dual publishing on (ORDERS_CREATED_VERSIONS=v1,v2): each order handled exactly once by each.
 *   3. "a" moves to v2 (same durable).
 *   4. v1 stopped (ORDERS_CREATED_VERSIONS=v2). A consumer still on v1 now dead-letters — why
 *      step 3 has to be finished first.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  applyTopology,
  EventConsumer,
  problems,
  startService,
  type ConsumerSpec,
  type Db,
  type HandlerContext,
  type Handlers,
  type Logger,
  type Names,
  type NatsManager,
  type RunningService,
} from '@orderflow/kit';
import { platformTopology } from '../../../test/support/topology.js';
import { dropSchema, readStream, TEST_DATABASE_URL, TEST_NATS_URL, waitFor, type TestBed } from '@orderflow/kit/testing';
import { startContractsBed } from './contracts-bed.js';
import { orderService } from '../../order-service/src/index.js';

let t: TestBed;
let ns: string, names: Names, log: Logger, db: Db, nc: NatsConnection, nats: NatsManager;
let orderSchema: string;
let svc: RunningService | undefined;
const specs = new Map<string, ConsumerSpec>();

beforeAll(async () => {
  t = await startContractsBed('fleet', 'customer text');
  ({ namespace: ns, names, log, db, nc, nats } = t);
  orderSchema = `kit_fleet_os_${ns}`;
});
afterAll(async () => {
  await svc?.stop();
  await t?.stop();
  if (orderSchema) await dropSchema(orderSchema);
});

/** (Re)starts order-service on the same database with the given ORDERS_CREATED_VERSIONS. */
async function orderServiceWith(versions: string | undefined): Promise<void> {
  await svc?.stop();
  svc = await startService(orderService(), {
    env: {
      PORT: '0',
      NATS_URL: TEST_NATS_URL,
      ORDERFLOW_NAMESPACE: ns,
      LOG_LEVEL: 'warn',
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_SCHEMA: orderSchema,
      SAGA_TIMEOUT_MS: '600000',
      ...(versions ? { ORDERS_CREATED_VERSIONS: versions } : {}),
    },
  });
  await waitFor('order-service ready', async () => (await fetch(`${svc!.url}/ready`)).ok);
}

const posted: Array<{ orderId: string; customerId: string }> = [];
async function placeOrders(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const customerId = `cust-${posted.length}`;
    const r = await fetch(`${svc!.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId, items: [{ productId: 'sku-1', quantity: 1 + (posted.length % 3) }] }),
    });
    expect(r.status).toBe(202);
    posted.push({ orderId: ((await r.json()) as { orderId: string }).orderId, customerId });
  }
}

/** Extra durables on ORDERS, filtered to orders.created (one filter subject per consumer on 2.9). */
async function durables(...durableNames: string[]): Promise<void> {
  const base = platformTopology({ namespace: ns, maxDeliver: 3, ackWait: '5s', backoff: ['100ms'] });
  const consumers = durableNames.map((durableName) => ({
    ...base.consumers[0]!,
    streamName: names.stream('ORDERS'),
    durableName,
    filterSubject: names.subject('orders.created'),
    deadLetter: { subject: names.dlqSubject(names.stream('ORDERS'), durableName) },
  }));
  expect(problems(await applyTopology(nats.current!.jsm, { ...base, consumers }, log))).toEqual([]);
  for (const c of consumers) specs.set(c.durableName, c);
}

/** A consumer build whose orders.created handler is written for `version`; records what it saw. */
function build(durable: string, version: 'v1' | 'v2'): EventConsumer {
  const record = async (hc: HandlerContext<'orders.created', 'v1'> | HandlerContext<'orders.created', 'v2'>, customer: string) => {
    const e = hc.event;
    await hc.sql.query(
      `INSERT INTO handled (consumer, event_id, order_id, version, upcast_from, customer) VALUES ($1, $2, $3, $4, $5, $6)`,
      [durable, e.id, e.data.orderId, e.version, e.upcastFrom ?? null, customer],
    );
  };
  const handlers: Handlers =
    version === 'v1'
      ? { 'orders.created': async (hc) => record(hc, hc.event.data.customerId) }
      : { 'orders.created': { version: 'v2', handle: async (hc) => record(hc, hc.event.data.customer.id) } };
  const c = new EventConsumer({ spec: specs.get(durable)!, names, db, nats, log, handlers });
  c.start();
  return c;
}

type Row = { event_id: string; order_id: string; version: string; upcast_from: string | null; customer: string };
const handled = (consumer: string) => db.query<Row>(`SELECT * FROM handled WHERE consumer = $1 ORDER BY at`, [consumer]);

async function settled(...durableNames: string[]): Promise<void> {
  for (const d of durableNames) {
    await waitFor(`${d} handled every order`, async () => new Set((await handled(d)).map((r) => r.order_id)).size >= posted.length);
    await waitFor(`${d} drained`, async () => {
      const info = await nats.current!.jsm.consumers.info(names.stream('ORDERS'), d);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
  }
}

/** Every posted order exactly once, with the customer it was posted with. */
function expectEachOnce(rows: Row[]): void {
  expect(rows.map((r) => r.order_id).sort()).toEqual(posted.map((p) => p.orderId).sort());
  const customers = new Map(posted.map((p) => [p.orderId, p.customerId]));
  for (const r of rows) expect(r.customer).toBe(customers.get(r.order_id));
}

const ordersCreated = async () =>
  (await readStream(nc, names.stream('ORDERS'))).filter((m) => m.subject === names.subject('orders.created'));

test('the migration playbook: mixed fleet during dual publishing, each order handled once by each consumer', async () => {
  // 0. Before the migration: v1 only.
  await orderServiceWith(undefined);
  await placeOrders(3);
  await waitFor('v1 history in the stream', async () => (await ordersCreated()).length === 3);
  expect((await ordersCreated()).map((m) => m.headers['Event-Version'])).toEqual(['v1', 'v1', 'v1']);

  // 1. Consumers that read both versions: "a" handles v1, "b" handles v2 (upcasting v1).
  await durables('fleet-a', 'fleet-b');
  let a = build('fleet-a', 'v1');
  const b = build('fleet-b', 'v2');

  // 2. Dual publishing.
  await orderServiceWith('v1,v2');
  await placeOrders(4);
  await settled('fleet-a', 'fleet-b');
  const pairs = (await ordersCreated()).slice(3);
  expect(pairs).toHaveLength(8);
  for (let i = 0; i < 8; i += 2) {
    const [v1, v2] = [pairs[i]!, pairs[i + 1]!];
    expect([v1.headers['Event-Version'], v2.headers['Event-Version']]).toEqual(['v1', 'v2']);
    expect(v1.headers['Nats-Msg-Id']).not.toBe(v2.headers['Nats-Msg-Id']);
    expect(v2.headers['Event-Id']).toBe(v1.headers['Nats-Msg-Id']);
    expect(v1.headers['Event-Versions']).toBe('v1,v2');
    expect((v2.json as { customer: { id: string } }).customer.id).toBe((v1.json as { customerId: string }).customerId);
  }
  const a2 = await handled('fleet-a');
  const b2 = await handled('fleet-b');
  expectEachOnce(a2);
  expectEachOnce(b2);
  expect(a2.every((r) => r.version === 'v1')).toBe(true);
  expect(b2.every((r) => r.version === 'v2')).toBe(true);
  expect(b2.filter((r) => r.upcast_from === 'v1')).toHaveLength(3); // the history
  // Both consumers record the same logical event id per order: the v1 copy's message id.
  expect(new Map(a2.map((r) => [r.order_id, r.event_id]))).toEqual(new Map(b2.map((r) => [r.order_id, r.event_id])));

  // 3. "a" moves to v2 on the same durable, still during dual publishing.
  await a.stop();
  a = build('fleet-a', 'v2');
  await placeOrders(2);
  await settled('fleet-a', 'fleet-b');

  // 4. v1 stopped. A consumer still on v1 (started late, from the start of the stream) handles
  //    the v1 history and the v1 twins, and dead-letters what exists only in v2.
  await orderServiceWith('v2');
  await placeOrders(2);
  await settled('fleet-a', 'fleet-b');
  expect((await ordersCreated()).slice(-2).map((m) => [m.headers['Event-Version'], m.headers['Event-Versions']])).toEqual([
    ['v2', undefined],
    ['v2', undefined],
  ]);
  await durables('fleet-late');
  const late = build('fleet-late', 'v1');
  const dlq = names.dlqSubject(names.stream('ORDERS'), 'fleet-late');
  const deadLetters = async () => (await readStream(nc, names.stream('DLQ')).catch(() => [])).filter((m) => m.subject === dlq);
  await waitFor('the laggard dead-letters the v2-only orders', async () => (await deadLetters()).length === 2);
  await waitFor('fleet-late handled the rest', async () => (await handled('fleet-late')).length === posted.length - 2);

  for (const c of [a, b, late]) await c.stop();
  expectEachOnce(await handled('fleet-a'));
  expectEachOnce(await handled('fleet-b'));
  const aRows = await handled('fleet-a');
  expect(aRows.map((r) => r.version)).toEqual([...Array(7).fill('v1'), ...Array(4).fill('v2')]);
  expect((await handled('fleet-b')).every((r) => r.version === 'v2')).toBe(true);
  for (const m of await deadLetters()) {
    expect(m.headers['Dlq-Reason']).toMatch(
      /^orders\.created v2 is newer than this consumer handles \(v1\) and was published without a v1 twin/,
    );
  }
});
