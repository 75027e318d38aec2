/**
 * The Stream and Consumer specs: the custom resources' `spec`, also what `orderflow streams apply`
 * reads and what the services' dev topology is written in. Field names follow NACK's `v1beta2`
 * CRDs (nats-io/nack) where the meaning is the same, so a NACK resource's spec carries over;
 * docs/operator.md has the side-by-side table. Durations are Go duration text ("30s", "1h30m",
 * "500ms"), times RFC 3339.
 */

/** Go duration text: "30s", "5m", "1h30m", "1.5s", "250ms". */
export type Duration = string;

/** A stream a mirror or a source reads from (NACK's shape: the external API flattened). */
export interface StreamSourceSpec {
  name: string;
  optStartSeq?: number;
  /** RFC 3339. */
  optStartTime?: string;
  filterSubject?: string;
  /** Another account's or domain's JetStream API prefix, e.g. `$JS.hub.API`. */
  externalApiPrefix?: string;
  externalDeliverPrefix?: string;
  /** nats-server 2.10+. */
  subjectTransforms?: SubjectTransformSpec[];
}

export interface SubjectTransformSpec {
  source: string;
  dest: string;
}

export type Retention = 'limits' | 'interest' | 'workqueue';

export interface StreamSpec {
  name: string;
  description?: string;
  /**
   * Required unless the stream is a mirror (which takes none) or has sources. Kept non-optional
   * in this type because every stream the platform defines has subjects; the reconciler reads a
   * missing list as [].
   */
  subjects: string[];
  retention?: Retention;
  maxConsumers?: number;
  maxMsgs?: number;
  maxBytes?: number;
  maxAge?: Duration;
  maxMsgsPerSubject?: number;
  maxMsgSize?: number;
  discard?: 'old' | 'new';
  /** Discard new per subject; needs discard `new` and maxMsgsPerSubject. */
  discardPerSubject?: boolean;
  storage?: 'file' | 'memory';
  replicas?: number;
  noAck?: boolean;
  duplicateWindow?: Duration;
  placement?: { cluster?: string; tags?: string[] };
  mirror?: StreamSourceSpec;
  sources?: StreamSourceSpec[];
  /** One way: a sealed stream cannot be unsealed. Set after creation (the server refuses a sealed create). */
  sealed?: boolean;
  /** One way. */
  denyDelete?: boolean;
  /** One way. */
  denyPurge?: boolean;
  allowRollup?: boolean;
  allowDirect?: boolean;
  mirrorDirect?: boolean;
  /** `headersOnly` is ours (NACK's republish has source and destination only). */
  republish?: { source: string; destination: string; headersOnly?: boolean };
  /** nats-server 2.10+. */
  subjectTransform?: SubjectTransformSpec;
  /** nats-server 2.10+; '' means none. */
  compression?: 's2' | 'none' | '';
  /** nats-server 2.10+; applies at creation only. */
  firstSequence?: number;
  /** nats-server 2.10+; keys starting with `_nats` are the server's. */
  metadata?: Record<string, string>;
  /** nats-server 2.10+: defaults (and upper bounds) for the stream's consumers. */
  consumerLimits?: { inactiveThreshold?: Duration; maxAckPending?: number };
  /** nats-server 2.11+; one way. */
  allowMsgTtl?: boolean;
  /** nats-server 2.11+; at least 1s. */
  subjectDeleteMarkerTtl?: Duration;
  /** nats-server 2.12+. */
  allowAtomicPublish?: boolean;
  /** nats-server 2.12+; fixed at creation. */
  allowMsgCounter?: boolean;
  /** nats-server 2.12+; one way. */
  allowMsgSchedules?: boolean;
  /** nats-server 2.12+; fixed at creation; '' means default. */
  persistMode?: 'default' | 'async' | '';
  /** Keep the JetStream stream when the resource is deleted. */
  preventDelete?: boolean;
}

/** NACK spells the policies in camelCase; the JetStream API's snake_case is accepted too. */
export type DeliverPolicySpec =
  | 'all'
  | 'last'
  | 'new'
  | 'byStartSequence'
  | 'byStartTime'
  | 'lastPerSubject'
  | 'by_start_sequence'
  | 'by_start_time'
  | 'last_per_subject';

export type PriorityPolicySpec = 'none' | 'overflow' | 'pinned_client' | 'prioritized';

export interface ConsumerSpec {
  streamName: string;
  durableName: string;
  description?: string;
  deliverPolicy?: DeliverPolicySpec;
  /** Only with deliverPolicy byStartSequence (which needs it). */
  optStartSeq?: number;
  /** RFC 3339; only with deliverPolicy byStartTime (which needs it). */
  optStartTime?: string;
  /** Set: a push consumer delivering there. Unset: a pull consumer (what the services use). */
  deliverSubject?: string;
  /** Push only: the queue group. */
  deliverGroup?: string;
  ackPolicy?: 'explicit' | 'all' | 'none';
  ackWait?: Duration;
  maxDeliver?: number;
  /** Redelivery delays after ack-wait expiry; no longer than maxDeliver. */
  backoff?: Duration[];
  filterSubject?: string;
  /** nats-server 2.10+; exclusive of filterSubject. */
  filterSubjects?: string[];
  replayPolicy?: 'instant' | 'original';
  /** "50" or "50%". */
  sampleFreq?: string;
  /** Pull only; fixed at creation. */
  maxWaiting?: number;
  /** Push only. */
  rateLimitBps?: number;
  maxAckPending?: number;
  /** Push only; needs heartbeatInterval; fixed at creation. */
  flowControl?: boolean;
  headersOnly?: boolean;
  /** Push only; fixed at creation. */
  heartbeatInterval?: Duration;
  /** Pull only. */
  maxRequestBatch?: number;
  /** Pull only. */
  maxRequestExpires?: Duration;
  /** Pull only. */
  maxRequestMaxBytes?: number;
  inactiveThreshold?: Duration;
  /** 0 inherits the stream's replicas. */
  replicas?: number;
  /** Fixed at creation. */
  memStorage?: boolean;
  /** nats-server 2.10+. */
  metadata?: Record<string, string>;
  /** nats-server 2.11+; RFC 3339. Past or unset: not paused. */
  pauseUntil?: string;
  /** nats-server 2.11+ (prioritized: 2.12+); pull only. */
  priorityPolicy?: PriorityPolicySpec;
  /** nats-server 2.11+: the groups pull requests name; needs a priorityPolicy other than none. */
  priorityGroups?: string[];
  /** nats-server 2.11+: how long a pinned client keeps the pin without pulling (pinned_client only). */
  pinnedTtl?: Duration;
  /** Ours: after maxDeliver failed deliveries the message is copied here with a reason. */
  deadLetter?: { subject: string };
  /** Keep the JetStream consumer when the resource is deleted. */
  preventDelete?: boolean;
}
