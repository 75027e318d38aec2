/**
 * The planner's tables for KeyValue and ObjectStore buckets. A bucket is a stream, so the rows
 * read stream config fields (normalised as in stream-fields.ts); `spec` names the bucket's own
 * field, or the layout the NATS clients give every bucket (subjects, discard new, rollups, direct
 * get), which is compared too so a bucket changed by hand is put back. Mutability is the
 * server's, as for streams: storage and mirror are fixed; limitMarkerTtl's allow_msg_ttl is one
 * way (turned on in place from 2.12).
 */
import type { StreamConfig } from '@nats-io/jetstream';
import { bool, num, showNanosOrUnlimited, str, type FieldRule } from './field-rule.js';
import { STREAM_FIELDS } from './stream-fields.js';

export type BucketFieldRule = FieldRule<Partial<StreamConfig>, void>;

const LAYOUT = '(bucket layout)';

/**
 * The stream table's row for `field` under the bucket's name for it: same value, version and
 * mutability, so a server fact learnt for streams holds for buckets without a second copy.
 */
function streamRow(field: keyof StreamConfig, spec: string): BucketFieldRule {
  const row = STREAM_FIELDS.find((r) => r.field === field);
  if (!row) throw new Error(`bucket-fields: the stream table has no row ${field}`);
  return { ...row, spec };
}

/** Rows every bucket has: what a KeyValue and an ObjectStore share. */
const common: readonly BucketFieldRule[] = [
  streamRow('description', 'description'),
  // A bucket is never sealed: no sealed-stream rewrite of max_age, discard or rollups.
  { field: 'max_age', spec: 'ttl', value: (c) => num(c.max_age), show: showNanosOrUnlimited },
  streamRow('max_bytes', 'maxBytes'),
  streamRow('storage', 'storage'),
  streamRow('num_replicas', 'replicas'),
  streamRow('placement', 'placement'),
  streamRow('compression', 'compression'),
  streamRow('metadata', 'metadata'),
  streamRow('subjects', `subjects ${LAYOUT}`),
  { field: 'discard', spec: `discard ${LAYOUT}`, value: (c) => c.discard ?? 'old' },
  { field: 'allow_rollup_hdrs', spec: `allow_rollup_hdrs ${LAYOUT}`, value: (c) => bool(c.allow_rollup_hdrs) },
  streamRow('allow_direct', `allow_direct ${LAYOUT}`),
  streamRow('duplicate_window', `duplicate_window ${LAYOUT}`),
];

export const KEYVALUE_FIELDS: readonly BucketFieldRule[] = [
  ...common,
  streamRow('max_msgs_per_subject', 'history'),
  streamRow('max_msg_size', 'maxValueSize'),
  {
    ...streamRow('republish', 'republish'),
    // An absent src compared as "" (the stream table compares it as given).
    value: (c) =>
      c.republish ? { src: str(c.republish.src), dest: c.republish.dest, headers_only: bool(c.republish.headers_only) } : null,
  },
  streamRow('mirror', 'mirror'),
  streamRow('mirror_direct', 'mirror'),
  streamRow('sources', 'sources'),
  streamRow('allow_msg_ttl', 'limitMarkerTtl'),
  streamRow('subject_delete_marker_ttl', 'limitMarkerTtl'),
];

export const OBJECTSTORE_FIELDS: readonly BucketFieldRule[] = common;
