/**
 * Runs a bucket plan against JetStream, as apply.ts does for streams: creates or updates the
 * bucket's stream, never recreates it (a refused change is reported, so a bad spec cannot drop
 * values). The bucket's stream is written through the JetStreamManager directly — the clients'
 * Kvm/Objm only create and open — in the layout they give it (bucket-config.ts).
 */
import type { JetStreamManager, StreamInfo, StreamUpdateConfig } from '@nats-io/jetstream';
import type { KeyValueSpec, ObjectStoreSpec } from './bucket-spec.js';
import { keyValueStreamName, objectStoreStreamName } from './bucket-config.js';
import { bucketFields, planKeyValue, planObjectStore, type BucketKind, type BucketPlan } from './bucket-plan.js';
import { deleteStream, readStream, type ApplyResult, type ReconcileOptions } from './apply.js';
import { updatable, type PlanContext } from './plan.js';
import { connectedServerVersion } from './server-version.js';

export async function applyBucketPlan(jsm: JetStreamManager, plan: BucketPlan, actual: StreamInfo | undefined): Promise<ApplyResult> {
  const base = { kind: plan.kind, key: plan.key, action: plan.action, reasons: plan.reasons };
  try {
    switch (plan.action) {
      case 'create':
        return { ...base, outcome: 'created', stream: await jsm.streams.add(plan.config!) };
      case 'update': {
        const { name: _name, ...changes } = updatable(plan.config!, bucketFields(plan.kind));
        return { ...base, outcome: 'updated', stream: await jsm.streams.update(plan.stream, changes as Partial<StreamUpdateConfig>) };
      }
      case 'noop':
        return { ...base, outcome: 'unchanged', stream: actual };
      case 'recreate-needed':
      case 'refuse':
        return { ...base, outcome: 'refused', stream: actual };
    }
  } catch (err) {
    const msg = (err as Error).message;
    return { ...base, outcome: 'failed', error: msg, reasons: [...plan.reasons, `JetStream: ${msg}`], stream: actual };
  }
}

export const bucketStreamName = (kind: BucketKind, bucket: string): string =>
  kind === 'KeyValue' ? keyValueStreamName(bucket) : objectStoreStreamName(bucket);

/** The bucket's stream, or undefined when there is none (any other lookup error is thrown). */
export const readBucket = (jsm: JetStreamManager, kind: BucketKind, bucket: string): Promise<StreamInfo | undefined> =>
  readStream(jsm, bucketStreamName(kind, bucket));

const contextOf = (jsm: JetStreamManager, opts?: ReconcileOptions): PlanContext => ({
  serverVersion: opts?.serverVersion ?? connectedServerVersion(jsm),
});

/** Read → plan → apply for one key-value bucket. An invalid spec is refused before any JetStream call. */
export async function reconcileKeyValue(jsm: JetStreamManager, spec: KeyValueSpec, opts?: ReconcileOptions): Promise<ApplyResult> {
  const ctx = contextOf(jsm, opts);
  const preflight = planKeyValue(spec, undefined, ctx);
  if (preflight.action === 'refuse') return applyBucketPlan(jsm, preflight, undefined);
  const actual = await readBucket(jsm, 'KeyValue', spec.bucket);
  return applyBucketPlan(jsm, planKeyValue(spec, actual, ctx), actual);
}

/** Read → plan → apply for one object store. An invalid spec is refused before any JetStream call. */
export async function reconcileObjectStore(jsm: JetStreamManager, spec: ObjectStoreSpec, opts?: ReconcileOptions): Promise<ApplyResult> {
  const ctx = contextOf(jsm, opts);
  const preflight = planObjectStore(spec, undefined, ctx);
  if (preflight.action === 'refuse') return applyBucketPlan(jsm, preflight, undefined);
  const actual = await readBucket(jsm, 'ObjectStore', spec.bucket);
  return applyBucketPlan(jsm, planObjectStore(spec, actual, ctx), actual);
}

/** Deletes a bucket (its stream, with every value or object) if it exists; true when something was deleted. */
export const deleteBucket = (jsm: JetStreamManager, kind: BucketKind, bucket: string): Promise<boolean> =>
  deleteStream(jsm, bucketStreamName(kind, bucket));
