/**
 * Baselines on the broker, and the consumer runtime against them, on one stream of order
 * events: (1) bare async publish to a file-storage stream, (2) bare pull consume + ack, (3) the
 * kit's EventConsumer with a no-op handler (idempotency record in Postgres / PGlite + ack),
 * (4) the real inventory-service (reserve stock, emit inventory.reserved through its outbox).
 */
import { randomBytes } from 'node:crypto';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import {
  createLogger,
  EventConsumer,
  migrate,
  Names,
  NatsManager,
  openPglite,
  openPostgres,
  OUTBOX_MIGRATIONS,
  reconcileConsumer,
  reconcileStream,
  type ConsumerSpec,
  type Db,
  type OutgoingEvent,
} from '@orderflow/kit';
import { platformTopology } from '../../test/support/topology.js';
import { onCleanup } from '../lib/cleanup.js';
import { orderCreatedEvent, seedProducts } from '../lib/orders.js';
import { startChild } from '../lib/procs.js';
import { round, sleep, summary, until } from '../lib/stats.js';
import type { Config } from '../lib/config.js';

export interface BrokerResults {
  messages: number;
  messageBytes: number;
  publishPerSec: number;
  /** Medians of the interleaved trials below. */
  consumeAckPerSec: number;
  kitNoopPostgresPerSec: number;
  /**
   * Bare consume+ack and the kit's no-op consumer on Postgres, alternated (bare, kit, bare, kit…)
   * on fresh durables: one slow moment of the machine moves one trial, not the ratio.
   */
  trials: Array<{ consumeAckPerSec: number; kitNoopPostgresPerSec: number }>;
  kitNoopPglitePerSec: number;
  inventoryHandlerPerSec: number;
  ratioKitNoopPostgres: number;
  ratioKitNoopPglite: number;
  ratioInventory: number;
}

const log = createLogger('bench', 'warn');

function consumerSpec(names: Names, durable: string): ConsumerSpec {
  const base = platformTopology({ namespace: names.namespace }).consumers.find((c) => c.durableName === 'inventory-orders')!;
  return { ...base, durableName: durable, deadLetter: { subject: names.dlqSubject(base.streamName, durable) } };
}

async function publishAll(nc: NatsConnection, events: OutgoingEvent[], window: number): Promise<number> {
  const js = jetstream(nc);
  const enc = new TextEncoder();
  const payloads = events.map((e) => enc.encode(e.payload));
  const t0 = performance.now();
  let next = 0;
  // A bounded window of publishes in flight: each worker awaits its ack before the next.
  const worker = async () => {
    for (let i = next++; i < events.length; i = next++) {
      const e = events[i]!;
      const h = natsHeaders();
      for (const [k, v] of Object.entries(e.headers)) h.set(k, v);
      await js.publish(e.subject, payloads[i]!, { msgID: e.id, headers: h, timeout: 10_000 });
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return events.length / ((performance.now() - t0) / 1000);
}

async function waitAcked(jsm: JetStreamManager, stream: string, durable: string, timeoutMs: number): Promise<void> {
  await until(
    async () => {
      const i = await jsm.consumers.info(stream, durable);
      return i.num_ack_pending === 0 && i.num_pending === 0;
    },
    timeoutMs,
    20,
  );
}

async function bareConsume(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: Names,
  durable: string,
  n: number,
  timeoutMs: number,
): Promise<number> {
  const spec = consumerSpec(names, durable);
  await reconcileConsumer(jsm, spec);
  const t0 = performance.now();
  const consumer = await jetstream(nc).consumers.get(spec.streamName, spec.durableName);
  // The same pull window the kit uses (max(concurrency*2, 64) with concurrency 32).
  const messages = await consumer.consume({ max_messages: 64 });
  let count = 0;
  const timer = setTimeout(() => void messages.close(), timeoutMs);
  for await (const m of messages) {
    m.ack();
    if (++count >= n) break;
  }
  clearTimeout(timer);
  await messages.close().catch(() => undefined);
  await waitAcked(jsm, spec.streamName, spec.durableName, 10_000);
  if (count < n) throw new Error(`bare consume got ${count} of ${n} in ${timeoutMs} ms`);
  return n / ((performance.now() - t0) / 1000);
}

async function kitNoop(
  db: Db,
  jsm: JetStreamManager,
  names: Names,
  durable: string,
  n: number,
  timeoutMs: number,
  natsUrl: string,
): Promise<number> {
  await migrate(db, OUTBOX_MIGRATIONS);
  const spec = consumerSpec(names, durable);
  await reconcileConsumer(jsm, spec);
  const nats = new NatsManager({ servers: [natsUrl], name: `bench-${durable}` }, log);
  let handled = 0;
  const consumer = new EventConsumer({ spec, names, db, nats, log, handlers: { 'orders.created': async () => void handled++ } });
  nats.start();
  try {
    // Connected before the clock starts, as the bare consumer's connection is: both timings run
    // from looking the consumer up to the last ack.
    await nats.ready();
    const t0 = performance.now();
    consumer.start();
    const done = await until(() => handled >= n, timeoutMs, 5);
    await waitAcked(jsm, spec.streamName, spec.durableName, 10_000);
    if (!done) throw new Error(`kit consumer ${durable} handled ${handled} of ${n} in ${timeoutMs} ms`);
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await consumer.stop();
    await nats.stop();
  }
}

/** The real inventory-service as its own process, draining the same stream from the start. */
async function inventoryDrain(jsm: JetStreamManager, names: Names, schema: string, n: number, cfg: Config): Promise<number> {
  const stream = names.stream('ORDERS');
  const child = await startChild({
    name: 'inventory-service (consumer bench)',
    script: 'services/inventory-service/dist/main.js',
    node: cfg.node.command,
    env: {
      NATS_URL: cfg.natsUrl,
      ORDERFLOW_NAMESPACE: names.namespace,
      DATABASE_URL: cfg.databaseUrl,
      DATABASE_SCHEMA: schema,
      SEED_PRODUCTS: seedProducts(),
      LOG_LEVEL: 'warn',
    },
  });
  try {
    let t0 = 0;
    let floor0 = 0;
    let tDone = 0;
    await until(
      async () => {
        const i = await jsm.consumers.info(stream, 'inventory-orders');
        if (!t0 && i.delivered.stream_seq > 0) {
          t0 = performance.now();
          floor0 = i.ack_floor.stream_seq;
        }
        if (t0 && i.num_pending === 0 && i.num_ack_pending === 0) tDone = performance.now();
        return tDone > 0;
      },
      cfg.quick ? 60_000 : 120_000,
      50,
    );
    if (!tDone) throw new Error('inventory-service did not drain the stream in time');
    return (n - floor0) / ((tDone - t0) / 1000);
  } finally {
    await child.stop();
  }
}

export async function brokerBench(cfg: Config): Promise<BrokerResults> {
  const names = new Names(`bench_${randomBytes(4).toString('hex')}`);
  const n = cfg.quick ? 4000 : 20_000;
  const nc = await connect({ servers: cfg.natsUrl, name: 'bench-broker' });
  const jsm = await jetstreamManager(nc);
  const topo = platformTopology({ namespace: names.namespace });
  const schemaPg = `${names.namespace}_consumer`;
  const schemaInv = `${names.namespace}_inventory`;
  const undoStreams = onCleanup(`streams of ${names.namespace}`, async () => {
    for await (const s of jsm.streams.names())
      if (s.startsWith(`${names.namespace.toUpperCase()}_`)) await jsm.streams.delete(s).catch(() => undefined);
  });
  let pg: Db | undefined;
  const undoDb = onCleanup(`schemas of ${names.namespace}`, async () => {
    await pg?.close();
    const c = await openPostgres({ url: cfg.databaseUrl, schema: 'public' });
    await c.exec(`DROP SCHEMA IF EXISTS "${schemaPg}" CASCADE; DROP SCHEMA IF EXISTS "${schemaInv}" CASCADE`);
    await c.close();
  });
  try {
    for (const s of topo.streams.filter((s) => s.name === names.stream('ORDERS'))) await reconcileStream(jsm, s);
    const events = Array.from({ length: n }, (_, i) => orderCreatedEvent(names, i));
    const messageBytes = Buffer.byteLength(events[0]!.payload);
    const publishPerSec = await publishAll(nc, events, 1000);
    log.info({ publishPerSec }, 'published');
    await sleep(500);
    pg = await openPostgres({ url: cfg.databaseUrl, schema: schemaPg });
    const trials: BrokerResults['trials'] = [];
    for (let i = 1; i <= (cfg.quick ? 1 : 3); i++) {
      const consumeAckPerSec = await bareConsume(nc, jsm, names, `bench-bare-${i}`, n, 60_000);
      // Its own durable each time: processed_events is keyed by consumer, so every trial handles all.
      const kitNoopPostgresPerSec = await kitNoop(pg, jsm, names, `bench-kit-pg-${i}`, n, 120_000, cfg.natsUrl);
      trials.push({ consumeAckPerSec: round(consumeAckPerSec), kitNoopPostgresPerSec: round(kitNoopPostgresPerSec) });
    }
    const consumeAckPerSec = summary(trials.map((t) => t.consumeAckPerSec)).p50;
    const kitNoopPostgresPerSec = summary(trials.map((t) => t.kitNoopPostgresPerSec)).p50;
    await pg.close();
    pg = undefined;
    const lite = await openPglite({ schema: 'bench' });
    const kitNoopPglitePerSec = await kitNoop(lite, jsm, names, 'bench-kit-pglite', n, 120_000, cfg.natsUrl).finally(() => lite.close());
    const inventoryHandlerPerSec = await inventoryDrain(jsm, names, schemaInv, n, cfg);
    return {
      messages: n,
      messageBytes,
      publishPerSec: round(publishPerSec),
      // Medians of already rounded trials.
      consumeAckPerSec,
      kitNoopPostgresPerSec,
      kitNoopPglitePerSec: round(kitNoopPglitePerSec),
      trials,
      inventoryHandlerPerSec: round(inventoryHandlerPerSec),
      ratioKitNoopPostgres: round(kitNoopPostgresPerSec / consumeAckPerSec, 3),
      ratioKitNoopPglite: round(kitNoopPglitePerSec / consumeAckPerSec, 3),
      ratioInventory: round(inventoryHandlerPerSec / consumeAckPerSec, 3),
    };
  } finally {
    await undoDb();
    await undoStreams();
    await nc.close();
  }
}
