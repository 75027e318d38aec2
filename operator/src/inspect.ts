/**
 * Read → ownership → plan for one resource, without writing anything: what the reconciler applies
 * (or, in observe mode and under preventUpdate, only reports) and what `orderflow diff` prints.
 * The plan is the kit's; this adds the ownership marker to the desired metadata so a plan keeps
 * (or writes) it instead of seeing it as drift.
 */
import {
  atLeast,
  connectedServerVersion,
  planConsumer,
  planStream,
  readConsumer,
  readStream,
  serverOf,
  type ConsumerSpec,
  type Plan,
  type PlanContext,
  type StreamSpec,
} from '@orderflow/kit';
import type { ConsumerInfo, JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import { decideOwnership, OWNER_KEY, withMarker, type Ownership } from './ownership.js';

export type Desired = { kind: 'Stream'; spec: StreamSpec } | { kind: 'Consumer'; spec: ConsumerSpec };

/** Whose marker a plan writes. */
export type MarkerPolicy =
  /** The operator for a resource: our marker where the server has metadata. */
  | { mode: 'own'; me: string; adopt: boolean; legacy: boolean; ownerGone(owner: string): boolean }
  /** Keep whatever marker the object has (the CLI, observe mode): ownership is reported, never changed. */
  | { mode: 'keep'; me?: string; adopt?: boolean; legacy?: boolean; ownerGone?(owner: string): boolean };

export interface Inspection {
  plan: Plan;
  actual?: StreamInfo | ConsumerInfo;
  ownership: Ownership;
  serverVersion?: string;
}

const V2_10 = [2, 10, 0] as const;

/** Throws when JetStream cannot be read (a lookup error is never taken for "absent"). */
export async function inspect(jsm: JetStreamManager, d: Desired, policy: MarkerPolicy): Promise<Inspection> {
  const serverVersion = connectedServerVersion(jsm);
  const ctx: PlanContext = { serverVersion };
  // An invalid spec is refused before any JetStream call.
  const preflight = d.kind === 'Stream' ? planStream(d.spec, undefined, ctx) : planConsumer(d.spec, undefined, ctx);
  if (preflight.action === 'refuse') return { plan: preflight, ownership: { state: 'absent' }, serverVersion };

  const actual = d.kind === 'Stream' ? await readStream(jsm, d.spec.name) : await readConsumer(jsm, d.spec.streamName, d.spec.durableName);
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

  if (d.kind === 'Stream') {
    return { plan: planStream(withMarker(d.spec, marker), actual as StreamInfo | undefined, ctx), actual, ownership, serverVersion };
  }
  // The stream's consumer_limits (2.10+) decide the defaults the server fills in.
  if (actual && markers) ctx.stream = (await readStream(jsm, d.spec.streamName))?.config;
  return { plan: planConsumer(withMarker(d.spec, marker), actual as ConsumerInfo | undefined, ctx), actual, ownership, serverVersion };
}
