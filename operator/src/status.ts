/** ApplyResult → the resource's status: Ready condition (reason + message) and live numbers. */
import { isDeepStrictEqual } from 'node:util';
import { JetStreamApiError } from '@nats-io/jetstream';
import { unavailableDependency, type ApplyResult, type Plan } from '@orderflow/kit';
import type { StatusPatch } from './kube-api.js';
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

export type Verdict = Omit<Condition, 'lastTransitionTime'>;

export const verdict = (ok: boolean, reason: string, message: string, generation: number | undefined): Verdict => ({
  type: 'Ready',
  status: ok ? 'True' : 'False',
  reason,
  message,
  observedGeneration: generation,
});

const what = (p: Plan): string => `${p.kind} ${p.key}`;

/**
 * A reconcile that could not finish (JetStream away, an unexpected error): Ready=False saying so,
 * instead of leaving the last good condition in place.
 */
/** The NATS permission error in an error's cause chain (nats.js wraps it in a RequestError). */
function permissionViolation(err: unknown): Error | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { name?: unknown }).name === 'PermissionViolationError') return e as Error;
  }
  return undefined;
}

export function errorCondition(err: unknown, generation: number | undefined): Verdict {
  const text = err instanceof Error ? err.message : String(err);
  const denied = permissionViolation(err);
  if (denied)
    return verdict(
      false,
      'PermissionDenied',
      `NATS refused the operator's user: ${denied.message}; grant it in the NATS authorization; retrying`,
      generation,
    );
  // 503 from the JetStream API: no quorum / JetStream temporarily unavailable.
  const away = unavailableDependency(err) === 'nats' || (err instanceof JetStreamApiError && err.status === 503);
  return away
    ? verdict(false, 'JetStreamUnavailable', `JetStream did not answer (${text}); retrying`, generation)
    : verdict(false, 'ReconcileError', `${text}; retrying`, generation);
}

/** Observe mode: what the operator would do, never done. */
export function observedCondition(p: Plan, generation: number | undefined): Verdict {
  switch (p.action) {
    case 'noop':
      return verdict(true, 'InSync', `${what(p)} matches the spec`, generation);
    case 'create':
      return verdict(false, 'Missing', `${what(p)} does not exist (observe mode: not created)`, generation);
    case 'update':
      return verdict(false, 'Drifted', `${what(p)} differs from the spec (observe mode: not updated): ${p.reasons.join('; ')}`, generation);
    case 'recreate-needed':
      return verdict(false, 'RecreateNeeded', p.reasons.join('; '), generation);
    case 'refuse':
      return verdict(false, 'InvalidSpec', p.reasons.join('; '), generation);
  }
}

/** preventUpdate: the object is there and in use; the differences are reported, not applied. */
export const preventedCondition = (p: Plan, generation: number | undefined): Verdict =>
  verdict(
    true,
    'UpdatePrevented',
    `${what(p)} differs from the spec and is not updated (preventUpdate): ${p.reasons.join('; ')}`,
    generation,
  );

/** Keeps lastTransitionTime when the condition's status did not change (Kubernetes convention). */
export function withTransitionTime(
  c: Omit<Condition, 'lastTransitionTime'>,
  previous: Condition[] | undefined,
  now = new Date(),
): Condition {
  const prev = previous?.find((p) => p.type === c.type);
  return { ...c, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : now.toISOString() };
}

/** The reason and message of a Ready=False condition for an API call RBAC refused. */
export function forbiddenCondition(message: string, generation: number | undefined): Omit<Condition, 'lastTransitionTime'> {
  return {
    type: 'Ready',
    status: 'False',
    reason: 'Forbidden',
    message: `the operator's RBAC does not allow it: ${message}`,
    observedGeneration: generation,
  };
}

/** JSON as the API server stores it: undefined members dropped. */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x ?? {})) as unknown;

/**
 * True when writing `next` would change nothing, so no write is made (a write moves
 * resourceVersion and wakes every watcher). Compared by value: the API server returns objects
 * with its own key order (Go maps marshal sorted), never the order we wrote.
 */
export function sameStatus(current: ResourceStatus | undefined, next: ResourceStatus): boolean {
  return isDeepStrictEqual(plain(current), plain(next));
}

/**
 * The merge patch that turns `current` into `next`: every key of `next`, and null for a key that
 * `next` no longer has (a merge patch otherwise keeps it, e.g. live numbers that are unknown now).
 */
export function statusPatch(current: ResourceStatus | undefined, next: ResourceStatus): StatusPatch {
  const patch = plain(next) as StatusPatch;
  for (const k of Object.keys(current ?? {}) as (keyof ResourceStatus)[]) if (!(k in patch)) patch[k] = null;
  return patch;
}
