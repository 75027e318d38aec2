/**
 * The applier: runs a plan against JetStream. It only ever creates or updates; `recreate-needed`
 * and `refuse` plans are reported, never executed, so a bad spec can't delete data.
 */
import { JetStreamApiCodes, JetStreamApiError, type ConsumerInfo, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import type { ConsumerSpec, StreamSpec } from '../topology.js';
import { planConsumer, planStream, type ConsumerPlan, type Plan, type PlanAction, type StreamPlan } from './plan.js';

export type Outcome = 'created' | 'updated' | 'unchanged' | 'refused' | 'failed';

export interface ApplyResult {
  kind: 'Stream' | 'Consumer';
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

export async function applyStreamPlan(jsm: JetStreamManager, plan: StreamPlan, actual: StreamInfo | undefined): Promise<ApplyResult> {
  const base = { kind: plan.kind, key: plan.key, action: plan.action, reasons: plan.reasons };
  try {
    switch (plan.action) {
      case 'create':
        return { ...base, outcome: 'created', stream: await jsm.streams.add(plan.config!) };
      case 'update': {
        const { name: _name, ...changes } = plan.config!;
        return { ...base, outcome: 'updated', stream: await jsm.streams.update(plan.stream, changes) };
      }
      case 'noop':
        return { ...base, outcome: 'unchanged', stream: actual };
      case 'recreate-needed':
      case 'refuse':
        return { ...base, outcome: 'refused', stream: actual };
    }
  } catch (err) {
    return { ...base, outcome: 'failed', error: (err as Error).message, reasons: [...plan.reasons, `JetStream: ${(err as Error).message}`], stream: actual };
  }
}

export async function applyConsumerPlan(jsm: JetStreamManager, plan: ConsumerPlan, actual: ConsumerInfo | undefined): Promise<ApplyResult> {
  const base = { kind: plan.kind, key: plan.key, action: plan.action, reasons: plan.reasons };
  try {
    switch (plan.action) {
      case 'create':
        return { ...base, outcome: 'created', consumer: await jsm.consumers.add(plan.stream, plan.config!) };
      case 'update': {
        // Only the mutable fields go into an update; the immutable ones already match (else: recreate-needed).
        const { durable_name: _d, ack_policy: _a, deliver_policy: _p, replay_policy: _r, ...changes } = plan.config!;
        return { ...base, outcome: 'updated', consumer: await jsm.consumers.update(plan.stream, plan.consumer, changes) };
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

export async function applyPlan(jsm: JetStreamManager, plan: Plan, actual: StreamInfo | ConsumerInfo | undefined): Promise<ApplyResult> {
  return plan.kind === 'Stream'
    ? applyStreamPlan(jsm, plan, actual as StreamInfo | undefined)
    : applyConsumerPlan(jsm, plan, actual as ConsumerInfo | undefined);
}

/** Read → plan → apply for one stream. An invalid spec is refused before any JetStream call. */
export async function reconcileStream(jsm: JetStreamManager, spec: StreamSpec): Promise<ApplyResult> {
  const preflight = planStream(spec, undefined);
  if (preflight.action === 'refuse') return applyStreamPlan(jsm, preflight, undefined);
  const actual = await readStream(jsm, spec.name);
  return applyStreamPlan(jsm, planStream(spec, actual), actual);
}

/** Read → plan → apply for one consumer. An invalid spec is refused before any JetStream call. */
export async function reconcileConsumer(jsm: JetStreamManager, spec: ConsumerSpec): Promise<ApplyResult> {
  const preflight = planConsumer(spec, undefined);
  if (preflight.action === 'refuse') return applyConsumerPlan(jsm, preflight, undefined);
  const actual = await readConsumer(jsm, spec.streamName, spec.durableName);
  return applyConsumerPlan(jsm, planConsumer(spec, actual), actual);
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
