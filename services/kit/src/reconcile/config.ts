/**
 * Spec (custom-resource shape, Go durations, NACK's names) → JetStream API config (nanoseconds,
 * snake_case). Every managed field gets an explicit value, defaults included, so that removing a
 * field from a spec puts the server's default back instead of leaving the old value in place;
 * "unset" is sent as undefined where the server fills a default of its own (a client update
 * merges the request over the old config, and undefined drops the key from the JSON). Fields the
 * connected server does not know are left out altogether.
 */
import type { ConsumerConfig, DeliverPolicy, StreamConfig, StreamSource } from '@nats-io/jetstream';
import { durationNanos } from './duration.js';
import { NEWEST, supported, type FieldRule } from './field-rule.js';
import { STREAM_FIELDS, defaultDuplicateWindow } from './stream-fields.js';
import { CONSUMER_FIELDS, DEFAULT_ACK_WAIT } from './consumer-fields.js';
import type { Version } from './server-version.js';
import type { ConsumerSpec, DeliverPolicySpec, StreamSourceSpec, StreamSpec } from './spec.js';

/** The stream config the reconciler sends: `name` plus every field of STREAM_FIELDS the server knows. */
export type DesiredStreamConfig = Partial<StreamConfig> & Pick<StreamConfig, 'name'>;

/** The consumer config the reconciler sends. Consumers are always durable. */
export type DesiredConsumerConfig = Partial<ConsumerConfig> &
  Pick<ConsumerConfig, 'durable_name' | 'ack_policy' | 'deliver_policy' | 'replay_policy'>;

const ns = (d: string | undefined): number | undefined => (d === undefined ? undefined : durationNanos(d));

const DELIVER_POLICY: Record<DeliverPolicySpec, DeliverPolicy> = {
  all: 'all',
  last: 'last',
  new: 'new',
  byStartSequence: 'by_start_sequence',
  byStartTime: 'by_start_time',
  lastPerSubject: 'last_per_subject',
  by_start_sequence: 'by_start_sequence',
  by_start_time: 'by_start_time',
  last_per_subject: 'last_per_subject',
};

export const deliverPolicyOf = (spec: Pick<ConsumerSpec, 'deliverPolicy'>): DeliverPolicy => DELIVER_POLICY[spec.deliverPolicy ?? 'all'];

/** Drops the keys of fields newer than the server (they are refused before this if the spec sets them). */
function forServer<C extends object>(config: C, rules: readonly FieldRule<never, never>[], server: Version): C {
  const out = { ...config } as Record<string, unknown>;
  for (const r of rules) if (!supported(r, server)) delete out[r.field];
  return out as C;
}

export function toSource(s: StreamSourceSpec): StreamSource {
  const external = s.externalApiPrefix
    ? { api: s.externalApiPrefix, ...(s.externalDeliverPrefix ? { deliver: s.externalDeliverPrefix } : {}) }
    : undefined;
  return {
    name: s.name,
    ...(s.optStartSeq ? { opt_start_seq: s.optStartSeq } : {}),
    ...(s.optStartTime ? { opt_start_time: s.optStartTime } : {}),
    ...(s.filterSubject ? { filter_subject: s.filterSubject } : {}),
    ...(external ? { external } : {}),
    ...(s.subjectTransforms?.length ? { subject_transforms: s.subjectTransforms.map((t) => ({ src: t.source, dest: t.dest })) } : {}),
  };
}

export function toStreamConfig(spec: StreamSpec, server: Version = NEWEST): DesiredStreamConfig {
  const maxAge = ns(spec.maxAge) ?? 0;
  const limits = spec.consumerLimits;
  const subjects = spec.subjects ?? [];
  const config: DesiredStreamConfig = {
    name: spec.name,
    description: spec.description,
    // A mirror takes no subjects; a stream with sources may have none.
    subjects: subjects.length > 0 ? [...subjects] : undefined,
    storage: spec.storage ?? 'file',
    retention: spec.retention ?? 'limits',
    num_replicas: spec.replicas ?? 1,
    max_consumers: spec.maxConsumers ?? -1,
    max_msgs: spec.maxMsgs ?? -1,
    max_bytes: spec.maxBytes ?? -1,
    max_age: maxAge,
    max_msgs_per_subject: spec.maxMsgsPerSubject ?? -1,
    max_msg_size: spec.maxMsgSize ?? -1,
    discard: spec.discard ?? 'old',
    discard_new_per_subject: spec.discardPerSubject ?? false,
    no_ack: spec.noAck ?? false,
    // The server caps the default duplicate window at max_age; do the same so the comparison holds.
    duplicate_window: ns(spec.duplicateWindow) || defaultDuplicateWindow(maxAge),
    placement:
      spec.placement?.cluster || spec.placement?.tags?.length
        ? { cluster: spec.placement.cluster ?? '', tags: spec.placement.tags ?? [] }
        : undefined,
    mirror: spec.mirror ? toSource(spec.mirror) : undefined,
    sources: spec.sources?.length ? spec.sources.map(toSource) : undefined,
    sealed: spec.sealed ?? false,
    deny_delete: spec.denyDelete ?? false,
    deny_purge: spec.denyPurge ?? false,
    allow_rollup_hdrs: spec.allowRollup ?? false,
    allow_direct: spec.allowDirect ?? false,
    mirror_direct: spec.mirrorDirect ?? false,
    republish: spec.republish
      ? { src: spec.republish.source, dest: spec.republish.destination, ...(spec.republish.headersOnly ? { headers_only: true } : {}) }
      : undefined,
    subject_transform: spec.subjectTransform ? { src: spec.subjectTransform.source, dest: spec.subjectTransform.dest } : undefined,
    compression: spec.compression === 's2' ? 's2' : 'none',
    first_seq: spec.firstSequence || undefined,
    metadata: { ...(spec.metadata ?? {}) },
    consumer_limits: {
      ...(limits?.inactiveThreshold ? { inactive_threshold: ns(limits.inactiveThreshold) } : {}),
      ...(limits?.maxAckPending ? { max_ack_pending: limits.maxAckPending } : {}),
    },
    allow_msg_ttl: spec.allowMsgTtl ?? false,
    subject_delete_marker_ttl: ns(spec.subjectDeleteMarkerTtl) || undefined,
    allow_atomic: spec.allowAtomicPublish ?? false,
    allow_msg_counter: spec.allowMsgCounter ?? false,
    allow_msg_schedules: spec.allowMsgSchedules ?? false,
    persist_mode: spec.persistMode === 'async' ? 'async' : undefined,
  };
  return forServer(config, STREAM_FIELDS as readonly FieldRule<never, never>[], server);
}

export function toConsumerConfig(spec: ConsumerSpec, server: Version = NEWEST): DesiredConsumerConfig {
  const ackPolicy = spec.ackPolicy ?? 'explicit';
  const isPush = !!spec.deliverSubject;
  // One filter goes as filter_subject (every server knows it); several as filter_subjects (2.10+).
  const filters = [...(spec.filterSubject ? [spec.filterSubject] : []), ...(spec.filterSubjects ?? [])];
  const priority = spec.priorityPolicy && spec.priorityPolicy !== 'none' ? spec.priorityPolicy : undefined;
  const config: DesiredConsumerConfig = {
    durable_name: spec.durableName,
    description: spec.description,
    ack_policy: ackPolicy,
    deliver_policy: deliverPolicyOf(spec),
    opt_start_seq: spec.optStartSeq,
    opt_start_time: spec.optStartTime,
    replay_policy: spec.replayPolicy ?? 'instant',
    deliver_subject: spec.deliverSubject || undefined,
    deliver_group: spec.deliverGroup || undefined,
    filter_subject: filters.length === 1 ? filters[0] : undefined,
    filter_subjects: filters.length > 1 ? filters : undefined,
    // Without acks there is nothing to wait for: the server keeps no ack_wait unless one is given.
    ack_wait: ns(spec.ackWait) ?? (ackPolicy === 'none' ? undefined : DEFAULT_ACK_WAIT),
    max_deliver: spec.maxDeliver ?? -1,
    backoff: (spec.backoff ?? []).map((d) => durationNanos(d)),
    // Unset: the server's default, which the stream's consumer_limits may lower.
    max_ack_pending: spec.maxAckPending || undefined,
    max_waiting: isPush ? undefined : spec.maxWaiting || undefined,
    rate_limit_bps: spec.rateLimitBps || undefined,
    sample_freq: spec.sampleFreq || undefined,
    headers_only: spec.headersOnly ?? false,
    max_batch: spec.maxRequestBatch || undefined,
    max_expires: ns(spec.maxRequestExpires) || undefined,
    max_bytes: spec.maxRequestMaxBytes || undefined,
    inactive_threshold: ns(spec.inactiveThreshold) || undefined,
    num_replicas: spec.replicas ?? 0,
    mem_storage: spec.memStorage ?? false,
    flow_control: spec.flowControl || undefined,
    idle_heartbeat: ns(spec.heartbeatInterval) || undefined,
    metadata: { ...(spec.metadata ?? {}) },
    pause_until: spec.pauseUntil || undefined,
    priority_policy: priority,
    priority_groups: priority ? [...(spec.priorityGroups ?? [])] : undefined,
    priority_timeout: priority ? ns(spec.pinnedTtl) || undefined : undefined,
  };
  return forServer(config, CONSUMER_FIELDS as readonly FieldRule<never, never>[], server);
}
