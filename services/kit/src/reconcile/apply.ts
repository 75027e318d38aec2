/**
 * The applier: runs a plan against JetStream. It only ever creates or updates; `recreate-needed`
 * and `refuse` plans are reported, never executed, so a bad spec can't delete data.
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamInfo,
  type StreamUpdateConfig,
} from '@nats-io/jetstream';
import type { ConsumerSpec, StreamSpec } from './spec.js';
import type { BucketKind } from './bucket-plan.js';
import type { DesiredStreamConfig } from './config.js';
import { CONSUMER_FIELDS } from './consumer-fields.js';
import { atLeast, connectedServerVersion } from './server-version.js';
import { STREAM_FIELDS } from './stream-fields.js';
import {
  planConsumer,
  planStream,
  serverOf,
  updatable,
  type ConsumerPlan,
  type PlanAction,
  type PlanContext,
  type StreamPlan,
} from './plan.js';

export type Outcome = 'created' | 'updated' | 'unchanged' | 'refused' | 'failed';

export interface ApplyResult {
  kind: 'Stream' | 'Consumer' | BucketKind;
  key: string;
  action: PlanAction;
  outcome: Outcome;
  reasons: string[];
  /** Set when outcome is `failed`: the JetStream error text. */
  error?: string;
  /** What the server holds after the apply (absent when it holds nothing). */
  stream?: StreamInfo;
  consumer?: ConsumerInfo;
}

function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

export async function readStream(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (isApiError(err, JetStreamApiCodes.StreamNotFound)) return undefined;
    throw err;
  }
}

export async function readConsumer(jsm: JetStreamManager, stream: string, durable: string): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, durable);
  } catch (err) {
    if (isApiError(err, JetStreamApiCodes.ConsumerNotFound) || isApiError(err, JetStreamApiCodes.StreamNotFound)) return undefined;
    throw err;
  }
}

/** A plan whose object is one stream: a stream's, or a bucket's (a bucket is a stream). */
interface StreamObjectPlan {
  kind: ApplyResult['kind'];
  key: string;
  stream: string;
  action: PlanAction;
  reasons: string[];
  config?: DesiredStreamConfig;
}

/** Runs a plan for one stream, updating only the fields `rules` allow to change in place. */
export async function applyStreamObjectPlan(
  jsm: JetStreamManager,
  plan: StreamObjectPlan,
  actual: StreamInfo | undefined,
  rules: readonly { field: string; createOnly?: boolean }[],
): Promise<ApplyResult> {
  const base = { kind: plan.kind, key: plan.key, action: plan.action, reasons: plan.reasons };
  try {
    switch (plan.action) {
      case 'create': {
        const { sealed, ...config } = plan.config!;
        // The server refuses to create a sealed stream: create it, then seal it.
        const created = await jsm.streams.add(sealed ? { ...config, sealed: false } : config);
        return {
          ...base,
          outcome: 'created',
          stream: sealed ? await jsm.streams.update(plan.stream, { sealed: true } as Partial<StreamUpdateConfig>) : created,
        };
      }
      case 'update': {
        const { name: _name, ...changes } = updatable(plan.config!, rules);
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

export const applyStreamPlan = (jsm: JetStreamManager, plan: StreamPlan, actual: StreamInfo | undefined): Promise<ApplyResult> =>
  applyStreamObjectPlan(jsm, plan, actual, STREAM_FIELDS);

export async function applyConsumerPlan(jsm: JetStreamManager, plan: ConsumerPlan, actual: ConsumerInfo | undefined): Promise<ApplyResult> {
  const base = { kind: plan.kind, key: plan.key, action: plan.action, reasons: plan.reasons };
  try {
    switch (plan.action) {
      case 'create':
        return { ...base, outcome: 'created', consumer: await jsm.consumers.add(plan.stream, plan.config!) };
      case 'update': {
        // Only what may change goes into an update; the fields fixed at creation already match.
        const { durable_name: _d, ...changes } = updatable(plan.config!, CONSUMER_FIELDS);
        const others = plan.changes.some((c) => c.field !== 'pause_until');
        let info = others ? await jsm.consumers.update(plan.stream, plan.consumer, changes) : actual;
        // An update keeps pause_until as it was: pausing and resuming have an API of their own.
        const pause = plan.changes.find((c) => c.field === 'pause_until');
        if (pause) {
          if (typeof pause.desired === 'number') await jsm.consumers.pause(plan.stream, plan.consumer, new Date(pause.desired));
          else await jsm.consumers.resume(plan.stream, plan.consumer);
          info = await jsm.consumers.info(plan.stream, plan.consumer);
        }
        return { ...base, outcome: 'updated', consumer: info };
      }
      case 'noop':
        return { ...base, outcome: 'unchanged', consumer: actual };
      case 'recreate-needed':
      case 'refuse':
        return { ...base, outcome: 'refused', consumer: actual };
    }
  } catch (err) {
    const msg = isApiError(err, JetStreamApiCodes.StreamNotFound) ? `stream ${plan.stream} does not exist` : (err as Error).message;
    return { ...base, outcome: 'failed', error: msg, reasons: [...plan.reasons, `JetStream: ${msg}`], consumer: actual };
  }
}

/** The server facts a plan needs, read from the manager's connection unless given. */
export interface ReconcileOptions {
  /** Overrides the version the connection reports (e.g. a CLI planning for another server). */
  serverVersion?: string;
}

export const contextOf = (jsm: JetStreamManager, opts?: ReconcileOptions): PlanContext => ({
  serverVersion: opts?.serverVersion ?? connectedServerVersion(jsm),
});

/** Read → plan → apply for one stream. An invalid spec is refused before any JetStream call. */
export async function reconcileStream(jsm: JetStreamManager, spec: StreamSpec, opts?: ReconcileOptions): Promise<ApplyResult> {
  const ctx = contextOf(jsm, opts);
  const preflight = planStream(spec, undefined, ctx);
  if (preflight.action === 'refuse') return applyStreamPlan(jsm, preflight, undefined);
  const actual = await readStream(jsm, spec.name);
  return applyStreamPlan(jsm, planStream(spec, actual, ctx), actual);
}

/**
 * Read → plan → apply for one consumer. An invalid spec is refused before any JetStream call.
 * The stream's consumer_limits (2.10+) decide the defaults the server fills in, so they are read
 * to compare against.
 */
export async function reconcileConsumer(jsm: JetStreamManager, spec: ConsumerSpec, opts?: ReconcileOptions): Promise<ApplyResult> {
  const ctx = contextOf(jsm, opts);
  const preflight = planConsumer(spec, undefined, ctx);
  if (preflight.action === 'refuse') return applyConsumerPlan(jsm, preflight, undefined);
  const actual = await readConsumer(jsm, spec.streamName, spec.durableName);
  if (actual && atLeast(serverOf(ctx), [2, 10, 0])) ctx.stream = (await readStream(jsm, spec.streamName))?.config;
  return applyConsumerPlan(jsm, planConsumer(spec, actual, ctx), actual);
}

/** Deletes a stream if it exists; true when something was deleted. */
export async function deleteStream(jsm: JetStreamManager, name: string): Promise<boolean> {
  try {
    return await jsm.streams.delete(name);
  } catch (err) {
    if (isApiError(err, JetStreamApiCodes.StreamNotFound)) return false;
    throw err;
  }
}

/** Deletes a consumer if it (and its stream) exists; true when something was deleted. */
export async function deleteConsumer(jsm: JetStreamManager, stream: string, durable: string): Promise<boolean> {
  try {
    return await jsm.consumers.delete(stream, durable);
  } catch (err) {
    if (isApiError(err, JetStreamApiCodes.ConsumerNotFound) || isApiError(err, JetStreamApiCodes.StreamNotFound)) return false;
    throw err;
  }
}
