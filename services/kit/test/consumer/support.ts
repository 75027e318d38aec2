/** Shared pieces of the consumer runtime's fault tests (their setup is the kit's startTestBed): events, facts from JetStream. */
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type ConsumerInfo } from '@nats-io/jetstream';
import { makeEvent, type ConsumerSpec, type Names } from '@orderflow/kit';
import { readStream } from '@orderflow/kit/testing';

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
