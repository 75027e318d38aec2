/**
 * The KeyValue and ObjectStore specs: the custom resources' `spec`, and what `orderflow` reads for
 * those kinds. Field names follow NACK's `v1beta2` CRDs (nats-io/nack) where the meaning is the
 * same; docs/operator.md has the side-by-side table. A bucket is a JetStream stream
 * (`KV_<bucket>`, `OBJ_<bucket>`) laid out as the NATS clients lay it out, so `Kvm.open(bucket)`
 * and `Objm.open(bucket)` work on what the operator makes.
 */
import type { Duration, StreamSourceSpec } from './spec.js';

export interface BucketPlacementSpec {
  cluster?: string;
  tags?: string[];
}

export interface KeyValueSpec {
  /** Letters, digits, `_` and `-`; fixed once created. */
  bucket: string;
  description?: string;
  /** Largest value in bytes; -1 (or unset) = unlimited. */
  maxValueSize?: number;
  /** Values kept per key, 1..64 (default 1). */
  history?: number;
  /** How long a value lives; unset or 0 = forever. */
  ttl?: Duration;
  /** nats-server 2.11+: how long a marker stays when a key is removed by ttl. NACK's integer (nanoseconds) is accepted too. */
  limitMarkerTtl?: Duration | number;
  /** -1 (or unset) = unlimited. */
  maxBytes?: number;
  /** Fixed once created. */
  storage?: 'file' | 'memory';
  replicas?: number;
  placement?: BucketPlacementSpec;
  /** Every put also published here; `headersOnly` is ours. */
  republish?: { source?: string; destination: string; headersOnly?: boolean };
  /** Another bucket to mirror (`name` is the bucket, `KV_` may be left out); fixed once created. */
  mirror?: StreamSourceSpec;
  /** nats-server 2.10+: buckets whose keys are copied in (`KV_` may be left out). */
  sources?: StreamSourceSpec[];
  /** nats-server 2.10+: s2 compression of the stored values. */
  compression?: boolean;
  /** nats-server 2.10+; keys starting with `_nats` are the server's. */
  metadata?: Record<string, string>;
  /** Keep the bucket when the resource is deleted. */
  preventDelete?: boolean;
  /** Create the bucket when it is missing, never change it. */
  preventUpdate?: boolean;
}

export interface ObjectStoreSpec {
  /** Letters, digits, `_` and `-`; fixed once created. */
  bucket: string;
  description?: string;
  /** How long an object lives; unset or 0 = forever. */
  ttl?: Duration;
  /** -1 (or unset) = unlimited. */
  maxBytes?: number;
  /** Fixed once created. */
  storage?: 'file' | 'memory';
  replicas?: number;
  placement?: BucketPlacementSpec;
  /** nats-server 2.10+. */
  compression?: boolean;
  /** nats-server 2.10+; keys starting with `_nats` are the server's. */
  metadata?: Record<string, string>;
  preventDelete?: boolean;
  preventUpdate?: boolean;
}
