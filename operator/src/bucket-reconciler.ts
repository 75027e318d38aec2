/**
 * KeyValue and ObjectStore for the reconcile of object-reconciler.ts: the bucket's stream read,
 * planned (bucket-inspect.ts), applied and deleted through the kit; ownership is the marker in
 * that stream's metadata; the status shows the bucket's values and bytes.
 */
import { applyBucketPlan, deleteBucket, readBucket, type BucketPlan } from '@orderflow/kit';
import type { StreamInfo } from '@nats-io/jetstream';
import { bucketLabel, type BucketResource } from './bucket-resources.js';
import { inspectBucket } from './bucket-inspect.js';
import { createObjectReconciler, type ObjectKind, type ObjectReconcilerDeps } from './object-reconciler.js';
import type { HandlerResult } from './work-queue.js';

export type BucketReconcilerDeps = ObjectReconcilerDeps<BucketResource>;

const bucketKind: ObjectKind<BucketResource> = {
  describe: bucketLabel,
  key: (obj) => obj.spec.bucket,
  legacy: () => false,
  inspect: (jsm, obj, policy) =>
    inspectBucket(jsm, obj.kind === 'KeyValue' ? { kind: 'KeyValue', spec: obj.spec } : { kind: 'ObjectStore', spec: obj.spec }, policy),
  read: (jsm, obj) => readBucket(jsm, obj.kind, obj.spec.bucket),
  remove: (jsm, obj) => deleteBucket(jsm, obj.kind, obj.spec.bucket),
  apply: (jsm, ins) => applyBucketPlan(jsm, ins.plan as BucketPlan, ins.actual as StreamInfo | undefined),
  applied: (result) => result.stream,
  live: (_jsm, _obj, actual) => {
    const s = actual as StreamInfo | undefined;
    return s ? { messages: s.state.messages, bytes: s.state.bytes } : {};
  },
};

export const createBucketReconciler = (deps: BucketReconcilerDeps): ((key: string) => Promise<HandlerResult>) =>
  createObjectReconciler(deps, bucketKind);
