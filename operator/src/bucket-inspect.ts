/**
 * Read → ownership → plan for one KeyValue or ObjectStore, without writing anything (inspect.ts
 * for buckets): what the bucket reconciler applies or only reports, and what `orderflow diff`
 * prints. The ownership marker lives in the bucket stream's metadata (2.10+), as for streams.
 */
import {
  atLeast,
  connectedServerVersion,
  planKeyValue,
  planObjectStore,
  readBucket,
  serverOf,
  type BucketPlan,
  type KeyValueSpec,
  type ObjectStoreSpec,
  type PlanContext,
} from '@orderflow/kit';
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import type { MarkerPolicy } from './inspect.js';
import { decideOwnership, OWNER_KEY, type Ownership } from './ownership.js';

export type DesiredBucket = { kind: 'KeyValue'; spec: KeyValueSpec } | { kind: 'ObjectStore'; spec: ObjectStoreSpec };

export interface BucketInspection {
  plan: BucketPlan;
  actual?: StreamInfo;
  ownership: Ownership;
  serverVersion?: string;
}

const V2_10 = [2, 10, 0] as const;

function plan(d: DesiredBucket, actual: StreamInfo | undefined, ctx: PlanContext, marker: string | undefined): BucketPlan {
  const metadata = marker === undefined ? d.spec.metadata : { ...(d.spec.metadata ?? {}), [OWNER_KEY]: marker };
  return d.kind === 'KeyValue'
    ? planKeyValue({ ...d.spec, ...(metadata ? { metadata } : {}) }, actual, ctx)
    : planObjectStore({ ...d.spec, ...(metadata ? { metadata } : {}) }, actual, ctx);
}

/** Throws when JetStream cannot be read (a lookup error is never taken for "absent"). */
export async function inspectBucket(jsm: JetStreamManager, d: DesiredBucket, policy: MarkerPolicy): Promise<BucketInspection> {
  const serverVersion = connectedServerVersion(jsm);
  const ctx: PlanContext = { serverVersion };
  // An invalid spec is refused before any JetStream call.
  const preflight = plan(d, undefined, ctx, undefined);
  if (preflight.action === 'refuse') return { plan: preflight, ownership: { state: 'absent' }, serverVersion };

  const actual = await readBucket(jsm, d.kind, d.spec.bucket);
  const markers = atLeast(serverOf(ctx), V2_10);
  const metadata = actual?.config.metadata ?? undefined;
  const ownership = decideOwnership({
    exists: actual !== undefined,
    metadata,
    markers,
    me: policy.me ?? '',
    adopt: policy.adopt ?? false,
    legacy: policy.legacy ?? false,
    ownerGone: (o) => policy.ownerGone?.(o) ?? false,
  });
  const marker = !markers ? undefined : policy.mode === 'own' ? policy.me : metadata?.[OWNER_KEY];
  return { plan: plan(d, actual, ctx, marker), actual, ownership, serverVersion };
}
