/**
 * The planner for KeyValue and ObjectStore buckets: (desired spec, the bucket's stream | undefined,
 * what the server is) → what to do, and why — the same actions as for streams (plan.ts), compared
 * on the bucket tables of bucket-fields.ts. Reasons name the bucket's field and the stream field
 * behind it (`history (max_msgs_per_subject): 1 → 5`). Pure.
 */
import type { StreamConfig } from '@nats-io/jetstream';
import type { KeyValueSpec, ObjectStoreSpec } from './bucket-spec.js';
import { KEYVALUE_FIELDS, OBJECTSTORE_FIELDS, type BucketFieldRule } from './bucket-fields.js';
import { KEYVALUE_CONFIG, OBJECTSTORE_CONFIG, type BucketKindConfig } from './bucket-config.js';
import { describe, diff, type FieldChange } from './field-rule.js';
import type { DesiredStreamConfig } from './config.js';
import { serverOf, type PlanAction, type PlanContext } from './plan.js';
import type { SpecError } from './validate.js';

export type BucketKind = 'KeyValue' | 'ObjectStore';

export interface BucketPlan {
  kind: BucketKind;
  /** The bucket. */
  key: string;
  /** The bucket's stream: `KV_<bucket>` or `OBJ_<bucket>`. */
  stream: string;
  action: PlanAction;
  reasons: string[];
  changes: FieldChange[];
  errors: SpecError[];
  /** The stream config to send (absent when refused). */
  config?: DesiredStreamConfig;
}

/** The rules with the bucket's field names first, for the reasons. */
const named = (rules: readonly BucketFieldRule[]): BucketFieldRule[] =>
  rules.map((r) => ({ ...r, field: r.spec.startsWith(r.field) ? r.spec : `${r.spec} (${r.field})` }));
const NAMED: Record<BucketKind, { rules: readonly BucketFieldRule[]; named: BucketFieldRule[] }> = {
  KeyValue: { rules: KEYVALUE_FIELDS, named: named(KEYVALUE_FIELDS) },
  ObjectStore: { rules: OBJECTSTORE_FIELDS, named: named(OBJECTSTORE_FIELDS) },
};

export const bucketFields = (kind: BucketKind): readonly BucketFieldRule[] => NAMED[kind].rules;

function because(kind: BucketKind, c: FieldChange): string {
  const { rules, named: byName } = NAMED[kind];
  const i = rules.findIndex((r) => r.field === c.field);
  return describe({ ...c, field: byName[i]?.field ?? c.field }, byName);
}

function decide(kind: BucketKind, changes: FieldChange[]): Pick<BucketPlan, 'action' | 'reasons'> {
  if (changes.length === 0) return { action: 'noop', reasons: [] };
  const refused = changes.filter((c) => c.immutable);
  if (refused.length > 0) return { action: 'recreate-needed', reasons: refused.map((c) => because(kind, c)) };
  return { action: 'update', reasons: changes.map((c) => because(kind, c)) };
}

function planBucket<S extends KeyValueSpec | ObjectStoreSpec>(
  kind: BucketKind,
  k: BucketKindConfig<S>,
  spec: S,
  actual: { config: StreamConfig } | undefined,
  ctx: PlanContext | undefined,
): BucketPlan {
  const server = serverOf(ctx);
  const bucket = String(spec.bucket);
  const base = { kind, key: bucket, stream: k.streamName(bucket) };
  const errors = k.validate(spec, server);
  if (errors.length > 0) return { ...base, action: 'refuse', reasons: errors.map((e) => `${e.path} ${e.message}`), changes: [], errors };
  const desired = k.config(spec, server);
  const what = kind === 'KeyValue' ? 'key-value bucket' : 'object store';
  if (!actual) return { ...base, action: 'create', reasons: [`${what} does not exist`], changes: [], errors: [], config: desired };
  const changes = diff(NAMED[kind].rules, actual.config, desired, undefined, server);
  return { ...base, ...decide(kind, changes), changes, errors: [], config: desired };
}

export const planKeyValue = (spec: KeyValueSpec, actual: { config: StreamConfig } | undefined, ctx?: PlanContext): BucketPlan =>
  planBucket('KeyValue', KEYVALUE_CONFIG, spec, actual, ctx);

export const planObjectStore = (spec: ObjectStoreSpec, actual: { config: StreamConfig } | undefined, ctx?: PlanContext): BucketPlan =>
  planBucket('ObjectStore', OBJECTSTORE_CONFIG, spec, actual, ctx);
