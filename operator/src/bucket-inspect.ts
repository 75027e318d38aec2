/**
 * Read → ownership → plan for one KeyValue or ObjectStore, without writing anything (inspect.ts
 * for buckets): what the bucket reconciler applies or only reports, and what `orderflow diff`
 * prints. The ownership marker lives in the bucket stream's metadata (2.10+), as for streams.
 */
import { planKeyValue, planObjectStore, readBucket, type BucketPlan, type KeyValueSpec, type ObjectStoreSpec } from '@orderflow/kit';
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import { inspectWith, type MarkerPolicy } from './inspect.js';
import { withMarker, type Ownership } from './ownership.js';

export type DesiredBucket = { kind: 'KeyValue'; spec: KeyValueSpec } | { kind: 'ObjectStore'; spec: ObjectStoreSpec };

export interface BucketInspection {
  plan: BucketPlan;
  actual?: StreamInfo;
  ownership: Ownership;
  serverVersion?: string;
}

/** Throws when JetStream cannot be read (a lookup error is never taken for "absent"). */
export function inspectBucket(jsm: JetStreamManager, d: DesiredBucket, policy: MarkerPolicy): Promise<BucketInspection> {
  return inspectWith(
    jsm,
    {
      read: () => readBucket(jsm, d.kind, d.spec.bucket),
      plan: (actual: StreamInfo | undefined, ctx, marker) =>
        d.kind === 'KeyValue'
          ? planKeyValue(withMarker(d.spec, marker), actual, ctx)
          : planObjectStore(withMarker(d.spec, marker), actual, ctx),
    },
    policy,
  );
}
