/**
 * Event versions on the consuming side: upcasting v1 history into a v2 consumer (same outcome as
 * native v2), dual-published twins ignored, a durable switching v1 → v2 mid-pair handling each
 * event once, and unknown / unreadable versions dead-lettered with a reason. Real NATS + Postgres.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import {
  adaptToVersion,
  applyTopology,
  decodeEvent,
  EventConsumer,
  makeEvent,
  makeEventVersions,
  Names,
  PoisonMessageError,
  problems,
  publishVersionsSetting,
  upcast,
  upcastPath,
  type ConsumerSpec,
  type Db,
  type EventData,
  type HandlerContext,
  type Logger,
  type Handlers,
  type NatsManager,
  type OutgoingEvent,
  type Topology,
} from '@orderflow/kit';
import { platformTopology } from '../../../test/support/topology.js';
import { deleteNamespaceStreams, readStream, testNamespace, waitFor, type TestBed } from '@orderflow/kit/testing';
import { startContractsBed } from './contracts-bed.js';

let t: TestBed;
let log: Logger, db: Db, nc: NatsConnection, nats: NatsManager;
let history: string; // a stream holding only v1 (published before v2 existed): the bed's namespace
const native = testNamespace(); // the same orders published natively as v2
const twins = testNamespace(); // dual-published pairs
const dead = testNamespace(); // unreadable versions

beforeAll(async () => {
  t = await startContractsBed('contracts', 'data jsonb');
  ({ namespace: history, log, db, nc, nats } = t);
});
afterAll(async () => {
  // The bed removes its own namespace (history); the other three are this file's.
  if (nc) for (const ns of [native, twins, dead]) await deleteNamespaceStreams(nc, ns);
  await t?.stop();
});

/** The platform's streams in `ns` plus extra durables on ORDERS filtered to orders.created. */
async function topologyWith(ns: string, durables: string[]): Promise<{ topology: Topology; spec: (d: string) => ConsumerSpec }> {
  const base = platformTopology({ namespace: ns, maxDeliver: 3, ackWait: '5s', backoff: ['100ms'] });
  const names = new Names(ns);
  const extra = durables.map((durableName) => ({
    ...base.consumers[0]!,
    durableName,
    filterSubject: names.subject('orders.created'),
    deadLetter: { subject: names.dlqSubject(names.stream('ORDERS'), durableName) },
  }));
  const topology = { ...base, consumers: extra };
  expect(problems(await applyTopology(nats.current!.jsm, topology, log))).toEqual([]);
  return { topology, spec: (d) => extra.find((c) => c.durableName === d)! };
}

async function publish(e: OutgoingEvent): Promise<void> {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(e.headers)) h.set(k, v);
  await nats.current!.js.publish(e.subject, e.payload, { headers: h, msgID: e.id });
}

function order(i: number) {
  const orderId = randomUUID();
  const common = {
    orderId,
    correlationId: `corr-${i}`,
    occurredAt: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
    currency: 'EUR' as const,
    items: [{ productId: `sku-${i}`, quantity: i + 1 }],
  };
  return {
    orderId,
    v1: { version: 'v1', ...common, customerId: `cust-${i}` } satisfies EventData<'orders.created', 'v1'>,
    v2: { version: 'v2', ...common, customer: { id: `cust-${i}` } } satisfies EventData<'orders.created', 'v2'>,
  };
}

/** A consumer whose handler is written for `version` and records what it was shown. */
function recorder(spec: ConsumerSpec, names: Names, version: 'v1' | 'v2'): EventConsumer {
  const record = (durable: string) => async (hc: HandlerContext<'orders.created', 'v1'> | HandlerContext<'orders.created', 'v2'>) => {
    await hc.sql.query(`INSERT INTO handled (consumer, event_id, order_id, version, upcast_from, data) VALUES ($1, $2, $3, $4, $5, $6)`, [
      durable,
      hc.event.id,
      hc.event.data.orderId,
      hc.event.version,
      hc.event.upcastFrom ?? null,
      JSON.stringify(hc.event.data),
    ]);
  };
  const handlers: Handlers =
    version === 'v1'
      ? { 'orders.created': async (hc) => record(spec.durableName)(hc) }
      : { 'orders.created': { version: 'v2', handle: async (hc) => record(spec.durableName)(hc) } };
  return new EventConsumer({ spec, names, db, nats, log, handlers });
}

const handled = (consumer: string) =>
  db.query<{ event_id: string; order_id: string; version: string; upcast_from: string | null; data: Record<string, unknown> }>(
    `SELECT * FROM handled WHERE consumer = $1 ORDER BY at`,
    [consumer],
  );

async function drained(spec: ConsumerSpec): Promise<void> {
  await waitFor(`${spec.durableName} drained`, async () => {
    const info = await nats.current!.jsm.consumers.info(spec.streamName, spec.durableName);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  });
}

async function dlqReasons(ns: string, durable: string): Promise<string[]> {
  const names = new Names(ns);
  const subject = names.dlqSubject(names.stream('ORDERS'), durable);
  return (await readStream(nc, names.stream('DLQ')).catch(() => []))
    .filter((m) => m.subject === subject)
    .map((m) => m.headers['Dlq-Reason'] ?? '');
}

describe('versions, pure parts', () => {
  const names = new Names('t_versions');
  const o = order(1);
  const decoded = (e: OutgoingEvent) => {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(e.headers)) h.set(k, v);
    return decodeEvent(names, e.subject, new TextEncoder().encode(e.payload), h);
  };

  test('the v1→v2 upcaster is exact and its output is valid v2', () => {
    expect(upcastPath('orders.created', 'v1', 'v2')).toEqual(['v1', 'v2']);
    expect(upcastPath('orders.created', 'v2', 'v1')).toBeUndefined();
    expect(upcast('orders.created', 'v1', 'v2', o.v1)).toEqual(o.v2);
  });

  test('makeEventVersions: own msg ids, one shared Event-Id, Event-Versions on every copy; one version is plain makeEvent', () => {
    const [a, b] = makeEventVersions(names, 'orders.created', [o.v1, o.v2]);
    expect(a!.id).not.toBe(b!.id);
    expect(a!.subject).toBe(b!.subject);
    for (const e of [a!, b!]) expect(e.headers).toMatchObject({ 'Event-Id': a!.id, 'Event-Versions': 'v1,v2', 'Nats-Msg-Id': e.id });
    expect([a!.headers['Event-Version'], b!.headers['Event-Version']]).toEqual(['v1', 'v2']);
    const [single] = makeEventVersions(names, 'orders.created', [o.v2]);
    expect(single!.headers['Event-Id']).toBeUndefined();
    expect(single!.headers['Event-Versions']).toBeUndefined();
    expect(() => makeEventVersions(names, 'orders.created', [o.v1, o.v1])).toThrow(/repeat/);
  });

  test('adaptToVersion: handle own version, ignore a twin, upcast history, refuse the rest', () => {
    const [d1, d2] = makeEventVersions(names, 'orders.created', [o.v1, o.v2]).map(decoded);
    expect(d1!.id).toBe(d2!.id); // the logical id processed_events keys on
    expect(adaptToVersion(d1!, 'v1')).toMatchObject({ kind: 'handle', event: { version: 'v1' } });
    expect(adaptToVersion(d2!, 'v1')).toMatchObject({ kind: 'twin' });
    expect(adaptToVersion(d1!, 'v2')).toMatchObject({ kind: 'twin' });
    const old = decoded(makeEvent(names, 'orders.created', o.v1));
    expect(adaptToVersion(old, 'v2')).toEqual({ kind: 'handle', event: { ...old, version: 'v2', upcastFrom: 'v1', data: o.v2 } });
    const newOnly = decoded(makeEvent(names, 'orders.created', o.v2));
    expect(() => adaptToVersion(newOnly, 'v1')).toThrow(PoisonMessageError);
    expect(() => adaptToVersion(newOnly, 'v1')).toThrow(/newer than this consumer handles \(v1\) and was published without a v1 twin/);
  });

  test('ORDERS_CREATED_VERSIONS is read and checked', () => {
    expect(publishVersionsSetting('ORDERS_CREATED_VERSIONS', 'orders.created', ['v1'], {})).toEqual(['v1']);
    expect(publishVersionsSetting('ORDERS_CREATED_VERSIONS', 'orders.created', ['v1'], { ORDERS_CREATED_VERSIONS: 'v1, v2' })).toEqual([
      'v1',
      'v2',
    ]);
    expect(() => publishVersionsSetting('ORDERS_CREATED_VERSIONS', 'orders.created', ['v1'], { ORDERS_CREATED_VERSIONS: 'v1,v3' })).toThrow(
      /expected a comma list of v1, v2/,
    );
  });

  test('a handler declaring a version the catalogue lacks is refused at construction', () => {
    const spec = platformTopology({ namespace: 't_versions' }).consumers[0]!;
    const handlers = { 'orders.created': { version: 'v7', handle: async () => undefined } } as unknown as Handlers;
    expect(() => new EventConsumer({ spec, names, db, nats, log, handlers })).toThrow(/declares unknown version v7/);
  });
});

describe('versions on a real stream', () => {
  test('replaying v1 history into a v2 consumer through the upcaster gives the same outcome as native v2', async () => {
    const orders = [0, 1, 2, 3, 4].map(order);
    // History first, the consumers afterwards: a new durable replays the stream from the start.
    for (const ns of [history, native]) await topologyWith(ns, []);
    for (const o of orders) await publish(makeEvent(new Names(history), 'orders.created', o.v1));
    for (const o of orders) await publish(makeEvent(new Names(native), 'orders.created', o.v2));
    const h = await topologyWith(history, ['replay-v2']);
    const n = await topologyWith(native, ['native-v2']);
    const consumers = [recorder(h.spec('replay-v2'), new Names(history), 'v2'), recorder(n.spec('native-v2'), new Names(native), 'v2')];
    for (const c of consumers) c.start();
    await drained(h.spec('replay-v2'));
    await drained(n.spec('native-v2'));
    for (const c of consumers) await c.stop();

    const replayed = await handled('replay-v2');
    const nativeRows = await handled('native-v2');
    expect(replayed).toHaveLength(orders.length);
    expect(replayed.every((r) => r.version === 'v2' && r.upcast_from === 'v1')).toBe(true);
    expect(nativeRows.every((r) => r.version === 'v2' && r.upcast_from === null)).toBe(true);
    const byOrder = (rows: typeof replayed) => Object.fromEntries(rows.map((r) => [r.order_id, r.data]));
    expect(byOrder(replayed)).toEqual(byOrder(nativeRows));
    expect(byOrder(replayed)).toEqual(Object.fromEntries(orders.map((o) => [o.orderId, o.v2])));
    expect(await dlqReasons(history, 'replay-v2')).toEqual([]);
  });

  test(
    'dual-published twins: each consumer handles its own version once; a durable switched v1 → v2 mid-pair ' + 'handles nothing twice',
    async () => {
      const names = new Names(twins);
      const { spec } = await topologyWith(twins, ['switch']);
      const a = order(10);
      const b = order(11);
      const [a1, a2] = makeEventVersions(names, 'orders.created', [a.v1, a.v2]);
      const [b1, b2] = makeEventVersions(names, 'orders.created', [b.v1, b.v2]);

      // The v1 build of the consumer handles A's v1 copy, then is replaced by the v2 build before
      // A's v2 copy is delivered (the boundary a rolling "move consumers to v2" can hit).
      const oldBuild = recorder(spec('switch'), names, 'v1');
      oldBuild.start();
      await publish(a1!);
      await waitFor('A handled by the v1 build', async () => (await handled('switch')).some((r) => r.order_id === a.orderId));
      await drained(spec('switch'));
      await oldBuild.stop();

      await publish(a2!);
      await publish(b1!);
      await publish(b2!);
      const newBuild = recorder(spec('switch'), names, 'v2');
      newBuild.start();
      await waitFor('B handled by the v2 build', async () => (await handled('switch')).some((r) => r.order_id === b.orderId));
      await drained(spec('switch'));
      await newBuild.stop();

      const rows = await handled('switch');
      expect(rows.map((r) => [r.order_id, r.version, r.event_id])).toEqual([
        [a.orderId, 'v1', a1!.id], // A once, in v1: its v2 twin shares the Event-Id, so processed_events stops it
        [b.orderId, 'v2', b1!.id], // B once, in v2: its v1 copy is ignored as a twin
      ]);
      expect(rows[1]!.data).toEqual(b.v2);
      expect(await dlqReasons(twins, 'switch')).toEqual([]);
    },
  );

  test(
    'an unknown version, a v2 without v1 twin for a v1 consumer, and a bad Event-Versions header go to the ' + 'DLQ with their reason',
    async () => {
      const names = new Names(dead);
      const { spec } = await topologyWith(dead, ['dlq-v1']);
      const consumer = recorder(spec('dlq-v1'), names, 'v1');
      const o = order(20);
      const v9 = makeEvent(names, 'orders.created', o.v1);
      v9.headers['Event-Version'] = 'v9';
      v9.payload = JSON.stringify({ ...o.v1, version: 'v9' });
      const lonelyV2 = makeEvent(names, 'orders.created', order(21).v2);
      const badList = makeEvent(names, 'orders.created', order(22).v1, { 'Event-Versions': 'v2,v3' });
      const fine = makeEvent(names, 'orders.created', order(23).v1);
      consumer.start();
      for (const e of [v9, lonelyV2, badList, fine]) await publish(e);
      await waitFor('three dead letters', async () => (await dlqReasons(dead, 'dlq-v1')).length >= 3);
      await drained(spec('dlq-v1'));
      await consumer.stop();

      const reasons = await dlqReasons(dead, 'dlq-v1');
      expect(reasons).toHaveLength(3);
      expect(reasons).toContainEqual('unknown version v9 of orders.created (this build knows v1, v2)');
      expect(reasons).toContainEqual(
        expect.stringMatching(/^orders\.created v2 is newer than this consumer handles \(v1\) and was published without a v1 twin/),
      );
      expect(reasons).toContainEqual('Event-Versions "v2,v3" does not list this message\'s version v1 of orders.created');
      // The consumer kept going: the good one after the poison was handled.
      expect((await handled('dlq-v1')).map((r) => r.event_id)).toEqual([fine.id]);
    },
  );
});
