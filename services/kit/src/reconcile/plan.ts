/**
 * The planner: (desired spec, actual JetStream config | undefined, what the server is) → what to
 * do, and why. Pure — no I/O — so every field change can be table-tested and the operator can
 * put the reasons straight into a status condition. The fields, their normalised forms and their
 * mutability are the tables in stream-fields.ts and consumer-fields.ts.
 *
 * - `create`: nothing there yet.
 * - `update`: only fields the server lets change in place differ.
 * - `noop`: the server already matches the spec (compared in the server's normalised form).
 * - `recreate-needed`: a field the server refuses to change differs (storage, ack policy…), named
 *   in the reason. The applier never acts on it — recreating would drop messages or delivery
 *   state — it only reports it.
 * - `refuse`: the spec itself is invalid, or uses a field the connected server does not know;
 *   JetStream is not touched.
 */
import type { ConsumerConfig, StreamConfig } from '@nats-io/jetstream';
import { toConsumerConfig, toStreamConfig, type DesiredConsumerConfig, type DesiredStreamConfig } from './config.js';
import { CONSUMER_FIELDS, type ConsumerContext } from './consumer-fields.js';
import { NEWEST, describe, diff, type FieldChange, type FieldRule } from './field-rule.js';
import { parseVersion, type Version } from './server-version.js';
import type { ConsumerSpec, StreamSpec } from './spec.js';
import type { BucketPlan } from './bucket-plan.js';
import { STREAM_FIELDS } from './stream-fields.js';
import { validateConsumerSpec, validateStreamSpec, type SpecError } from './validate.js';

export type { FieldChange } from './field-rule.js';

export type PlanAction = 'create' | 'update' | 'noop' | 'recreate-needed' | 'refuse';

/** What the planner knows about the server besides the object itself. */
export interface PlanContext {
  /** The connected nats-server's version ("2.15.2"); unknown → the newest behaviour is assumed. */
  serverVersion?: string;
  /** Consumers: the stream's config, whose consumer_limits fill the consumer's unset defaults. */
  stream?: Pick<StreamConfig, 'consumer_limits'>;
  /** Consumers: a pause_until before this is no pause (default: now). */
  now?: Date;
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

export type Plan = StreamPlan | ConsumerPlan | BucketPlan;

export const serverOf = (ctx: PlanContext | undefined): Version => parseVersion(ctx?.serverVersion) ?? NEWEST;

function decide<C, X>(changes: FieldChange[], rules: readonly FieldRule<C, X>[]): Pick<PlanBase, 'action' | 'reasons'> {
  if (changes.length === 0) return { action: 'noop', reasons: [] };
  const refused = changes.filter((c) => c.immutable);
  // Only the refused changes are reported for recreate-needed: the others are not applied either.
  if (refused.length > 0) return { action: 'recreate-needed', reasons: refused.map((c) => describe(c, rules)) };
  return { action: 'update', reasons: changes.map((c) => describe(c, rules)) };
}

const refuse = (errors: SpecError[]): Pick<PlanBase, 'action' | 'reasons' | 'changes' | 'errors'> => ({
  action: 'refuse',
  reasons: errors.map((e) => `${e.path} ${e.message}`),
  changes: [],
  errors,
});

export function planStream(spec: StreamSpec, actual: { config: StreamConfig } | undefined, ctx?: PlanContext): StreamPlan {
  const base = { kind: 'Stream' as const, key: String(spec.name), stream: String(spec.name) };
  const server = serverOf(ctx);
  const errors = validateStreamSpec(spec, server);
  if (errors.length > 0) return { ...base, ...refuse(errors) };
  const config = toStreamConfig(spec, server);
  if (!actual) return { ...base, action: 'create', reasons: ['stream does not exist'], changes: [], errors: [], config };
  const changes = diff(STREAM_FIELDS, actual.config, config, undefined, server);
  return { ...base, ...decide(changes, STREAM_FIELDS), changes, errors: [], config };
}

export function consumerContext(ctx: PlanContext | undefined): ConsumerContext {
  const limits = ctx?.stream?.consumer_limits;
  return {
    limits: { max_ack_pending: limits?.max_ack_pending ?? 0, inactive_threshold: limits?.inactive_threshold ?? 0 },
    now: (ctx?.now ?? new Date()).getTime(),
  };
}

export function planConsumer(spec: ConsumerSpec, actual: { config: ConsumerConfig } | undefined, ctx?: PlanContext): ConsumerPlan {
  const base = {
    kind: 'Consumer' as const,
    key: `${String(spec.streamName)}/${String(spec.durableName)}`,
    stream: String(spec.streamName),
    consumer: String(spec.durableName),
  };
  const server = serverOf(ctx);
  const errors = validateConsumerSpec(spec, server);
  if (errors.length > 0) return { ...base, ...refuse(errors) };
  const config = toConsumerConfig(spec, server);
  if (!actual) return { ...base, action: 'create', reasons: ['consumer does not exist'], changes: [], errors: [], config };
  const changes = diff(CONSUMER_FIELDS, actual.config, config, consumerContext(ctx), server);
  return { ...base, ...decide(changes, CONSUMER_FIELDS), changes, errors: [], config };
}

/** The part of a desired config an update may send: everything but the fields fixed at creation. */
export function updatable<C extends object>(
  config: C,
  rules: readonly { field: string; createOnly?: boolean }[],
  keep: readonly string[] = [],
): Partial<C> {
  const out = { ...config } as Record<string, unknown>;
  for (const r of rules) if (r.createOnly && !keep.includes(r.field)) delete out[r.field];
  return out as Partial<C>;
}
