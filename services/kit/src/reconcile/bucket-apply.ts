/**
 * Runs a bucket plan against JetStream, as apply.ts does for streams: creates or updates the
 * bucket's stream, never recreates it (a refused change is reported, so a bad spec cannot drop
 * values). The bucket's stream is written through the JetStreamManager directly — the clients'
 * Kvm/Objm only create and open — in the layout they give it (bucket-config.ts).
 */
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import type { KeyValueSpec, ObjectStoreSpec } from './bucket-spec.js';
import { keyValueStreamName, objectStoreStreamName } from './bucket-config.js';
import { bucketFields, planKeyValue, planObjectStore, type BucketKind, type BucketPlan } from './bucket-plan.js';
import { applyStreamObjectPlan, contextOf, deleteStream, readStream, type ApplyResult, type ReconcileOptions } from './apply.js';
import type { PlanContext } from './plan.js';

export const applyBucketPlan = (jsm: JetStreamManager, plan: BucketPlan, actual: StreamInfo | undefined): Promise<ApplyResult> =>
  applyStreamObjectPlan(jsm, plan, actual, bucketFields(plan.kind));

export const bucketStreamName = (kind: BucketKind, bucket: string): string =>
  kind === 'KeyValue' ? keyValueStreamName(bucket) : objectStoreStreamName(bucket);

/** The bucket's stream, or undefined when there is none (any other lookup error is thrown). */
export const readBucket = (jsm: JetStreamManager, kind: BucketKind, bucket: string): Promise<StreamInfo | undefined> =>
  readStream(jsm, bucketStreamName(kind, bucket));

/** Read → plan → apply for one bucket. An invalid spec is refused before any JetStream call. */
async function reconcileBucket<S extends KeyValueSpec | ObjectStoreSpec>(
  jsm: JetStreamManager,
  kind: BucketKind,
  plan: (spec: S, actual: StreamInfo | undefined, ctx: PlanContext) => BucketPlan,
  spec: S,
  opts?: ReconcileOptions,
): Promise<ApplyResult> {
  const ctx = contextOf(jsm, opts);
  const preflight = plan(spec, undefined, ctx);
  if (preflight.action === 'refuse') return applyBucketPlan(jsm, preflight, undefined);
  const actual = await readBucket(jsm, kind, spec.bucket);
  return applyBucketPlan(jsm, plan(spec, actual, ctx), actual);
}

/** Read → plan → apply for one key-value bucket. An invalid spec is refused before any JetStream call. */
export const reconcileKeyValue = (jsm: JetStreamManager, spec: KeyValueSpec, opts?: ReconcileOptions): Promise<ApplyResult> =>
  reconcileBucket(jsm, 'KeyValue', planKeyValue, spec, opts);

/** Read → plan → apply for one object store. An invalid spec is refused before any JetStream call. */
export const reconcileObjectStore = (jsm: JetStreamManager, spec: ObjectStoreSpec, opts?: ReconcileOptions): Promise<ApplyResult> =>
  reconcileBucket(jsm, 'ObjectStore', planObjectStore, spec, opts);

/** Deletes a bucket (its stream, with every value or object) if it exists; true when something was deleted. */
export const deleteBucket = (jsm: JetStreamManager, kind: BucketKind, bucket: string): Promise<boolean> =>
  deleteStream(jsm, bucketStreamName(kind, bucket));
