/**
 * The platform's JetStream topology, in the shape of the operator's custom resources
 * (`Stream.spec` / `Consumer.spec`). One definition serves three readers: services ensure it at
 * start-up in dev, the `orderflow streams apply` CLI, and the operator's example resources.
 *
 * A namespace prefixes every subject and stream name so that test runs sharing one NATS server
 * never see each other's traffic (subjects of two streams may not overlap).
 */

// The spec types live with the reconcile core that reads them (every JetStream field, NACK's names).
import type { ConsumerSpec, Duration, StreamSpec } from './reconcile/spec.js';
export type {
  ConsumerSpec,
  DeliverPolicySpec,
  Duration,
  PriorityPolicySpec,
  Retention,
  StreamSourceSpec,
  StreamSpec,
  SubjectTransformSpec,
} from './reconcile/spec.js';

export interface Topology {
  namespace: string;
  streams: StreamSpec[];
  consumers: ConsumerSpec[];
}

export type ServiceName = 'order-service' | 'inventory-service' | 'payment-service';

/** Names derived from a namespace; '' is production naming (`orders.created`, `ORDERS`). */
export class Names {
  constructor(readonly namespace = '') {
    if (namespace && !/^[a-z][a-z0-9_]*$/.test(namespace)) {
      throw new Error(`namespace "${namespace}" must match ^[a-z][a-z0-9_]*$`);
    }
  }
  subject(eventType: string): string {
    return this.namespace ? `${this.namespace}.${eventType}` : eventType;
  }
  /** Inverse of subject(): the event type a subject carries. */
  eventType(subject: string): string {
    const p = this.namespace ? `${this.namespace}.` : '';
    return p && subject.startsWith(p) ? subject.slice(p.length) : subject;
  }
  stream(base: string): string {
    return this.namespace ? `${this.namespace.toUpperCase()}_${base}` : base;
  }
  dlqSubject(stream: string, durable: string): string {
    return this.subject(`dlq.${stream}.${durable}`);
  }
}

const DEFAULT_BACKOFF = ['1s', '5s', '15s', '30s'];

export interface ConsumerDef {
  service: ServiceName;
  stream: 'ORDERS' | 'INVENTORY' | 'PAYMENTS';
  durable: string;
  filter: string;
}

/** Which service consumes what. nats-server 2.9 allows one filter subject per consumer. */
export const CONSUMERS: readonly ConsumerDef[] = [
  { service: 'inventory-service', stream: 'ORDERS', durable: 'inventory-orders', filter: 'orders.>' },
  { service: 'inventory-service', stream: 'PAYMENTS', durable: 'inventory-payments', filter: 'payments.failed' },
  { service: 'payment-service', stream: 'INVENTORY', durable: 'payment-inventory', filter: 'inventory.reserved' },
  { service: 'payment-service', stream: 'ORDERS', durable: 'payment-orders', filter: 'orders.cancelled' },
  { service: 'order-service', stream: 'INVENTORY', durable: 'order-inventory', filter: 'inventory.>' },
  { service: 'order-service', stream: 'PAYMENTS', durable: 'order-payments', filter: 'payments.>' },
];

export interface TopologyOptions {
  namespace?: string;
  replicas?: number;
  storage?: 'file' | 'memory';
  maxDeliver?: number;
  ackWait?: Duration;
  backoff?: Duration[];
  /** The consumers to build specs for; all of the platform's (CONSUMERS) by default. */
  consumers?: readonly ConsumerDef[];
}

export function platformTopology(opts: TopologyOptions = {}): Topology {
  const names = new Names(opts.namespace ?? '');
  const replicas = opts.replicas ?? 1;
  const storage = opts.storage ?? 'file';
  const stream = (base: string, subject: string, maxAge = '168h'): StreamSpec => ({
    name: names.stream(base),
    subjects: [names.subject(subject)],
    storage,
    replicas,
    retention: 'limits',
    maxAge,
    duplicateWindow: '2m',
    discard: 'old',
  });
  const maxDeliver = opts.maxDeliver ?? 5;
  const backoff = (opts.backoff ?? DEFAULT_BACKOFF).slice(0, maxDeliver);
  return {
    namespace: names.namespace,
    streams: [
      stream('ORDERS', 'orders.>'),
      stream('INVENTORY', 'inventory.>'),
      stream('PAYMENTS', 'payments.>'),
      // Dead letters are kept longer: someone has to look at them.
      stream('DLQ', 'dlq.>', '720h'),
    ],
    consumers: (opts.consumers ?? CONSUMERS).map((c) => {
      const streamName = names.stream(c.stream);
      return {
        streamName,
        durableName: c.durable,
        filterSubject: names.subject(c.filter),
        ackPolicy: 'explicit',
        ackWait: opts.ackWait ?? '30s',
        maxDeliver,
        backoff,
        maxAckPending: 1000,
        deadLetter: { subject: names.dlqSubject(streamName, c.durable) },
      } satisfies ConsumerSpec;
    }),
  };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s" → 30000. Throws with the offending text on anything else. */
export function parseDuration(d: Duration): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d.trim());
  if (!m) throw new Error(`invalid duration "${d}": expected <int><ms|s|m|h>, e.g. 30s`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}
