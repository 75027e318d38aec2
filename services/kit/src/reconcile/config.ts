/**
 * Spec (custom-resource shape, durations as text) → JetStream API config (nanoseconds, snake_case).
 * Every managed field gets an explicit value, defaults included, so that removing a field from a
 * spec puts the server's default back instead of leaving the old value in place.
 */
import { nanos } from '@nats-io/nats-core';
import type { ConsumerConfig, StreamConfig } from '@nats-io/jetstream';
import { parseDuration, type ConsumerSpec, type StreamSpec } from '../topology.js';

/** The stream fields the reconciler owns; anything else on the server is left as it is. */
export type DesiredStreamConfig = Pick<
  StreamConfig,
  'name' | 'subjects' | 'storage' | 'retention' | 'num_replicas' | 'max_age' | 'max_bytes' | 'max_msgs' | 'duplicate_window' | 'discard'
>;

/** The consumer fields the reconciler owns. Consumers are always durable pull consumers. */
export type DesiredConsumerConfig = Pick<
  ConsumerConfig,
  'durable_name' | 'ack_policy' | 'deliver_policy' | 'replay_policy' | 'filter_subject' | 'ack_wait' | 'max_deliver' | 'backoff' | 'max_ack_pending'
>;

// Server defaults (nats-server 2.9): used when a spec leaves a field out.
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
const DEFAULT_ACK_WAIT_MS = 30_000;
const DEFAULT_MAX_ACK_PENDING = 1000;

const ns = (d: string): number => nanos(parseDuration(d));

export function toStreamConfig(spec: StreamSpec): DesiredStreamConfig {
  const maxAge = spec.maxAge === undefined ? 0 : ns(spec.maxAge);
  // The server caps the default duplicate window at max_age; do the same so the comparison holds.
  let dup = spec.duplicateWindow === undefined ? nanos(DEFAULT_DUPLICATE_WINDOW_MS) : ns(spec.duplicateWindow);
  if (spec.duplicateWindow === undefined && maxAge > 0 && maxAge < dup) dup = maxAge;
  return {
    name: spec.name,
    subjects: [...spec.subjects],
    storage: spec.storage ?? 'file',
    retention: spec.retention ?? 'limits',
    num_replicas: spec.replicas ?? 1,
    max_age: maxAge,
    max_bytes: spec.maxBytes ?? -1,
    max_msgs: spec.maxMsgs ?? -1,
    duplicate_window: dup,
    discard: spec.discard ?? 'old',
  };
}

export function toConsumerConfig(spec: ConsumerSpec): DesiredConsumerConfig {
  return {
    durable_name: spec.durableName,
    ack_policy: spec.ackPolicy ?? 'explicit',
    deliver_policy: 'all',
    replay_policy: 'instant',
    // '' clears a filter on update; the server treats it as "no filter".
    filter_subject: spec.filterSubject ?? '',
    ack_wait: spec.ackWait === undefined ? nanos(DEFAULT_ACK_WAIT_MS) : ns(spec.ackWait),
    max_deliver: spec.maxDeliver ?? -1,
    backoff: (spec.backoff ?? []).map(ns),
    max_ack_pending: spec.maxAckPending ?? DEFAULT_MAX_ACK_PENDING,
  };
}

/**
 * The ack wait the server will actually report: with a backoff list the server replaces ack_wait
 * by backoff[0] (checked on 2.9.10), so comparing the spec's ackWait would flap forever.
 */
export function effectiveAckWait(c: Pick<ConsumerConfig, 'ack_wait' | 'backoff'>): number | undefined {
  return c.backoff && c.backoff.length > 0 ? c.backoff[0] : c.ack_wait;
}
