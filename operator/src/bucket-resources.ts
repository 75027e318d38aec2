/**
 * The KeyValue and ObjectStore custom resources as the operator sees them. The spec shapes are the
 * kit's KeyValueSpec / ObjectStoreSpec; the status is the streams' plus the bucket's size.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { BucketKind, KeyValueSpec, ObjectStoreSpec } from '@orderflow/kit';
import type { ResourceStatus } from './resources.js';

export type { BucketKind } from '@orderflow/kit';
export const BUCKET_KINDS: readonly BucketKind[] = ['KeyValue', 'ObjectStore'];
export const isBucketKind = (kind: string): kind is BucketKind => (BUCKET_KINDS as readonly string[]).includes(kind);

export interface BucketStatus extends ResourceStatus {
  /** Bytes the bucket's stream holds. */
  bytes?: number;
}

export interface KeyValueResource extends KubernetesObject {
  kind: 'KeyValue';
  spec: KeyValueSpec;
  status?: BucketStatus;
}

export interface ObjectStoreResource extends KubernetesObject {
  kind: 'ObjectStore';
  spec: ObjectStoreSpec;
  status?: BucketStatus;
}

export type BucketResource = KeyValueResource | ObjectStoreResource;

/** "key-value bucket orders", "object store invoices": how messages and events name one. */
export const bucketLabel = (kind: BucketKind, bucket: string): string =>
  `${kind === 'KeyValue' ? 'key-value bucket' : 'object store'} ${bucket}`;
