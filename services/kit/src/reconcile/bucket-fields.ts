/**
 * The planner's tables for KeyValue and ObjectStore buckets. A bucket is a stream, so the rows
 * read stream config fields (normalised as in stream-fields.ts); `spec` names the bucket's own
 * field, or the layout the NATS clients give every bucket (subjects, discard new, rollups, direct
 * get), which is compared too so a bucket changed by hand is put back. Mutability is the
 * server's, as for streams: storage and mirror are fixed; limitMarkerTtl's allow_msg_ttl is one
 * way (turned on in place from 2.12).
 */
import type { StreamConfig } from '@nats-io/jetstream';
import {
  bool,
  immutable,
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
import { defaultDuplicateWindow, source } from './stream-fields.js';

export type BucketFieldRule = FieldRule<Partial<StreamConfig>, void>;

const V2_9: Version = [2, 9, 0];
const V2_10: Version = [2, 10, 0];
const V2_11: Version = [2, 11, 0];
const V2_12: Version = [2, 12, 0];

const LAYOUT = '(bucket layout)';

/** Rows every bucket has: what a KeyValue and an ObjectStore share. */
const common: readonly BucketFieldRule[] = [
  { field: 'description', spec: 'description', value: (c) => str(c.description) },
  { field: 'max_age', spec: 'ttl', value: (c) => num(c.max_age), show: showNanosOrUnlimited },
  { field: 'max_bytes', spec: 'maxBytes', value: (c) => limit(c.max_bytes) },
  { field: 'storage', spec: 'storage', value: (c) => c.storage ?? 'file', change: immutable, createOnly: true },
  { field: 'num_replicas', spec: 'replicas', value: (c) => c.num_replicas || 1 },
  {
    field: 'placement',
    spec: 'placement',
    value: (c) =>
      c.placement?.cluster || c.placement?.tags?.length ? { cluster: str(c.placement.cluster), tags: c.placement.tags ?? [] } : null,
  },
  { field: 'compression', spec: 'compression', since: V2_10, value: (c) => c.compression || 'none' },
  { field: 'metadata', spec: 'metadata', since: V2_10, value: (c) => userMetadata(c.metadata) },
  { field: 'subjects', spec: `subjects ${LAYOUT}`, value: (c) => sorted(c.subjects) },
  { field: 'discard', spec: `discard ${LAYOUT}`, value: (c) => c.discard ?? 'old' },
  { field: 'allow_rollup_hdrs', spec: `allow_rollup_hdrs ${LAYOUT}`, value: (c) => bool(c.allow_rollup_hdrs) },
  { field: 'allow_direct', spec: `allow_direct ${LAYOUT}`, since: V2_9, value: (c) => bool(c.allow_direct) },
  {
    field: 'duplicate_window',
    spec: `duplicate_window ${LAYOUT}`,
    value: (c) => c.duplicate_window || defaultDuplicateWindow(c.max_age),
    show: showNanos,
  },
];

export const KEYVALUE_FIELDS: readonly BucketFieldRule[] = [
  ...common,
  { field: 'max_msgs_per_subject', spec: 'history', value: (c) => limit(c.max_msgs_per_subject) },
  { field: 'max_msg_size', spec: 'maxValueSize', value: (c) => limit(c.max_msg_size) },
  {
    field: 'republish',
    spec: 'republish',
    since: V2_9,
    value: (c) =>
      c.republish ? { src: str(c.republish.src), dest: c.republish.dest, headers_only: bool(c.republish.headers_only) } : null,
    change: (_a, _d, server) => needs(server, V2_10, 'changing it'),
  },
  { field: 'mirror', spec: 'mirror', value: (c) => source(c.mirror), change: immutable, createOnly: true },
  { field: 'mirror_direct', spec: 'mirror', since: V2_9, value: (c) => bool(c.mirror_direct), change: immutable, createOnly: true },
  {
    field: 'sources',
    spec: 'sources',
    value: (c) => (c.sources ?? []).map(source).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))),
  },
  {
    field: 'allow_msg_ttl',
    spec: 'limitMarkerTtl',
    since: V2_11,
    value: (c) => bool(c.allow_msg_ttl),
    change: (a, d, server) => needs(server, V2_12, 'turning it on') ?? oneWay(true, 'allowing message TTLs')(a, d, server),
  },
  {
    field: 'subject_delete_marker_ttl',
    spec: 'limitMarkerTtl',
    since: V2_11,
    value: (c) => num(c.subject_delete_marker_ttl),
    show: showNanos,
  },
];

export const OBJECTSTORE_FIELDS: readonly BucketFieldRule[] = common;
