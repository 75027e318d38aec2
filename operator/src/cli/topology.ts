/**
 * The CLI's plan and apply of Stream/Consumer/KeyValue/ObjectStore YAML, straight against NATS. Planned the way the
 * operator plans (operator/src/inspect.ts), so an object's ownership marker is kept, not seen as
 * drift; an object a Kubernetes resource owns (its marker names one) is left to the operator —
 * `orderflow` never fights it — unless `force`.
 */
import {
  applyBucketPlan,
  applyConsumerPlan,
  applyStreamPlan,
  readStream,
  subjectMatches,
  type ApplyResult,
  type KeyValueSpec,
  type ObjectStoreSpec,
  type Topology,
} from '@orderflow/kit';
import type { ConsumerInfo, JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import { inspectBucket, type BucketInspection, type DesiredBucket } from '../bucket-inspect.js';
import { ensureDeadLetterStream } from '../dead-letter-stream.js';
import { inspect, type Desired, type Inspection } from '../inspect.js';
import { OPERATOR_MARKER, OWNER_KEY } from '../ownership.js';

/** What a YAML file declares; buckets are optional so a plain Topology fits. */
export type Declared = Pick<Topology, 'streams' | 'consumers'> & {
  keyValues?: KeyValueSpec[];
  objectStores?: ObjectStoreSpec[];
};

const bucketsOf = (t: Declared): DesiredBucket[] => [
  ...(t.keyValues ?? []).map((spec) => ({ kind: 'KeyValue' as const, spec })),
  ...(t.objectStores ?? []).map((spec) => ({ kind: 'ObjectStore' as const, spec })),
];

export interface PlannedResource {
  desired: Desired | DesiredBucket;
  inspection: Inspection | BucketInspection;
  /** The resource named by the object's ownership marker, if any. */
  owner?: string;
}

const ownerOf = (i: Inspection | BucketInspection): string | undefined => {
  const o = i.actual?.config.metadata?.[OWNER_KEY];
  return o && o !== OPERATOR_MARKER ? o : undefined;
};

/** Read → ownership → plan for any declared object; the CLI keeps whatever marker it has. */
const inspectDeclared = (jsm: JetStreamManager, d: Desired | DesiredBucket): Promise<Inspection | BucketInspection> =>
  d.kind === 'KeyValue' || d.kind === 'ObjectStore' ? inspectBucket(jsm, d, { mode: 'keep' }) : inspect(jsm, d, { mode: 'keep' });

/** Streams first, then buckets, then consumers, as they would be applied. Reads only. */
export async function planTopology(jsm: JetStreamManager, topology: Declared): Promise<PlannedResource[]> {
  const declared: (Desired | DesiredBucket)[] = [
    ...topology.streams.map((spec) => ({ kind: 'Stream' as const, spec })),
    ...bucketsOf(topology),
    ...topology.consumers.map((spec) => ({ kind: 'Consumer' as const, spec })),
  ];
  const out: PlannedResource[] = [];
  for (const desired of declared) {
    const inspection = await inspectDeclared(jsm, desired);
    out.push({ desired, inspection, owner: ownerOf(inspection) });
  }
  return out;
}

/** Applies one inspected plan with the applier of its kind. */
function applyInspected(jsm: JetStreamManager, ins: Inspection | BucketInspection): Promise<ApplyResult> {
  switch (ins.plan.kind) {
    case 'Stream':
      return applyStreamPlan(jsm, ins.plan, ins.actual as StreamInfo | undefined);
    case 'Consumer':
      return applyConsumerPlan(jsm, ins.plan, ins.actual as ConsumerInfo | undefined);
    default:
      return applyBucketPlan(jsm, ins.plan, ins.actual as StreamInfo | undefined);
  }
}

/** Applies what planTopology found, re-planning each object just before (streams made first change what consumers see). */
export async function applyTopologyKeepingOwners(
  jsm: JetStreamManager,
  topology: Declared,
  opts: { force?: boolean } = {},
): Promise<ApplyResult[]> {
  const results: ApplyResult[] = [];
  const one = async (d: Desired | DesiredBucket): Promise<void> => {
    const ins = await inspectDeclared(jsm, d);
    const owner = ownerOf(ins);
    if (owner && !opts.force && (ins.plan.action === 'update' || ins.plan.action === 'recreate-needed')) {
      results.push({
        kind: d.kind,
        key: ins.plan.key,
        action: ins.plan.action,
        outcome: 'refused',
        reasons: [`owned by the Kubernetes resource ${owner}: left to the operator (--force to change it anyway)`, ...ins.plan.reasons],
      });
      return;
    }
    results.push(await applyInspected(jsm, ins));
  };
  for (const spec of topology.streams) await one({ kind: 'Stream', spec });
  for (const d of bucketsOf(topology)) await one(d);
  // A consumer's dead letters need a stream; the YAML normally declares it, otherwise derive one
  // as the operator does (the source stream's replicas; a failed lookup is an error, not "absent").
  const done = new Set<string>();
  for (const c of topology.consumers) {
    const subject = c.deadLetter?.subject;
    if (!subject || done.has(subject) || topology.streams.some((s) => s.subjects?.some((p) => subjectMatches(p, subject)))) continue;
    done.add(subject);
    const source = await readStream(jsm, c.streamName);
    if (!source) continue; // the consumer's own apply reports the missing stream
    const r = await ensureDeadLetterStream(jsm, { subject, source, declared: topology.streams });
    if (r.ok)
      results.push({
        kind: 'Stream',
        key: r.stream,
        action: r.created ? 'create' : 'noop',
        outcome: r.created ? 'created' : 'unchanged',
        reasons: [],
      });
    else results.push({ kind: 'Stream', key: subject, action: 'refuse', outcome: r.retry ? 'failed' : 'refused', reasons: [r.message] });
  }
  for (const spec of topology.consumers) await one({ kind: 'Consumer', spec });
  return results;
}
