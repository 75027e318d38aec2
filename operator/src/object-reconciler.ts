/**
 * One reconcile of one resource key, for every kind whose resource names one JetStream object
 * (Stream, Consumer, KeyValue, ObjectStore): read JetStream and decide ownership, keep the
 * finalizer in step (only a resource that will delete its JetStream object carries one), apply the
 * kit's plan — or only report it (observe mode, preventUpdate) —, then the status and an Event.
 * What differs between kinds (how the object is read, planned, applied, deleted, and which live
 * numbers its status shows) comes in an ObjectKind (reconciler.ts, bucket-reconciler.ts); the
 * decisions (plan, refuse, recreate-needed) are the kit's, ownership is ownership.ts.
 *
 * Every reconcile ends with the truth in the status: an error (JetStream away, a lookup failing)
 * writes Ready=False with the reason and drops the live numbers, instead of leaving the last good
 * condition in place.
 */
import { atLeast, connectedServerVersion, serverOf, type ApplyResult, type Plan } from '@orderflow/kit';
import type { ConsumerInfo, JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { BucketResource, BucketStatus } from './bucket-resources.js';
import type { OperatorEvent } from './events.js';
import type { MarkerPolicy } from './inspect.js';
import { apiError, apiStatus, isForbidden, type KubeApi, type StatusPatch } from './kube-api.js';
import type { OperatorMetrics } from './metrics.js';
import { decideOwnership, isAdoptRequested, mayManage, ownerId, ownershipProblem, type Ownership } from './ownership.js';
import { FINALIZER, parseKey, type Resource } from './resources.js';
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

/** `manage`: create, update and delete JetStream objects; `observe`: read and report only. */
export type OperatorMode = 'manage' | 'observe';

export type ObjectResource = Resource | BucketResource;
type Actual = StreamInfo | ConsumerInfo;

/** The live numbers a status shows beside its condition (each kind sets its own). */
export type Live = Pick<BucketStatus, 'messages' | 'bytes' | 'numPending' | 'numAckPending'>;

/** Read → ownership → plan for one resource (inspect.ts). */
export interface ObjectInspection {
  plan: Plan;
  actual?: Actual;
  ownership: Ownership;
}

/** What one kind of resource does differently; the reconcile around it is the same for all. */
export interface ObjectKind<R extends ObjectResource> {
  /** How messages, logs and events name the JetStream object of a kind and key: "stream orders". */
  describe(kind: R['kind'], key: string): string;
  /** The key of the JetStream object the resource names (its plan's key). */
  key(obj: R): string;
  /** Whether our finalizer on the resource stands for a marker (Streams and Consumers made before markers). */
  legacy(obj: R): boolean;
  inspect(jsm: JetStreamManager, obj: R, policy: MarkerPolicy): Promise<ObjectInspection>;
  /** The object the resource names, or undefined when there is none. */
  read(jsm: JetStreamManager, obj: R): Promise<Actual | undefined>;
  remove(jsm: JetStreamManager, obj: R): Promise<unknown>;
  apply(jsm: JetStreamManager, ins: ObjectInspection): Promise<ApplyResult>;
  /** What the server holds after an apply. */
  applied(result: ApplyResult): Actual | undefined;
  live(jsm: JetStreamManager, obj: R, actual: Actual | undefined): Promise<Live> | Live;
  /** A condition that holds the apply back (a consumer's dead-letter stream missing); undefined to go on. */
  blocked?(jsm: JetStreamManager, obj: R): Promise<Verdict | undefined>;
}

/** The operator's own flags beside the JetStream fields. */
interface Flags {
  preventDelete?: boolean;
  preventUpdate?: boolean;
}
const flags = (obj: ObjectResource): Flags => obj.spec as Flags;

/** Where a resource's JetStream handle comes from (the operator's connection resolver fits). */
export interface ObjectConnections {
  resolve(
    obj: KubernetesObject & { spec?: unknown },
  ): Promise<{ ok: true; handle: { jsm: JetStreamManager } } | { ok: false; reason: string; message: string }>;
  /** A resource being deleted whose connection is gone for good: the handle last built for it, if still open. */
  lastKnown(obj: KubernetesObject & { spec?: unknown }): { jsm: JetStreamManager } | undefined;
}

export interface ObjectReconcilerDeps<R extends ObjectResource> {
  /** Each resource's JetStream handle: its NatsConnection's, or the operator's default one. */
  connections: ObjectConnections;
  api: Pick<KubeApi, 'patchStatus' | 'setFinalizers'>;
  /** The informer cache: the latest seen object, or undefined once it is gone. */
  get(kind: R['kind'], namespace: string, name: string): R | undefined;
  /** The namespace watched; every namespace when undefined (decides whether a missing owner is known to be gone). */
  watchNamespace?: string;
  mode?: OperatorMode;
  events?: { record(obj: R, e: OperatorEvent): void };
  /** False once this instance lost the Lease: no write is started after that. */
  leading?: () => boolean;
  metrics: OperatorMetrics;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
}

/** What one reconcile concluded. */
interface Outcome {
  /** The metric's outcome label. */
  label: string;
  condition: Verdict;
  live: Live;
  requeue: boolean;
  error?: unknown;
  /** An event for what was done (created, updated…); refusals get one when their condition changes. */
  event?: OperatorEvent;
}

/** A 409 from a finalizer write: our view is stale, the queue retries with the newer object. */
class StaleView extends Error {}

export function createObjectReconciler<R extends ObjectResource>(
  deps: ObjectReconcilerDeps<R>,
  k: ObjectKind<R>,
): (key: string) => Promise<HandlerResult> {
  const { api, metrics, log } = deps;
  const mode = deps.mode ?? 'manage';

  function markerPolicy(obj: R): MarkerPolicy {
    const meta = obj.metadata!;
    const facts = {
      me: ownerId(meta.namespace!, meta.name!),
      adopt: isAdoptRequested(meta.annotations),
      legacy: k.legacy(obj),
      ownerGone: (owner: string): boolean => {
        const [namespace, name] = owner.split('/');
        if (!namespace || !name) return false;
        if (deps.watchNamespace !== undefined && namespace !== deps.watchNamespace) return false;
        return deps.get(obj.kind, namespace, name) === undefined;
      },
    };
    return mode === 'manage' ? { mode: 'own', ...facts } : { mode: 'keep', ...facts };
  }

  async function setFinalizer(obj: R, want: boolean): Promise<void> {
    const meta = obj.metadata!;
    const has = (meta.finalizers ?? []).includes(FINALIZER);
    if (has === want) return;
    const finalizers = want ? [...(meta.finalizers ?? []), FINALIZER] : (meta.finalizers ?? []).filter((f) => f !== FINALIZER);
    try {
      const rv = await api.setFinalizers(obj.kind, meta.namespace!, meta.name!, finalizers, meta.resourceVersion!);
      // The reconcile's own copy follows its write, so its status write is not refused as stale.
      meta.finalizers = finalizers;
      meta.resourceVersion = rv;
    } catch (err) {
      if (apiStatus(err) === 409) throw new StaleView(`${obj.kind} ${meta.namespace}/${meta.name} changed meanwhile`);
      throw err;
    }
  }

  /**
   * The object the resource names, if any, and whether this resource may delete it (its marker
   * names it, or the server keeps no markers).
   */
  async function deletable(jsm: JetStreamManager, obj: R): Promise<{ exists: boolean; owned: boolean; ownership?: Ownership }> {
    const actual = await k.read(jsm, obj);
    if (!actual) return { exists: false, owned: false };
    const meta = obj.metadata!;
    const ownership = decideOwnership({
      exists: true,
      metadata: actual.config.metadata ?? undefined,
      markers: atLeast(serverOf({ serverVersion: connectedServerVersion(jsm) }), [2, 10, 0]),
      me: ownerId(meta.namespace!, meta.name!),
      adopt: false,
      legacy: false,
      ownerGone: () => false,
    });
    return { exists: true, owned: ownership.state === 'ours' || ownership.state === 'untracked', ownership };
  }

  async function finalize(jsm: JetStreamManager | undefined, obj: R, unreachable?: string): Promise<void> {
    const meta = obj.metadata!;
    if (!(meta.finalizers ?? []).includes(FINALIZER)) return;
    const what = k.describe(obj.kind, k.key(obj));
    let event: OperatorEvent;
    if (mode === 'observe') {
      event = { type: 'Normal', reason: 'Kept', action: 'Keep', note: `${what} kept: the operator runs in observe mode` };
    } else if (flags(obj).preventDelete) {
      event = { type: 'Normal', reason: 'Kept', action: 'Keep', note: `${what} kept (preventDelete)` };
    } else if (!jsm) {
      // Its NatsConnection or a Secret of it is gone for good: nothing could ever delete the object.
      event = { type: 'Warning', reason: 'Kept', action: 'Keep', note: `${what} kept: ${unreachable ?? 'no connection'}` };
    } else {
      const d = await deletable(jsm, obj);
      if (d.exists && d.owned) {
        await k.remove(jsm, obj);
        event = { type: 'Normal', reason: 'Deleted', action: 'Delete', note: `${what} deleted` };
      } else if (d.exists) {
        const owner =
          d.ownership?.state === 'foreign' ? `the resource ${d.ownership.owner}` : 'no resource (not created or adopted by this one)';
        event = { type: 'Normal', reason: 'Kept', action: 'Keep', note: `${what} kept: it belongs to ${owner}` };
      } else {
        event = { type: 'Normal', reason: 'Deleted', action: 'Delete', note: `${what} was already gone` };
      }
    }
    log.info({ kind: obj.kind, name: meta.name, namespace: meta.namespace, outcome: event.reason }, event.note);
    await setFinalizer(obj, false);
    deps.events?.record(obj, event);
  }

  async function reconcileLive(jsm: JetStreamManager, obj: R): Promise<Outcome> {
    const meta = obj.metadata!;
    const gen = meta.generation;
    const ins = await k.inspect(jsm, obj, markerPolicy(obj));
    const { plan } = ins;
    if (plan.action === 'refuse') return { label: 'refused', condition: observedCondition(plan, gen), live: {}, requeue: false };

    // Observe mode writes nothing, so an unmarked object is simply compared; another resource's is still reported.
    const problem =
      mode === 'observe' && ins.ownership.state === 'unmarked'
        ? undefined
        : ownershipProblem(ins.ownership, k.describe(plan.kind, plan.key));
    if (problem) {
      // Never ours to delete: no finalizer holds the resource.
      if (mode === 'manage') await setFinalizer(obj, false);
      return { label: 'refused', condition: verdict(false, problem.reason, problem.message, gen), live: {}, requeue: false };
    }

    if (mode === 'observe') {
      await setFinalizer(obj, false);
      return { label: 'observed', condition: observedCondition(plan, gen), live: await k.live(jsm, obj, ins.actual), requeue: false };
    }

    // Before JetStream is touched, so a resource deleted right after its object was made still
    // deletes it; and only where deleting the resource will delete the object — a finalizer
    // nothing would act on only keeps a resource Terminating once the operator is gone.
    await setFinalizer(obj, !flags(obj).preventDelete && mayManage(ins.ownership));

    if (flags(obj).preventUpdate && ins.actual && (plan.action === 'update' || plan.action === 'recreate-needed')) {
      return { label: 'prevented', condition: preventedCondition(plan, gen), live: await k.live(jsm, obj, ins.actual), requeue: false };
    }
    // A noop too: what the apply needs (a dead-letter stream) may have gone since the object was made.
    if (plan.action === 'create' || plan.action === 'update' || plan.action === 'noop') {
      const blocked = await k.blocked?.(jsm, obj);
      if (blocked) {
        const live = await k.live(jsm, obj, ins.actual);
        return { label: 'failed', condition: blocked, live, requeue: true, error: blocked.message };
      }
    }

    const result = await k.apply(jsm, ins);
    const condition = readyCondition(result, gen);
    const live = await k.live(jsm, obj, k.applied(result));
    if (result.outcome !== 'unchanged')
      log.info(
        { key: `${obj.kind}/${meta.namespace}/${meta.name}`, action: result.action, outcome: result.outcome, reasons: result.reasons },
        'reconciled',
      );
    const adopted = ins.ownership.state === 'adopt' && (result.outcome === 'updated' || result.outcome === 'unchanged');
    let event: OperatorEvent | undefined;
    if (result.outcome === 'created') event = { type: 'Normal', reason: 'Created', action: 'Create', note: condition.message };
    else if (adopted) {
      const from = ins.ownership.state === 'adopt' && ins.ownership.from ? ` from ${ins.ownership.from}` : '';
      event = {
        type: 'Normal',
        reason: 'Adopted',
        action: 'Adopt',
        note: `${plan.kind} ${plan.key} taken over${from}: ${condition.message}`,
      };
    } else if (result.outcome === 'updated') event = { type: 'Normal', reason: 'Updated', action: 'Update', note: condition.message };
    // A failed apply (server rejected, stream missing) is retried with backoff; a refused one
    // waits for a spec change (or the next resync).
    return { label: result.outcome, condition, live, requeue: result.outcome === 'failed', error: result.error, event };
  }

  /**
   * Level-based: writes only when the status differs by value from the copy it was computed from,
   * and only onto that copy (resourceVersion precondition). An informer copy older than this
   * process's last write would otherwise rewrite it — a lastTransitionTime taken from an older
   * condition, a count from before — and the next fresh copy would write it back: a status that
   * changes on resyncs where nothing did.
   */
  async function writeStatus(obj: R, status: BucketStatus): Promise<void> {
    const meta = obj.metadata!;
    if (sameStatus(obj.status, status)) return;
    try {
      await api.patchStatus(obj.kind, meta.namespace!, meta.name!, statusPatch(obj.status, status) as StatusPatch, meta.resourceVersion);
    } catch (err) {
      if (apiStatus(err) === 409) throw new StaleView(`${obj.kind} ${meta.namespace}/${meta.name} changed meanwhile`);
      throw err;
    }
  }

  /**
   * The last verdict reached per key in this process. The informer's copy of the status can lag
   * the write this process just made (a requeue that runs before the watch event arrives), so the
   * status alone would announce the same refusal twice.
   */
  const lastVerdict = new Map<string, string>();

  const signature = (c: Verdict): string => `${c.status}|${c.reason}|${c.message}`;

  /**
   * A refusal or a failure is an event once, when the condition changes to it — not on every
   * resync. Remembered only once its status is written (a stale write is retried, and announces it).
   */
  function changedTo(key: string, obj: R, c: Verdict): boolean {
    if (lastVerdict.get(key) === signature(c)) return false;
    const prev = obj.status?.conditions?.find((x) => x.type === 'Ready');
    return !prev || prev.status !== c.status || prev.reason !== c.reason || prev.message !== c.message;
  }

  /**
   * RBAC refused a call: a clear log line naming the verb and resource (the server's own
   * message), and — where the status subresource is still writable — Ready=False/Forbidden.
   * Every kind keeps the live numbers last written: they are what JetStream said at the last read
   * (JetStream was not the problem), so printer columns keep their meaning, and the condition says
   * why they are not being refreshed.
   */
  async function reportForbidden(key: string, obj: R, err: unknown): Promise<void> {
    const e = apiError(err);
    log.error(
      { key, status: e.status, reason: e.reason, err: e.message },
      'forbidden by RBAC: grant the operator this verb in its Role; requeued',
    );
    const meta = obj.metadata!;
    try {
      await writeStatus(obj, {
        ...obj.status,
        observedGeneration: meta.generation,
        conditions: [withTransitionTime(forbiddenCondition(e.message, meta.generation), obj.status?.conditions)],
      });
    } catch (statusErr) {
      log.error({ key, err: apiError(statusErr).message }, 'could not write the Forbidden condition either');
    }
  }

  return async function reconcile(key: string): Promise<HandlerResult> {
    const { kind, namespace, name } = parseKey(key);
    const cached = deps.get(kind as R['kind'], namespace, name);
    // Its own metadata: the reconcile's writes move its resourceVersion, never the informer's copy.
    const obj = cached?.metadata ? ({ ...cached, metadata: { ...cached.metadata } } as R) : cached;
    // Gone without a finalizer of ours (a refused resource has none): nothing to remember of it.
    if (!obj?.metadata) lastVerdict.delete(key);
    if (!obj?.metadata || deps.leading?.() === false) return { requeue: false };
    const meta = obj.metadata;
    const end = metrics.duration.startTimer({ kind });
    try {
      if (meta.deletionTimestamp) {
        lastVerdict.delete(key);
        if (!(meta.finalizers ?? []).includes(FINALIZER)) return { requeue: false };
        if (mode === 'observe' || flags(obj).preventDelete) {
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
        // A gone NatsConnection or Secret: the connection last built for it, while it is open.
        const jsm = r.ok ? r.handle.jsm : deps.connections.lastKnown(obj)?.jsm;
        await finalize(jsm, obj, r.ok ? undefined : r.message);
        metrics.reconciles.inc({ kind, outcome: 'deleted' });
        return { requeue: false };
      }
      let outcome: Outcome;
      try {
        const r = await deps.connections.resolve(obj);
        // No connection (missing, not ready, its Secret missing): said in the status, retried.
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
      // What was done in JetStream happened, whatever becomes of the status write below.
      if (outcome.event) deps.events?.record(obj, outcome.event);
      const refusal =
        !outcome.event && changedTo(key, obj, c) && c.status === 'False'
          ? {
              type: 'Warning' as const,
              reason: c.reason,
              action: ['JetStreamUnavailable', 'ReconcileError', 'PermissionDenied', 'ConnectionUnavailable'].includes(c.reason)
                ? 'Reconcile'
                : 'Refuse',
              note: c.message,
            }
          : undefined;
      await writeStatus(obj, {
        observedGeneration: meta.generation,
        conditions: [withTransitionTime(c, obj.status?.conditions)],
        ...outcome.live,
      });
      lastVerdict.set(key, signature(c));
      if (refusal) deps.events?.record(obj, refusal);
      return outcome.requeue ? { requeue: true, error: outcome.error } : { requeue: false };
    } catch (err) {
      if (err instanceof StaleView) {
        log.debug({ key }, 'stale view of the resource; requeued');
        return { requeue: true, error: err };
      }
      metrics.errors.inc({ kind });
      if (isForbidden(err)) await reportForbidden(key, obj, err);
      else log.warn({ key, status: apiStatus(err), err: apiError(err).message }, 'reconcile error; requeued');
      return { requeue: true, error: err };
    } finally {
      end();
    }
  };
}
