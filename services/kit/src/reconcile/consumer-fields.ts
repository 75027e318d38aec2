/**
 * The consumer planner's table, like STREAM_FIELDS. Checked against nats-server 2.15.2 and
 * 2.9.10: ack/deliver/replay policy, start sequence/time, max_waiting, mem_storage, flow control
 * and heartbeats are fixed at creation; a push consumer cannot become a pull consumer or back;
 * pause_until is set by the pause API, not by an update (which keeps the old value silently).
 */
import type { ConsumerConfig } from '@nats-io/jetstream';
import {
  bool,
  immutable,
  instant,
  num,
  showInstant,
  showNanos,
  showNanosList,
  sorted,
  str,
  userMetadata,
  type ChangeCheck,
  type FieldRule,
} from './field-rule.js';
import type { Version } from './server-version.js';

/** What the server fills a consumer's unset fields from. */
export interface ConsumerContext {
  /** The stream's consumer_limits (2.10+): defaults for max_ack_pending and inactive_threshold. */
  limits: { max_ack_pending: number; inactive_threshold: number };
  /** Epoch ms: a pause_until before it is no pause. */
  now: number;
}

export type ConsumerFieldRule = FieldRule<Partial<ConsumerConfig>, ConsumerContext>;

const V2_10: Version = [2, 10, 0];
const V2_11: Version = [2, 11, 0];

// Server defaults (2.9.10 and 2.15.2 agree).
export const DEFAULT_ACK_WAIT = 30e9;
export const DEFAULT_MAX_ACK_PENDING = 1000;
export const DEFAULT_MAX_WAITING = 512;
export const DEFAULT_PINNED_TTL = 120e9;

const ackNone = (c: Partial<ConsumerConfig>): boolean => c.ack_policy === 'none';
const push = (c: Partial<ConsumerConfig>): boolean => !!c.deliver_subject;

/**
 * The ack wait the server reports: with a backoff list it replaces ack_wait by backoff[0]
 * (2.9.10 and 2.15.2), so comparing the spec's ackWait would flap forever.
 */
export function effectiveAckWait(c: Partial<ConsumerConfig>): number {
  if (c.backoff && c.backoff.length > 0) return c.backoff[0]!;
  return ackNone(c) ? num(c.ack_wait) : c.ack_wait || DEFAULT_ACK_WAIT;
}

/** One filter or several: the server keeps either field; compared as one sorted list. */
const filters = (c: Partial<ConsumerConfig>): string[] =>
  sorted([...(c.filter_subject ? [c.filter_subject] : []), ...(c.filter_subjects ?? [])]);
const showFilters = (v: unknown): string => (Array.isArray(v) && v.length <= 1 ? JSON.stringify(v[0] ?? '') : JSON.stringify(v));

const pushPull: ChangeCheck = (a, d) =>
  a === '' || d === '' ? 'a push consumer cannot become a pull consumer, nor the other way' : undefined;

export const CONSUMER_FIELDS: readonly ConsumerFieldRule[] = [
  { field: 'description', spec: 'description', value: (c) => str(c.description) },
  { field: 'deliver_subject', spec: 'deliverSubject', value: (c) => str(c.deliver_subject), change: pushPull },
  { field: 'deliver_group', spec: 'deliverGroup', value: (c) => str(c.deliver_group) },
  { field: 'ack_policy', spec: 'ackPolicy', value: (c) => c.ack_policy ?? 'none', change: immutable, createOnly: true },
  { field: 'deliver_policy', spec: 'deliverPolicy', value: (c) => c.deliver_policy ?? 'all', change: immutable, createOnly: true },
  { field: 'opt_start_seq', spec: 'optStartSeq', value: (c) => num(c.opt_start_seq), change: immutable, createOnly: true },
  {
    field: 'opt_start_time',
    spec: 'optStartTime',
    value: (c) => instant(c.opt_start_time),
    change: immutable,
    createOnly: true,
    show: showInstant,
  },
  { field: 'replay_policy', spec: 'replayPolicy', value: (c) => c.replay_policy ?? 'instant', change: immutable, createOnly: true },
  { field: 'filter_subject', spec: 'filterSubject(s)', value: filters, show: showFilters },
  { field: 'ack_wait', spec: 'ackWait', value: effectiveAckWait, show: showNanos },
  { field: 'max_deliver', spec: 'maxDeliver', value: (c) => (c.max_deliver === undefined || c.max_deliver <= 0 ? -1 : c.max_deliver) },
  { field: 'backoff', spec: 'backoff', value: (c) => c.backoff ?? [], show: showNanosList },
  // Ack none: the server keeps whatever was sent and fills nothing.
  {
    field: 'max_ack_pending',
    spec: 'maxAckPending',
    value: (c, x) => (ackNone(c) ? num(c.max_ack_pending) : c.max_ack_pending || x.limits.max_ack_pending || DEFAULT_MAX_ACK_PENDING),
  },
  {
    field: 'max_waiting',
    spec: 'maxWaiting',
    value: (c) => (push(c) ? num(c.max_waiting) : c.max_waiting || DEFAULT_MAX_WAITING),
    change: immutable,
    createOnly: true,
  },
  { field: 'rate_limit_bps', spec: 'rateLimitBps', value: (c) => num(c.rate_limit_bps) },
  { field: 'sample_freq', spec: 'sampleFreq', value: (c) => str(c.sample_freq) },
  { field: 'headers_only', spec: 'headersOnly', value: (c) => bool(c.headers_only) },
  { field: 'max_batch', spec: 'maxRequestBatch', value: (c) => num(c.max_batch) },
  { field: 'max_expires', spec: 'maxRequestExpires', value: (c) => num(c.max_expires), show: showNanos },
  { field: 'max_bytes', spec: 'maxRequestMaxBytes', value: (c) => num(c.max_bytes) },
  {
    field: 'inactive_threshold',
    spec: 'inactiveThreshold',
    value: (c, x) => c.inactive_threshold || x.limits.inactive_threshold,
    show: showNanos,
  },
  { field: 'num_replicas', spec: 'replicas', value: (c) => num(c.num_replicas) },
  { field: 'mem_storage', spec: 'memStorage', value: (c) => bool(c.mem_storage), change: immutable, createOnly: true },
  { field: 'flow_control', spec: 'flowControl', value: (c) => bool(c.flow_control), change: immutable, createOnly: true },
  {
    field: 'idle_heartbeat',
    spec: 'heartbeatInterval',
    value: (c) => num(c.idle_heartbeat),
    change: immutable,
    createOnly: true,
    show: showNanos,
  },
  { field: 'metadata', spec: 'metadata', since: V2_10, value: (c) => userMetadata(c.metadata) },
  // Applied through the pause API (an update leaves it as it was); never part of an update request.
  {
    field: 'pause_until',
    spec: 'pauseUntil',
    since: V2_11,
    value: (c, x) => {
      const t = instant(c.pause_until);
      return t !== null && t > x.now ? t : null;
    },
    createOnly: true,
    show: showInstant,
  },
  { field: 'priority_policy', spec: 'priorityPolicy', since: V2_11, value: (c) => c.priority_policy ?? 'none' },
  { field: 'priority_groups', spec: 'priorityGroups', since: V2_11, value: (c) => c.priority_groups ?? [] },
  {
    field: 'priority_timeout',
    spec: 'pinnedTtl',
    since: V2_11,
    value: (c) => (c.priority_policy === 'pinned_client' ? c.priority_timeout || DEFAULT_PINNED_TTL : num(c.priority_timeout)),
    show: showNanos,
  },
];
