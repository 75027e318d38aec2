/** Shared pieces of the consumer runtime's fault tests: a namespace with the platform topology, events, facts from JetStream. */
import { randomUUID } from 'node:crypto';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type ConsumerInfo } from '@nats-io/jetstream';
import { applyTopology, makeEvent, Names, platformTopology, problems, type ConsumerSpec, type OutgoingEvent, type Topology, type TopologyOptions } from '@orderflow/kit';
import { readStream } from '@orderflow/kit/testing';

export interface TestTopology {
  names: Names;
  topology: Topology;
  spec(durable: string): ConsumerSpec;
}

export async function applyTestTopology(nc: NatsConnection, namespace: string, opts: Omit<TopologyOptions, 'namespace'>): Promise<TestTopology> {
  const names = new Names(namespace);
  const topology = platformTopology({ namespace, ...opts });
  const failed = problems(await applyTopology(await jetstreamManager(nc), topology));
  if (failed.length) throw new Error(`topology not applied: ${JSON.stringify(failed)}`);
  return { names, topology, spec: (durable) => topology.consumers.find((c) => c.durableName === durable)! };
}

/** An orders.cancelled event (read by payment-orders, filter orders.cancelled, and inventory-orders, orders.>). */
export function orderCancelled(names: Names, orderId: string = randomUUID()) {
  return makeEvent(names, 'orders.cancelled', {
    version: 'v1',
    orderId,
    correlationId: `corr-${orderId.slice(0, 8)}`,
    reason: 'timeout',
    occurredAt: new Date().toISOString(),
  });
}

export async function publishEvent(nc: NatsConnection, e: OutgoingEvent): Promise<number> {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(e.headers)) h.set(k, v);
  return (await jetstream(nc).publish(e.subject, e.payload, { headers: h })).seq;
}

export async function consumerInfo(nc: NatsConnection, spec: ConsumerSpec): Promise<ConsumerInfo> {
  return (await jetstreamManager(nc)).consumers.info(spec.streamName, spec.durableName);
}

/** Dead letters of one durable currently in the namespace's DLQ stream. */
export async function deadLettersOf(nc: NatsConnection, names: Names, durable: string) {
  return (await readStream(nc, names.stream('DLQ'))).filter((m) => m.headers['Dlq-Consumer'] === durable);
}

/** A gate a handler waits on until the test opens it. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}
