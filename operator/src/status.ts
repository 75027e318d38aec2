/** ApplyResult → the resource's status: Ready condition (reason + message) and live numbers. */
import type { ApplyResult } from '@orderflow/kit';
import type { Condition, ResourceStatus } from './resources.js';

const REASON: Record<ApplyResult['outcome'], string> = {
  created: 'Created',
  updated: 'Updated',
  unchanged: 'InSync',
  refused: 'Refused',
  failed: 'ApplyFailed',
};

export function readyCondition(r: ApplyResult, generation: number | undefined): Omit<Condition, 'lastTransitionTime'> {
  const ok = r.outcome === 'created' || r.outcome === 'updated' || r.outcome === 'unchanged';
  let reason = REASON[r.outcome];
  if (r.action === 'refuse') reason = 'InvalidSpec';
  if (r.action === 'recreate-needed') reason = 'RecreateNeeded';
  const message = ok
    ? r.outcome === 'unchanged'
      ? `${r.kind} ${r.key} matches the spec`
      : `${r.kind} ${r.key} ${r.outcome}${r.reasons.length && r.outcome === 'updated' ? `: ${r.reasons.join('; ')}` : ''}`
    : r.reasons.join('; ') || r.error || r.outcome;
  return { type: 'Ready', status: ok ? 'True' : 'False', reason, message, observedGeneration: generation };
}

/** Keeps lastTransitionTime when the condition's status did not change (Kubernetes convention). */
export function withTransitionTime(c: Omit<Condition, 'lastTransitionTime'>, previous: Condition[] | undefined, now = new Date()): Condition {
  const prev = previous?.find((p) => p.type === c.type);
  return { ...c, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : now.toISOString() };
}

/** True when a status patch would change nothing (avoids a watch event → reconcile loop). */
export function sameStatus(a: ResourceStatus | undefined, b: ResourceStatus): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b);
}
