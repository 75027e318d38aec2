/**
 * The platform's JetStream topology, in the shape of the operator's custom resources
 * (`Stream.spec` / `Consumer.spec`). The streams are the kit's (one per event family, and the dead
 * letters); the consumers are what the service definitions declare, so the topology of a set of
 * services is derived from their definitions (`topologyOf`). The kit does not know the services:
 * whoever needs the whole platform's topology (the console, tests, the manifests' checks) passes the
 * three definitions.
 *
 * A namespace prefixes every subject and stream name so that test runs sharing one NATS server
 * never see each other's traffic (subjects of two streams may not overlap).
 */

// The spec types live with the reconcile core that reads them (every JetStream field, NACK's names).
import type { ConsumerDeclarations, ServiceDefinition } from './definition.js';
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

export interface TopologyOptions {
  namespace?: string;
  replicas?: number;
  storage?: 'file' | 'memory';
  maxDeliver?: number;
  ackWait?: Duration;
  backoff?: Duration[];
}

/** The platform's streams: one per event family, and the dead letters. */
export function platformStreams(opts: TopologyOptions = {}): StreamSpec[] {
  const names = new Names(opts.namespace ?? '');
  const stream = (base: string, subject: string, maxAge = '168h'): StreamSpec => ({
    name: names.stream(base),
    subjects: [names.subject(subject)],
    storage: opts.storage ?? 'file',
    replicas: opts.replicas ?? 1,
    retention: 'limits',
    maxAge,
    duplicateWindow: '2m',
    discard: 'old',
  });
  return [
    stream('ORDERS', 'orders.>'),
    stream('INVENTORY', 'inventory.>'),
    stream('PAYMENTS', 'payments.>'),
    // Dead letters are kept longer: someone has to look at them.
    stream('DLQ', 'dlq.>', '720h'),
  ];
}

/**
 * The consumer specs of declared consumers (durable name → stream and subject), with the platform's
 * consumer settings (ack wait, max deliver, backoff, dead-letter subject).
 */
export function consumerSpecs(declared: ConsumerDeclarations, opts: TopologyOptions = {}): ConsumerSpec[] {
  const names = new Names(opts.namespace ?? '');
  const maxDeliver = opts.maxDeliver ?? 5;
  const backoff = (opts.backoff ?? DEFAULT_BACKOFF).slice(0, maxDeliver);
  return Object.entries(declared).map(([durable, d]) => {
    const streamName = names.stream(d.stream);
    return {
      streamName,
      durableName: durable,
      filterSubject: names.subject(d.subject),
      ackPolicy: 'explicit',
      ackWait: opts.ackWait ?? '30s',
      maxDeliver,
      backoff,
      maxAckPending: 1000,
      deadLetter: { subject: names.dlqSubject(streamName, durable) },
    } satisfies ConsumerSpec;
  });
}

/**
 * The topology of a set of services: the platform's streams and every consumer the definitions
 * declare. `topologyOf([orderService(), inventoryService(), paymentService()])` is the platform's.
 */
export function topologyOf(definitions: ReadonlyArray<Pick<ServiceDefinition, 'consumers'>>, opts: TopologyOptions = {}): Topology {
  return {
    namespace: new Names(opts.namespace ?? '').namespace,
    streams: platformStreams(opts),
    consumers: definitions.flatMap((d) => consumerSpecs(d.consumers ?? {}, opts)),
  };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s" → 30000. Throws with the offending text on anything else. */
export function parseDuration(d: Duration): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d.trim());
  if (!m) throw new Error(`invalid duration "${d}": expected <int><ms|s|m|h>, e.g. 30s`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}
