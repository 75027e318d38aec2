/**
 * The planner: (desired spec, actual JetStream config | undefined) → what to do, and why.
 * Pure — no I/O — so every field change can be table-tested and the operator can put the reasons
 * straight into a status condition.
 *
 * - `create`: nothing there yet.
 * - `update`: only mutable fields differ.
 * - `noop`: the server already matches the spec.
 * - `recreate-needed`: an immutable field differs (e.g. storage, retention on 2.9). The applier never
 *   acts on it — recreating would drop messages or delivery state — it only reports the reason.
 * - `refuse`: the spec itself is invalid; JetStream is not touched.
 */
import type { ConsumerConfig, StreamConfig } from '@nats-io/jetstream';
import { millis } from '@nats-io/nats-core';
import { formatDuration, type ConsumerSpec, type StreamSpec } from '../topology.js';
import { effectiveAckWait, toConsumerConfig, toStreamConfig, type DesiredConsumerConfig, type DesiredStreamConfig } from './config.js';
import { validateConsumerSpec, validateStreamSpec, type SpecError } from './validate.js';

export type PlanAction = 'create' | 'update' | 'noop' | 'recreate-needed' | 'refuse';

export interface FieldChange {
  /** JetStream config field, e.g. `max_age`. */
  field: string;
  actual: unknown;
  desired: unknown;
  immutable: boolean;
}

interface PlanBase {
  action: PlanAction;
  /** Human-readable, one per change or problem; empty for `noop`. */
  reasons: string[];
  changes: FieldChange[];
  errors: SpecError[];
}

export interface StreamPlan extends PlanBase {
  kind: 'Stream';
  /** `<stream>`: the identity used in logs and results. */
  key: string;
  stream: string;
  config?: DesiredStreamConfig;
}

export interface ConsumerPlan extends PlanBase {
  kind: 'Consumer';
  /** `<stream>/<durable>`. */
  key: string;
  stream: string;
  consumer: string;
  config?: DesiredConsumerConfig;
}

export type Plan = StreamPlan | ConsumerPlan;

interface FieldRule<A, D> {
  field: string;
  immutable?: boolean;
  actual: (a: A) => unknown;
  desired: (d: D) => unknown;
  /** How to print a value in a reason (durations in nanoseconds read better as "30s"). */
  show?: (v: unknown) => string;
}

const showNanos = (v: unknown): string => (typeof v === 'number' ? (v === 0 ? '0 (unlimited)' : formatDuration(millis(v))) : String(v));
const showNanosList = (v: unknown): string => (Array.isArray(v) ? `[${v.map(showNanos).join(', ')}]` : String(v));
const sorted = (xs: string[] | undefined): string[] => [...(xs ?? [])].sort();

const STREAM_FIELDS: FieldRule<StreamConfig, DesiredStreamConfig>[] = [
  { field: 'subjects', actual: (a) => sorted(a.subjects), desired: (d) => sorted(d.subjects) },
  { field: 'storage', immutable: true, actual: (a) => a.storage, desired: (d) => d.storage },
  { field: 'retention', immutable: true, actual: (a) => a.retention, desired: (d) => d.retention },
  { field: 'num_replicas', actual: (a) => a.num_replicas, desired: (d) => d.num_replicas },
  { field: 'max_age', actual: (a) => a.max_age, desired: (d) => d.max_age, show: showNanos },
  { field: 'max_bytes', actual: (a) => a.max_bytes, desired: (d) => d.max_bytes },
  { field: 'max_msgs', actual: (a) => a.max_msgs, desired: (d) => d.max_msgs },
  { field: 'duplicate_window', actual: (a) => a.duplicate_window, desired: (d) => d.duplicate_window, show: showNanos },
  { field: 'discard', actual: (a) => a.discard, desired: (d) => d.discard },
];

const CONSUMER_FIELDS: FieldRule<ConsumerConfig, DesiredConsumerConfig>[] = [
  // A push consumer cannot be turned into a pull consumer in place.
  { field: 'deliver_subject', immutable: true, actual: (a) => a.deliver_subject ?? '', desired: () => '' },
  { field: 'ack_policy', immutable: true, actual: (a) => a.ack_policy, desired: (d) => d.ack_policy },
  { field: 'deliver_policy', immutable: true, actual: (a) => a.deliver_policy, desired: (d) => d.deliver_policy },
  { field: 'replay_policy', immutable: true, actual: (a) => a.replay_policy, desired: (d) => d.replay_policy },
  // Editable on 2.9.10 (checked); the server rejects it on older servers and the error is reported.
  { field: 'filter_subject', actual: (a) => a.filter_subject ?? '', desired: (d) => d.filter_subject ?? '' },
  { field: 'ack_wait', actual: (a) => effectiveAckWait(a), desired: (d) => effectiveAckWait(d), show: showNanos },
  { field: 'max_deliver', actual: (a) => a.max_deliver ?? -1, desired: (d) => d.max_deliver },
  { field: 'backoff', actual: (a) => a.backoff ?? [], desired: (d) => d.backoff ?? [], show: showNanosList },
  { field: 'max_ack_pending', actual: (a) => a.max_ack_pending, desired: (d) => d.max_ack_pending },
];

function diff<A, D>(rules: FieldRule<A, D>[], actual: A, desired: D): FieldChange[] {
  const out: FieldChange[] = [];
  for (const r of rules) {
    const a = r.actual(actual);
    const d = r.desired(desired);
    if (JSON.stringify(a) !== JSON.stringify(d)) out.push({ field: r.field, actual: a, desired: d, immutable: r.immutable ?? false });
  }
  return out;
}

function describe(c: FieldChange, rules: FieldRule<unknown, unknown>[]): string {
  const show = rules.find((r) => r.field === c.field)?.show ?? ((v: unknown) => JSON.stringify(v));
  const base = `${c.field}: ${show(c.actual)} → ${show(c.desired)}`;
  return c.immutable ? `${base} cannot be changed in place (immutable on this server); revert the spec or delete and recreate by hand` : base;
}

function decide(changes: FieldChange[], rules: FieldRule<unknown, unknown>[]): Pick<PlanBase, 'action' | 'reasons'> {
  if (changes.length === 0) return { action: 'noop', reasons: [] };
  const immutable = changes.filter((c) => c.immutable);
  // Only the immutable changes are reported for recreate-needed: the mutable ones are not applied either.
  if (immutable.length > 0) return { action: 'recreate-needed', reasons: immutable.map((c) => describe(c, rules)) };
  return { action: 'update', reasons: changes.map((c) => describe(c, rules)) };
}

export function planStream(spec: StreamSpec, actual: { config: StreamConfig } | undefined): StreamPlan {
  const base = { kind: 'Stream' as const, key: String(spec.name), stream: String(spec.name) };
  const errors = validateStreamSpec(spec);
  if (errors.length > 0) {
    return { ...base, action: 'refuse', reasons: errors.map((e) => `${e.path} ${e.message}`), changes: [], errors };
  }
  const config = toStreamConfig(spec);
  if (!actual) return { ...base, action: 'create', reasons: ['stream does not exist'], changes: [], errors: [], config };
  const changes = diff(STREAM_FIELDS, actual.config, config);
  return { ...base, ...decide(changes, STREAM_FIELDS as FieldRule<unknown, unknown>[]), changes, errors: [], config };
}

export function planConsumer(spec: ConsumerSpec, actual: { config: ConsumerConfig } | undefined): ConsumerPlan {
  const base = {
    kind: 'Consumer' as const,
    key: `${String(spec.streamName)}/${String(spec.durableName)}`,
    stream: String(spec.streamName),
    consumer: String(spec.durableName),
  };
  const errors = validateConsumerSpec(spec);
  if (errors.length > 0) {
    return { ...base, action: 'refuse', reasons: errors.map((e) => `${e.path} ${e.message}`), changes: [], errors };
  }
  const config = toConsumerConfig(spec);
  if (!actual) return { ...base, action: 'create', reasons: ['consumer does not exist'], changes: [], errors: [], config };
  const changes = diff(CONSUMER_FIELDS, actual.config, config);
  return { ...base, ...decide(changes, CONSUMER_FIELDS as FieldRule<unknown, unknown>[]), changes, errors: [], config };
}
