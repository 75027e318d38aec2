/**
 * The stream planner's table: every stream config field the reconciler owns, in the form the
 * server normalises it to, with the server version that knows it and whether it may change in
 * place. Mutability follows the server's update checks (nats-server's configUpdateCheck at each
 * release tag, and tried on 2.15.2 and 2.9.10, the two servers the suite runs): storage, mirror,
 * first_seq, allow_msg_counter, persist_mode and mirror_direct are fixed; retention may move
 * between limits and interest, and republish change, since 2.10; max_consumers since 2.14;
 * sealed, deny_delete, deny_purge and allow_msg_schedules are one way, and so is allow_msg_ttl
 * from 2.12 (fixed on 2.11).
 */
import type { StreamConfig, StreamSource } from '@nats-io/jetstream';
import {
  bool,
  immutable,
  instant,
  limit,
  needs,
  num,
  oneWay,
  showNanos,
  showNanosOrUnlimited,
  sorted,
  str,
  userMetadata,
  type FieldRule,
} from './field-rule.js';
import type { Version } from './server-version.js';

export type StreamFieldRule = FieldRule<Partial<StreamConfig>, void>;

const V2_9: Version = [2, 9, 0];
const V2_10: Version = [2, 10, 0];
const V2_11: Version = [2, 11, 0];
const V2_12: Version = [2, 12, 0];
const V2_14: Version = [2, 14, 0];

/** The server's default duplicate window: 2m, capped at max_age. */
export const DEFAULT_DUPLICATE_WINDOW = 120e9;
export function defaultDuplicateWindow(maxAge: number | undefined): number {
  return maxAge && maxAge > 0 && maxAge < DEFAULT_DUPLICATE_WINDOW ? maxAge : DEFAULT_DUPLICATE_WINDOW;
}

/** A mirror or source in its normalised form (also the KeyValue table's). */
export function source(s: StreamSource | undefined): unknown {
  if (!s) return null;
  return {
    name: s.name,
    opt_start_seq: num(s.opt_start_seq),
    opt_start_time: instant(s.opt_start_time),
    filter_subject: str(s.filter_subject),
    api: str(s.external?.api),
    deliver: str(s.external?.deliver),
    subject_transforms: (s.subject_transforms ?? []).map((t) => ({ src: t.src, dest: t.dest })),
  };
}

// Sealing makes the server rewrite these (seen on 2.9.10 and 2.15.2): compare against that.
const sealed = (c: Partial<StreamConfig>): boolean => c.sealed === true;

const retentionChange = (a: unknown, d: unknown, server: Version): string | undefined => {
  if (a === 'workqueue' || d === 'workqueue') return 'no nats-server changes retention to or from workqueue';
  return needs(server, V2_10, 'limits ↔ interest');
};

export const STREAM_FIELDS: readonly StreamFieldRule[] = [
  { field: 'description', spec: 'description', value: (c) => str(c.description) },
  { field: 'subjects', spec: 'subjects', value: (c) => sorted(c.subjects) },
  { field: 'storage', spec: 'storage', value: (c) => c.storage ?? 'file', change: immutable, createOnly: true },
  { field: 'retention', spec: 'retention', value: (c) => c.retention ?? 'limits', change: retentionChange },
  { field: 'num_replicas', spec: 'replicas', value: (c) => c.num_replicas || 1 },
  {
    field: 'max_consumers',
    spec: 'maxConsumers',
    value: (c) => limit(c.max_consumers),
    change: (_a, _d, server) => needs(server, V2_14, 'changing it'),
  },
  { field: 'max_msgs', spec: 'maxMsgs', value: (c) => limit(c.max_msgs) },
  { field: 'max_bytes', spec: 'maxBytes', value: (c) => limit(c.max_bytes) },
  { field: 'max_age', spec: 'maxAge', value: (c) => (sealed(c) ? 0 : num(c.max_age)), show: showNanosOrUnlimited },
  { field: 'max_msgs_per_subject', spec: 'maxMsgsPerSubject', value: (c) => limit(c.max_msgs_per_subject) },
  { field: 'max_msg_size', spec: 'maxMsgSize', value: (c) => limit(c.max_msg_size) },
  { field: 'discard', spec: 'discard', value: (c) => (sealed(c) ? 'new' : (c.discard ?? 'old')) },
  { field: 'discard_new_per_subject', spec: 'discardPerSubject', since: V2_9, value: (c) => bool(c.discard_new_per_subject) },
  { field: 'no_ack', spec: 'noAck', value: (c) => bool(c.no_ack) },
  {
    field: 'duplicate_window',
    spec: 'duplicateWindow',
    value: (c) => c.duplicate_window || defaultDuplicateWindow(c.max_age),
    show: showNanos,
  },
  {
    field: 'placement',
    spec: 'placement',
    value: (c) =>
      c.placement?.cluster || c.placement?.tags?.length ? { cluster: str(c.placement.cluster), tags: c.placement.tags ?? [] } : null,
  },
  { field: 'mirror', spec: 'mirror', value: (c) => source(c.mirror), change: immutable, createOnly: true },
  // Order does not matter to the server; sorted so a reordered list is no change.
  {
    field: 'sources',
    spec: 'sources',
    value: (c) => (c.sources ?? []).map(source).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))),
  },
  { field: 'sealed', spec: 'sealed', value: (c) => bool(c.sealed), change: oneWay(true, 'sealing') },
  { field: 'deny_delete', spec: 'denyDelete', value: (c) => sealed(c) || bool(c.deny_delete), change: oneWay(true, 'deny_delete') },
  { field: 'deny_purge', spec: 'denyPurge', value: (c) => sealed(c) || bool(c.deny_purge), change: oneWay(true, 'deny_purge') },
  // Delete markers and schedules are rollups: the server turns rollups on for them (2.15.2).
  {
    field: 'allow_rollup_hdrs',
    spec: 'allowRollup',
    value: (c) => !sealed(c) && (bool(c.allow_rollup_hdrs) || num(c.subject_delete_marker_ttl) > 0 || bool(c.allow_msg_schedules)),
  },
  { field: 'allow_direct', spec: 'allowDirect', since: V2_9, value: (c) => bool(c.allow_direct) },
  // 2.15.2 answers an update of mirror_direct with success and keeps the old value.
  { field: 'mirror_direct', spec: 'mirrorDirect', since: V2_9, value: (c) => bool(c.mirror_direct), change: immutable, createOnly: true },
  {
    field: 'republish',
    spec: 'republish',
    since: V2_9,
    value: (c) => (c.republish ? { src: c.republish.src, dest: c.republish.dest, headers_only: bool(c.republish.headers_only) } : null),
    change: (_a, _d, server) => needs(server, V2_10, 'changing it'),
  },
  {
    field: 'subject_transform',
    spec: 'subjectTransform',
    since: V2_10,
    value: (c) => (c.subject_transform?.dest ? { src: str(c.subject_transform.src), dest: c.subject_transform.dest } : null),
  },
  { field: 'compression', spec: 'compression', since: V2_10, value: (c) => c.compression || 'none' },
  // Accepted by an update but meaningless after creation: a change would only rewrite the config.
  {
    field: 'first_seq',
    spec: 'firstSequence',
    since: V2_10,
    value: (c) => (num(c.first_seq) <= 1 ? 0 : c.first_seq),
    change: immutable,
    createOnly: true,
  },
  { field: 'metadata', spec: 'metadata', since: V2_10, value: (c) => userMetadata(c.metadata) },
  {
    field: 'consumer_limits',
    spec: 'consumerLimits',
    since: V2_10,
    value: (c) => ({
      inactive_threshold: num(c.consumer_limits?.inactive_threshold),
      max_ack_pending: num(c.consumer_limits?.max_ack_pending),
    }),
  },
  {
    field: 'allow_msg_ttl',
    spec: 'allowMsgTtl',
    since: V2_11,
    value: (c) => bool(c.allow_msg_ttl),
    change: (a, d, server) => needs(server, V2_12, 'turning it on') ?? oneWay(true, 'allowing message TTLs')(a, d, server),
  },
  {
    field: 'subject_delete_marker_ttl',
    spec: 'subjectDeleteMarkerTtl',
    since: V2_11,
    value: (c) => num(c.subject_delete_marker_ttl),
    show: showNanos,
  },
  { field: 'allow_atomic', spec: 'allowAtomicPublish', since: V2_12, value: (c) => bool(c.allow_atomic) },
  {
    field: 'allow_msg_counter',
    spec: 'allowMsgCounter',
    since: V2_12,
    value: (c) => bool(c.allow_msg_counter),
    change: immutable,
    createOnly: true,
  },
  {
    field: 'allow_msg_schedules',
    spec: 'allowMsgSchedules',
    since: V2_12,
    value: (c) => bool(c.allow_msg_schedules),
    change: oneWay(true, 'allowing message schedules'),
  },
  {
    field: 'persist_mode',
    spec: 'persistMode',
    since: V2_12,
    value: (c) => c.persist_mode || 'default',
    change: immutable,
    createOnly: true,
  },
];
