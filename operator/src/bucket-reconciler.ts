/**
 * One reconcile of one KeyValue or ObjectStore resource, as reconciler.ts does it for streams:
 * the JetStream handle for the resource, ownership (the marker in the bucket stream's metadata),
 * the finalizer only where deleting the resource will delete the bucket, the kit's bucket plan
 * applied — or only reported (observe mode, preventUpdate) —, then the status (Ready with
 * observedGeneration, values and bytes) and an Event. Every reconcile ends with the truth in the
 * status: an error writes Ready=False with the reason.
 */
import { applyBucketPlan, atLeast, connectedServerVersion, deleteBucket, readBucket, serverOf, type ApplyResult } from '@orderflow/kit';
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { bucketLabel, type BucketKind, type BucketResource, type BucketStatus } from './bucket-resources.js';
import { inspectBucket } from './bucket-inspect.js';
import type { OperatorEvent } from './events.js';
import type { MarkerPolicy } from './inspect.js';
import { apiError, apiStatus, isForbidden, type KubeApi, type StatusPatch } from './kube-api.js';
import type { OperatorMetrics } from './metrics.js';
import { decideOwnership, isAdoptRequested, mayManage, ownerId, ownershipProblem } from './ownership.js';
import type { OperatorMode } from './reconciler.js';
import { FINALIZER, parseKey } from './resources.js';
import {
  errorCondition,
  forbiddenCondition,
  observedCondition,
  preventedCondition,
  readyCondition,
  sameStatus,
  statusPatch,
  verdict,
  withTransitionTime,
  type Verdict,
} from './status.js';
import type { HandlerResult } from './work-queue.js';

/** Where a resource's JetStream handle comes from (the operator's connection resolver fits). */
export interface BucketConnections {
  resolve(
    obj: KubernetesObject & { spec?: unknown },
  ): Promise<{ ok: true; handle: { jsm: JetStreamManager } } | { ok: false; reason: string; message: string }>;
  /** A resource being deleted whose connection is gone for good: the handle last built for it, if still open. */
  lastKnown(obj: KubernetesObject & { spec?: unknown }): { jsm: JetStreamManager } | undefined;
}

/** The operator's single connection as a BucketConnections (before connections can be named). */
export const fixedConnections = (jsm: JetStreamManager): BucketConnections => ({
  resolve: () => Promise.resolve({ ok: true, handle: { jsm } }),
  lastKnown: () => ({ jsm }),
});

export interface BucketReconcilerDeps {
  connections: BucketConnections;
  api: Pick<KubeApi, 'patchStatus' | 'setFinalizers'>;
  /** The informer cache: the latest seen object, or undefined once it is gone. */
  get(kind: BucketKind, namespace: string, name: string): BucketResource | undefined;
  /** The namespace watched; every namespace when undefined. */
  watchNamespace?: string;
  mode?: OperatorMode;
  events?: { record(obj: BucketResource, e: OperatorEvent): void };
  /** False once this instance lost the Lease: no write is started after that. */
  leading?: () => boolean;
  metrics: OperatorMetrics;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
}

type Live = Pick<BucketStatus, 'messages' | 'bytes'>;

interface Outcome {
  label: string;
  condition: Verdict;
  live: Live;
  requeue: boolean;
  error?: unknown;
  event?: OperatorEvent;
}

/** A 409 from a finalizer write: our view is stale, the queue retries with the newer object. */
class StaleView extends Error {}

const liveOf = (s: StreamInfo | undefined): Live => (s ? { messages: s.state.messages, bytes: s.state.bytes } : {});

export function createBucketReconciler(deps: BucketReconcilerDeps): (key: string) => Promise<HandlerResult> {
  const { api, metrics, log } = deps;
  const mode = deps.mode ?? 'manage';

  function markerPolicy(obj: BucketResource): MarkerPolicy {
    const meta = obj.metadata!;
    const facts = {
      me: ownerId(meta.namespace!, meta.name!),
      adopt: isAdoptRequested(meta.annotations),
      legacy: false,
      ownerGone: (owner: string): boolean => {
        const [namespace, name] = owner.split('/');
        if (!namespace || !name) return false;
        if (deps.watchNamespace !== undefined && namespace !== deps.watchNamespace) return false;
        return deps.get(obj.kind, namespace, name) === undefined;
      },
    };
    return mode === 'manage' ? { mode: 'own', ...facts } : { mode: 'keep', ...facts };
  }

  const desired = (obj: BucketResource) =>
    obj.kind === 'KeyValue' ? { kind: 'KeyValue' as const, spec: obj.spec } : { kind: 'ObjectStore' as const, spec: obj.spec };

  async function setFinalizer(obj: BucketResource, want: boolean): Promise<void> {
    const meta = obj.metadata!;
    const has = (meta.finalizers ?? []).includes(FINALIZER);
    if (has === want) return;
    const finalizers = want ? [...(meta.finalizers ?? []), FINALIZER] : (meta.finalizers ?? []).filter((f) => f !== FINALIZER);
    try {
      await api.setFinalizers(obj.kind, meta.namespace!, meta.name!, finalizers, meta.resourceVersion!);
    } catch (err) {
      if (apiStatus(err) === 409) throw new StaleView(`${obj.kind} ${meta.namespace}/${meta.name} changed meanwhile`);
      throw err;
    }
  }

  async function finalize(jsm: JetStreamManager | undefined, obj: BucketResource, unreachable?: string): Promise<void> {
    const meta = obj.metadata!;
    const what = bucketLabel(obj.kind, obj.spec.bucket);
    let event: OperatorEvent;
    if (mode === 'observe') {
      event = { type: 'Normal', reason: 'Kept', action: 'Keep', note: `${what} kept: the operator runs in observe mode` };
    } else if (obj.spec.preventDelete) {
      event = { type: 'Normal', reason: 'Kept', action: 'Keep', note: `${what} kept (preventDelete)` };
    } else if (!jsm) {
      event = { type: 'Warning', reason: 'Kept', action: 'Keep', note: `${what} kept: ${unreachable ?? 'no connection'}` };
    } else {
      const actual = await readBucket(jsm, obj.kind, obj.spec.bucket);
      const ownership = actual
        ? decideOwnership({
            exists: true,
            metadata: actual.config.metadata ?? undefined,
            markers: atLeast(serverOf({ serverVersion: connectedServerVersion(jsm) }), [2, 10, 0]),
            me: ownerId(meta.namespace!, meta.name!),
            adopt: false,
            legacy: false,
            ownerGone: () => false,
          })
        : undefined;
      if (ownership && (ownership.state === 'ours' || ownership.state === 'untracked')) {
        await deleteBucket(jsm, obj.kind, obj.spec.bucket);
        event = { type: 'Normal', reason: 'Deleted', action: 'Delete', note: `${what} deleted` };
      } else if (ownership) {
        const owner =
          ownership.state === 'foreign' ? `the resource ${ownership.owner}` : 'no resource (not created or adopted by this one)';
        event = { type: 'Normal', reason: 'Kept', action: 'Keep', note: `${what} kept: it belongs to ${owner}` };
      } else {
        event = { type: 'Normal', reason: 'Deleted', action: 'Delete', note: `${what} was already gone` };
      }
    }
    log.info({ kind: obj.kind, name: meta.name, namespace: meta.namespace, outcome: event.reason }, event.note);
    await setFinalizer(obj, false);
    deps.events?.record(obj, event);
  }

  async function reconcileLive(jsm: JetStreamManager, obj: BucketResource): Promise<Outcome> {
    const meta = obj.metadata!;
    const gen = meta.generation;
    const ins = await inspectBucket(jsm, desired(obj), markerPolicy(obj));
    const { plan } = ins;
    if (plan.action === 'refuse') return { label: 'refused', condition: observedCondition(plan, gen), live: {}, requeue: false };

    const problem =
      mode === 'observe' && ins.ownership.state === 'unmarked'
        ? undefined
        : ownershipProblem(ins.ownership, bucketLabel(plan.kind, plan.key));
    if (problem) {
      if (mode === 'manage') await setFinalizer(obj, false);
      return { label: 'refused', condition: verdict(false, problem.reason, problem.message, gen), live: {}, requeue: false };
    }
    if (mode === 'observe') {
      await setFinalizer(obj, false);
      return { label: 'observed', condition: observedCondition(plan, gen), live: liveOf(ins.actual), requeue: false };
    }
    // Before JetStream is touched, and only where deleting the resource will delete the bucket.
    await setFinalizer(obj, !obj.spec.preventDelete && mayManage(ins.ownership));
    if (obj.spec.preventUpdate && ins.actual && (plan.action === 'update' || plan.action === 'recreate-needed')) {
      return { label: 'prevented', condition: preventedCondition(plan, gen), live: liveOf(ins.actual), requeue: false };
    }

    const result: ApplyResult = await applyBucketPlan(jsm, plan, ins.actual);
    const condition = readyCondition(result, gen);
    if (result.outcome !== 'unchanged')
      log.info(
        { key: `${obj.kind}/${meta.namespace}/${meta.name}`, action: result.action, outcome: result.outcome, reasons: result.reasons },
        'reconciled',
      );
    const adopted = ins.ownership.state === 'adopt' && (result.outcome === 'updated' || result.outcome === 'unchanged');
    let event: OperatorEvent | undefined;
    if (result.outcome === 'created') event = { type: 'Normal', reason: 'Created', action: 'Create', note: condition.message };
    else if (adopted)
      event = {
        type: 'Normal',
        reason: 'Adopted',
        action: 'Adopt',
        note: `${plan.kind} ${plan.key} taken over${ins.ownership.state === 'adopt' && ins.ownership.from ? ` from ${ins.ownership.from}` : ''}: ${condition.message}`,
      };
    else if (result.outcome === 'updated') event = { type: 'Normal', reason: 'Updated', action: 'Update', note: condition.message };
    return {
      label: result.outcome,
      condition,
      live: liveOf(result.stream),
      requeue: result.outcome === 'failed',
      error: result.error,
      event,
    };
  }

  async function writeStatus(obj: BucketResource, status: BucketStatus): Promise<void> {
    const meta = obj.metadata!;
    if (sameStatus(obj.status, status)) return;
    await api.patchStatus(obj.kind, meta.namespace!, meta.name!, statusPatch(obj.status, status) as StatusPatch);
  }

  function changedTo(obj: BucketResource, c: Verdict): boolean {
    const prev = obj.status?.conditions?.find((x) => x.type === 'Ready');
    return !prev || prev.status !== c.status || prev.reason !== c.reason || prev.message !== c.message;
  }

  return async function reconcile(key: string): Promise<HandlerResult> {
    const { kind, namespace, name } = parseKey(key) as { kind: BucketKind; namespace: string; name: string };
    const obj = deps.get(kind, namespace, name);
    if (!obj?.metadata || deps.leading?.() === false) return { requeue: false };
    const meta = obj.metadata;
    const end = metrics.duration.startTimer({ kind });
    try {
      if (meta.deletionTimestamp) {
        if (!(meta.finalizers ?? []).includes(FINALIZER)) return { requeue: false };
        if (mode === 'observe' || obj.spec.preventDelete) {
          // Nothing to delete in JetStream: no connection is needed to let the resource go.
          await finalize(undefined, obj);
          metrics.reconciles.inc({ kind, outcome: 'deleted' });
          return { requeue: false };
        }
        const r = await deps.connections.resolve(obj);
        if (!r.ok && r.reason === 'ConnectionUnavailable') {
          log.warn({ key, reason: r.reason }, `cannot delete yet: ${r.message}`);
          return { requeue: true, error: r.message };
        }
        await finalize(r.ok ? r.handle.jsm : deps.connections.lastKnown(obj)?.jsm, obj, r.ok ? undefined : r.message);
        metrics.reconciles.inc({ kind, outcome: 'deleted' });
        return { requeue: false };
      }
      let outcome: Outcome;
      try {
        const r = await deps.connections.resolve(obj);
        outcome = r.ok
          ? await reconcileLive(r.handle.jsm, obj)
          : {
              label: 'unavailable',
              condition: verdict(false, r.reason, r.message, meta.generation),
              live: {},
              requeue: true,
              error: r.message,
            };
      } catch (err) {
        if (err instanceof StaleView || isForbidden(err)) throw err;
        metrics.errors.inc({ kind });
        log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'reconcile error; Ready=False, requeued');
        outcome = { label: 'error', condition: errorCondition(err, meta.generation), live: {}, requeue: true, error: err };
      }
      if (outcome.label !== 'error') metrics.reconciles.inc({ kind, outcome: outcome.label });
      const c = outcome.condition;
      const event =
        outcome.event ??
        (c.status === 'False' && changedTo(obj, c)
          ? {
              type: 'Warning' as const,
              reason: c.reason,
              action: ['JetStreamUnavailable', 'ReconcileError', 'PermissionDenied', 'ConnectionUnavailable'].includes(c.reason)
                ? 'Reconcile'
                : 'Refuse',
              note: c.message,
            }
          : undefined);
      await writeStatus(obj, {
        observedGeneration: meta.generation,
        conditions: [withTransitionTime(c, obj.status?.conditions)],
        ...outcome.live,
      });
      if (event) deps.events?.record(obj, event);
      return outcome.requeue ? { requeue: true, error: outcome.error } : { requeue: false };
    } catch (err) {
      if (err instanceof StaleView) {
        log.debug({ key }, 'stale view of the resource; requeued');
        return { requeue: true, error: err };
      }
      metrics.errors.inc({ kind });
      if (isForbidden(err)) {
        const e = apiError(err);
        log.error(
          { key, status: e.status, reason: e.reason, err: e.message },
          'forbidden by RBAC: grant the operator this verb in its Role; requeued',
        );
        try {
          await writeStatus(obj, {
            observedGeneration: meta.generation,
            conditions: [withTransitionTime(forbiddenCondition(e.message, meta.generation), obj.status?.conditions)],
          });
        } catch (statusErr) {
          log.error({ key, err: apiError(statusErr).message }, 'could not write the Forbidden condition either');
        }
      } else log.warn({ key, status: apiStatus(err), err: apiError(err).message }, 'reconcile error; requeued');
      return { requeue: true, error: err };
    } finally {
      end();
    }
  };
}
