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

/** How one kind's object is read and planned; the marker (undefined: none) goes into the desired metadata. */
export interface Inspector<A extends StreamInfo | ConsumerInfo, P extends Plan> {
  read(): Promise<A | undefined>;
  plan(actual: A | undefined, ctx: PlanContext, marker: string | undefined): P | Promise<P>;
}

/**
 * Read → ownership → plan for any kind. Throws when JetStream cannot be read (a lookup error is
 * never taken for "absent").
 */
export async function inspectWith<A extends StreamInfo | ConsumerInfo, P extends Plan>(
  jsm: JetStreamManager,
  k: Inspector<A, P>,
  policy: MarkerPolicy,
): Promise<{ plan: P; actual?: A; ownership: Ownership; serverVersion?: string }> {
  const serverVersion = connectedServerVersion(jsm);
  const ctx: PlanContext = { serverVersion };
  // An invalid spec is refused before any JetStream call.
  const preflight = await k.plan(undefined, ctx, undefined);
  if (preflight.action === 'refuse') return { plan: preflight, ownership: { state: 'absent' }, serverVersion };

  const actual = await k.read();
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
  return { plan: await k.plan(actual, ctx, marker), actual, ownership, serverVersion };
}

export function inspect(jsm: JetStreamManager, d: Desired, policy: MarkerPolicy): Promise<Inspection> {
  if (d.kind === 'Stream') {
    return inspectWith(
      jsm,
      {
        read: () => readStream(jsm, d.spec.name),
        plan: (actual: StreamInfo | undefined, ctx, marker) => planStream(withMarker(d.spec, marker), actual, ctx),
      },
      policy,
    );
  }
  return inspectWith(
    jsm,
    {
      read: () => readConsumer(jsm, d.spec.streamName, d.spec.durableName),
      plan: async (actual: ConsumerInfo | undefined, ctx, marker) => {
        // The stream's consumer_limits (2.10+) decide the defaults the server fills in.
        if (actual && atLeast(serverOf(ctx), V2_10)) ctx.stream = (await readStream(jsm, d.spec.streamName))?.config;
        return planConsumer(withMarker(d.spec, marker), actual, ctx);
      },
    },
    policy,
  );
}
