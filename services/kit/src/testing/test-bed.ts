/**
 * The setup every runtime test of the kit repeats: its own namespace with a topology (the streams and
 * the consumers of the services it is given),
 * its own Postgres schema with the outbox (and the test's tables), a NatsManager for the code
 * under test and a separate connection for the test's own reads. One `stop()` removes it all.
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type PubAck } from '@nats-io/jetstream';
import { EventConsumer, type EventConsumerOptions } from '../consumer/runtime.js';
import type { Db } from '../db/db.js';
import { migrate, type Migration } from '../db/migrate.js';
import { openPostgres, type PostgresOptions } from '../db/postgres.js';
import type { OutgoingEvent } from '../events/envelope.js';
import { createLogger, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { NatsManager } from '../nats/connection.js';
import { OUTBOX_MIGRATIONS } from '../outbox/store.js';
import { applyTopology, problems } from '../reconcile/index.js';
import type { ServiceDefinition } from '../definition.js';
import { Names, topologyOf, type ConsumerSpec, type Topology, type TopologyOptions } from '../topology.js';
import { deleteNamespaceStreams, dropSchema, TEST_DATABASE_URL, TEST_NATS_URL, testNamespace, testNats } from './index.js';

export interface TestBedOptions {
  /** Prefix of the namespace and name of the NATS connection (`<label>-test`). */
  label: string;
  /** Defaults to a logger at LOG_LEVEL, silent when unset. */
  log?: Logger;
  /** Given to the NatsManager (connection gauges), for tests that read metrics. */
  metrics?: Metrics;
  /** Tables of the test, migrated after the outbox. */
  migrations?: readonly Migration[];
  /**
   * The topology in the namespace: the streams and the consumers `services` declare (the kit does not
   * know the platform's services: tests pass their definitions). None is applied without it.
   */
  topology?: Omit<TopologyOptions, 'namespace'> & { services: ReadonlyArray<Pick<ServiceDefinition, 'consumers'>> };
  /** Another database than the shared one (a private server the test stops); `schema` defaults to `kit_<namespace>`. */
  database?: { url: string; schema?: string; settings?: PostgresOptions['settings']; keepSchema?: boolean };
}

export interface TestBed {
  namespace: string;
  names: Names;
  log: Logger;
  db: Db;
  /** The test's own connection, apart from the one the code under test uses. */
  nc: NatsConnection;
  /** The connection the code under test uses. */
  nats: NatsManager;
  /** Empty without the `topology` option. */
  topology: Topology;
  /** The consumer of the topology with this durable name. */
  spec(durable: string): ConsumerSpec;
  /** An EventConsumer on the bed's names, database, connection and log (each can be overridden). */
  consumer(
    o: Omit<EventConsumerOptions, 'names' | 'db' | 'nats' | 'log'> & Partial<Pick<EventConsumerOptions, 'names' | 'db' | 'nats' | 'log'>>,
  ): EventConsumer;
  /** Publishes an event with its headers (its Nats-Msg-Id among them) on the test's connection. */
  publish(e: OutgoingEvent): Promise<PubAck>;
  /** Stops the manager, deletes the namespace's streams, closes both connections, drops the schema. */
  stop(): Promise<void>;
}

export async function startTestBed(o: TestBedOptions): Promise<TestBed> {
  const namespace = testNamespace(o.label);
  const names = new Names(namespace);
  const log = o.log ?? createLogger(`${o.label}-test`, process.env.LOG_LEVEL ?? 'silent');
  const url = o.database?.url ?? TEST_DATABASE_URL;
  const schema = o.database?.schema ?? `kit_${namespace}`;
  const topology: Topology = o.topology
    ? topologyOf(o.topology.services, { ...o.topology, namespace })
    : { namespace, streams: [], consumers: [] };
  const steps: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    // Every step runs, also after one failed, so a broken test leaves nothing behind.
    const failed = [];
    for (const step of steps.reverse()) {
      try {
        await step();
      } catch (err) {
        failed.push(err);
      }
    }
    steps.length = 0;
    if (failed.length) throw new AggregateError(failed, `test bed ${namespace}: cleanup failed`);
  };
  try {
    const db = await openPostgres({ url, schema, log, ...(o.database?.settings ? { settings: o.database.settings } : {}) });
    if (!o.database?.keepSchema) steps.push(() => dropSchema(schema, url));
    steps.push(() => db.close());
    await migrate(db, [...OUTBOX_MIGRATIONS, ...(o.migrations ?? [])]);
    const nc = await testNats();
    steps.push(() => nc.close());
    steps.push(() => deleteNamespaceStreams(nc, namespace));
    if (o.topology) {
      const failed = problems(await applyTopology(await jetstreamManager(nc), topology));
      if (failed.length) throw new Error(`test bed ${namespace}: topology not applied: ${JSON.stringify(failed)}`);
    }
    const nats = new NatsManager({ servers: [TEST_NATS_URL], name: `${o.label}-test` }, log, o.metrics);
    steps.push(() => nats.stop());
    nats.start();
    await nats.ready();
    return {
      namespace,
      names,
      log,
      db,
      nc,
      nats,
      topology,
      spec(durable) {
        const spec = topology.consumers.find((c) => c.durableName === durable);
        if (!spec) throw new Error(`test bed ${namespace}: no consumer ${durable} in the topology`);
        return spec;
      },
      consumer: (c) => new EventConsumer({ names, db, nats, log, ...c }),
      async publish(e) {
        const h = natsHeaders();
        for (const [k, v] of Object.entries(e.headers)) h.set(k, v);
        return jetstream(nc).publish(e.subject, e.payload, { headers: h });
      },
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
