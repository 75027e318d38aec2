/**
 * KeyValue / ObjectStore spec → the stream config of the bucket, as `new Kvm(nc).create()` and
 * `new Objm(nc).create()` of @nats-io/kv and @nats-io/obj 3.x lay it out (name `KV_<bucket>` /
 * `OBJ_<bucket>`, subjects `$KV.<bucket>.>` / `$O.<bucket>.C.>` + `$O.<bucket>.M.>`, limits
 * retention, discard new, rollups and direct get on, history as max_msgs_per_subject), so a bucket
 * the operator makes opens with `Kvm.open` / `Objm.open` and one those clients made plans as in
 * sync. Every managed field gets an explicit value, defaults included (removing a field puts the
 * default back); fields newer than the connected server are left out. Also the specs' validation.
 */
import type { StreamConfig, StreamSource } from '@nats-io/jetstream';
import type { KeyValueSpec, ObjectStoreSpec } from './bucket-spec.js';
import { KEYVALUE_FIELDS, OBJECTSTORE_FIELDS, type BucketFieldRule } from './bucket-fields.js';
import { toSource, type DesiredStreamConfig } from './config.js';
import { durationNanos } from './duration.js';
import { NEWEST, supported } from './field-rule.js';
import { check, nanosOrZero, type Feature } from './server-support.js';
import type { Version } from './server-version.js';
import { defaultDuplicateWindow } from './stream-fields.js';
import { Checker, isValidDestination, type SpecError } from './validate.js';
import type { StreamSourceSpec } from './spec.js';

export const KV_STREAM_PREFIX = 'KV_';
export const OBJ_STREAM_PREFIX = 'OBJ_';
export const keyValueStreamName = (bucket: string): string => `${KV_STREAM_PREFIX}${bucket}`;
export const objectStoreStreamName = (bucket: string): string => `${OBJ_STREAM_PREFIX}${bucket}`;

/** The most values a key keeps (the NATS clients' limit). */
export const MAX_HISTORY = 64;

const V2_10: Version = [2, 10, 0];
const V2_11: Version = [2, 11, 0];

/** NACK spells limitMarkerTtl as integer nanoseconds; ours is Go duration text. Both are read. */
export function markerTtlNanos(v: string | number | undefined): number {
  if (v === undefined) return 0;
  return typeof v === 'number' ? v : durationNanos(v);
}

function markerTtlOrZero(v: string | number | undefined): number {
  return typeof v === 'number' ? v : nanosOrZero(v);
}

const nonEmpty = (o: object | undefined): boolean => o !== undefined && Object.keys(o).length > 0;

export const KEYVALUE_FEATURES: readonly Feature<KeyValueSpec>[] = [
  { path: 'spec.compression', since: V2_10, used: (s) => s.compression === true },
  { path: 'spec.metadata', since: V2_10, used: (s) => nonEmpty(s.metadata) },
  // A source's keys are moved into this bucket's subjects by a subject transform (2.10).
  { path: 'spec.sources', since: V2_10, used: (s) => (s.sources?.length ?? 0) > 0 },
  { path: 'spec.limitMarkerTtl', since: V2_11, used: (s) => markerTtlOrZero(s.limitMarkerTtl) > 0 },
];

export const OBJECTSTORE_FEATURES: readonly Feature<ObjectStoreSpec>[] = [
  { path: 'spec.compression', since: V2_10, used: (s) => s.compression === true },
  { path: 'spec.metadata', since: V2_10, used: (s) => nonEmpty(s.metadata) },
];

/** Drops the keys of fields newer than the server (they are refused before this if the spec sets them). */
function forServer(config: DesiredStreamConfig, rules: readonly BucketFieldRule[], server: Version): DesiredStreamConfig {
  const out = { ...config } as Record<string, unknown>;
  for (const r of rules) if (!supported(r, server)) delete out[r.field];
  return out as DesiredStreamConfig;
}

const placementOf = (p: KeyValueSpec['placement']): StreamConfig['placement'] | undefined =>
  p?.cluster || p?.tags?.length ? { cluster: p.cluster ?? '', tags: p.tags ?? [] } : undefined;

/** What both kinds share: limits, storage, placement, and the layout every bucket has. */
function bucketBase(name: string, spec: KeyValueSpec | ObjectStoreSpec): DesiredStreamConfig {
  const maxAge = spec.ttl ? durationNanos(spec.ttl) : 0;
  return {
    name,
    description: spec.description,
    retention: 'limits',
    max_age: maxAge,
    max_bytes: spec.maxBytes ?? -1,
    storage: spec.storage ?? 'file',
    num_replicas: spec.replicas ?? 1,
    placement: placementOf(spec.placement),
    compression: spec.compression ? 's2' : 'none',
    metadata: { ...(spec.metadata ?? {}) },
    discard: 'new',
    allow_rollup_hdrs: true,
    allow_direct: true,
    // What the server fills in at creation; sent on update too, so a shorter ttl never meets an old window.
    duplicate_window: defaultDuplicateWindow(maxAge),
  };
}

/** A mirror's or source's stream: `KV_` added to a bare bucket name, as the client does. */
function kvSource(s: StreamSourceSpec): StreamSource {
  return toSource({ ...s, name: s.name.startsWith(KV_STREAM_PREFIX) ? s.name : keyValueStreamName(s.name) });
}

export function toKeyValueStreamConfig(spec: KeyValueSpec, server: Version = NEWEST): DesiredStreamConfig {
  const bucket = spec.bucket;
  const markerTtl = markerTtlNanos(spec.limitMarkerTtl);
  const config: DesiredStreamConfig = {
    ...bucketBase(keyValueStreamName(bucket), spec),
    // A mirror has its origin's subjects.
    subjects: spec.mirror ? undefined : [`$KV.${bucket}.>`],
    max_msgs_per_subject: spec.history ?? 1,
    max_msg_size: spec.maxValueSize ?? -1,
    republish: spec.republish
      ? {
          src: spec.republish.source || `$KV.${bucket}.>`,
          dest: spec.republish.destination,
          ...(spec.republish.headersOnly ? { headers_only: true } : {}),
        }
      : undefined,
    mirror: spec.mirror ? kvSource(spec.mirror) : undefined,
    mirror_direct: spec.mirror !== undefined,
    // Another bucket's keys are renamed into this one's subjects, unless transforms are given (or it is external).
    sources: spec.sources?.length
      ? spec.sources.map((s) => {
          const src = kvSource(s);
          const from = src.name.slice(KV_STREAM_PREFIX.length);
          if (s.subjectTransforms?.length || s.externalApiPrefix || from === bucket) return src;
          return { ...src, subject_transforms: [{ src: `$KV.${from}.>`, dest: `$KV.${bucket}.>` }] };
        })
      : undefined,
    allow_msg_ttl: markerTtl > 0,
    subject_delete_marker_ttl: markerTtl || undefined,
  };
  return forServer(config, KEYVALUE_FIELDS, server);
}

export function toObjectStoreStreamConfig(spec: ObjectStoreSpec, server: Version = NEWEST): DesiredStreamConfig {
  const bucket = spec.bucket;
  const config: DesiredStreamConfig = {
    ...bucketBase(objectStoreStreamName(bucket), spec),
    subjects: [`$O.${bucket}.C.>`, `$O.${bucket}.M.>`],
  };
  return forServer(config, OBJECTSTORE_FIELDS, server);
}

const MAX_INT32 = 2 ** 31 - 1;

function checkCommon(c: Checker, spec: KeyValueSpec | ObjectStoreSpec): void {
  // The bucket is a subject token and a stream name suffix.
  c.name('spec.bucket', spec.bucket);
  c.oneOf('spec.storage', spec.storage, ['file', 'memory']);
  c.int('spec.replicas', spec.replicas, 1, 5);
  c.int('spec.maxBytes', spec.maxBytes, -1);
  c.duration('spec.ttl', spec.ttl);
  c.metadata('spec.metadata', spec.metadata);
  (spec.placement?.tags ?? []).forEach((t, i) => {
    if (typeof t !== 'string' || t === '') c.add(`spec.placement.tags[${i}]`, 'must be a non-empty string');
  });
}

export function validateKeyValueSpec(spec: KeyValueSpec, server?: Version): SpecError[] {
  const c = new Checker();
  checkCommon(c, spec);
  c.int('spec.history', spec.history, 1, MAX_HISTORY);
  c.int('spec.maxValueSize', spec.maxValueSize, -1, MAX_INT32);
  if (typeof spec.limitMarkerTtl === 'number') c.int('spec.limitMarkerTtl', spec.limitMarkerTtl, 0);
  else c.duration('spec.limitMarkerTtl', spec.limitMarkerTtl);
  const marker = markerTtlOrZero(spec.limitMarkerTtl);
  if (marker > 0 && marker < 1e9) c.add('spec.limitMarkerTtl', 'must be at least 1s (the server refuses less)');
  if (spec.mirror) {
    c.source('spec.mirror', spec.mirror);
    if (spec.sources?.length) c.add('spec.sources', 'a mirror has no sources');
    if (spec.republish) c.add('spec.republish', 'a mirror does not republish (its origin does)');
  }
  (spec.sources ?? []).forEach((s, i) => c.source(`spec.sources[${i}]`, s));
  if (spec.republish) {
    if (spec.republish.source) c.subject('spec.republish.source', spec.republish.source);
    if (typeof spec.republish.destination !== 'string' || !isValidDestination(spec.republish.destination)) {
      c.add('spec.republish.destination', `"${String(spec.republish.destination)}" is not a valid subject mapping destination`);
    }
  }
  return server ? [...c.errors, ...check(KEYVALUE_FEATURES, spec, server)] : c.errors;
}

export function validateObjectStoreSpec(spec: ObjectStoreSpec, server?: Version): SpecError[] {
  const c = new Checker();
  checkCommon(c, spec);
  return server ? [...c.errors, ...check(OBJECTSTORE_FEATURES, spec, server)] : c.errors;
}

/** What the planner needs of one kind of bucket: its stream's name, its spec's checks, its stream config. */
export interface BucketKindConfig<S> {
  streamName(bucket: string): string;
  validate(spec: S, server: Version): SpecError[];
  config(spec: S, server: Version): DesiredStreamConfig;
}

export const KEYVALUE_CONFIG: BucketKindConfig<KeyValueSpec> = {
  streamName: keyValueStreamName,
  validate: validateKeyValueSpec,
  config: toKeyValueStreamConfig,
};

export const OBJECTSTORE_CONFIG: BucketKindConfig<ObjectStoreSpec> = {
  streamName: objectStoreStreamName,
  validate: validateObjectStoreSpec,
  config: toObjectStoreStreamConfig,
};
