/**
 * One reconcile of one resource key: read JetStream and decide ownership, keep the finalizer in
 * step (only a resource that will delete its JetStream object carries one), apply the kit's plan —
 * or only report it (observe mode, preventUpdate) —, then the status and an Event. Kubernetes
 * glue only: the decisions (plan, refuse, recreate-needed) are the kit's, ownership is ownership.ts.
 *
 * Every reconcile ends with the truth in the status: an error (JetStream away, a lookup failing)
 * writes Ready=False with the reason and drops the live numbers, instead of leaving the last good
 * condition in place.
 */
import {
  applyConsumerPlan,
  applyStreamPlan,
  atLeast,
  connectedServerVersion,
  deleteConsumer,
  deleteStream,
  readConsumer,
  readStream,
  serverOf,
  type ApplyResult,
  type ConsumerPlan,
  type StreamPlan,
  type StreamSpec,
} from '@orderflow/kit';
import type { ConsumerInfo, JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { ConnectionResolver } from './connections.js';
import { ensureDeadLetterStream } from './dead-letter-stream.js';
import type { EventRecorder, OperatorEvent } from './events.js';
import { inspect, type Inspection, type MarkerPolicy } from './inspect.js';
import { apiError, apiStatus, isForbidden, type KubeApi } from './kube-api.js';
import type { OperatorMetrics } from './metrics.js';
import { decideOwnership, isAdoptRequested, mayManage, ownerId, ownershipProblem, type Ownership } from './ownership.js';
import { FINALIZER, parseKey, type Kind, type Resource, type ResourceStatus } from './resources.js';
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

export interface ReconcilerDeps {
  /** Each resource's JetStream handle: its NatsConnection's, or the operator's default one. */
  connections: ConnectionResolver;
  api: KubeApi;
  /** The informer cache: the latest seen object, or undefined once it is gone. */
  get(kind: Kind, namespace: string, name: string): Resource | undefined;
  /** Every cached resource of a kind. */
  list(kind: Kind): Resource[];
  /** The namespace watched; every namespace when undefined (decides whether a missing owner is known to be gone). */
  watchNamespace?: string;
  mode?: OperatorMode;
  events?: EventRecorder;
  /** False once this instance lost the Lease: no write is started after that. */
  leading?: () => boolean;
  metrics: OperatorMetrics;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
}

/** The operator's own flags beside the JetStream fields. */
interface Flags {
  preventDelete?: boolean;
  preventUpdate?: boolean;
}
const flags = (obj: Resource): Flags => obj.spec as Flags;

type Live = Pick<ResourceStatus, 'messages' | 'numPending' | 'numAckPending'>;

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

export function createReconciler(deps: ReconcilerDeps): (key: string) => Promise<HandlerResult> {
  const { api, metrics, log } = deps;
  const mode = deps.mode ?? 'manage';

  const ownerGone =
    (kind: Kind) =>
    (owner: string): boolean => {
      const [namespace, name] = owner.split('/');
      if (!namespace || !name) return false;
      if (deps.watchNamespace !== undefined && namespace !== deps.watchNamespace) return false;
      return deps.get(kind, namespace, name) === undefined;
    };

  function markerPolicy(obj: Resource): MarkerPolicy {
    const meta = obj.metadata!;
    const facts = {
      me: ownerId(meta.namespace!, meta.name!),
      adopt: isAdoptRequested(meta.annotations),
      legacy: (meta.finalizers ?? []).includes(FINALIZER),
      ownerGone: ownerGone(obj.kind),
    };
    return mode === 'manage' ? { mode: 'own', ...facts } : { mode: 'keep', ...facts };
  }

  const desired = (obj: Resource) =>
    obj.kind === 'Stream' ? { kind: 'Stream' as const, spec: obj.spec } : { kind: 'Consumer' as const, spec: obj.spec };

  async function setFinalizer(obj: Resource, want: boolean): Promise<void> {
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

  /** The object the resource names, if any, and whether this resource may delete it (its marker names it, or the server keeps no markers). */
  async function deletable(jsm: JetStreamManager, obj: Resource): Promise<{ exists: boolean; owned: boolean; ownership?: Ownership }> {
    const actual: StreamInfo | ConsumerInfo | undefined =
      obj.kind === 'Stream' ? await readStream(jsm, obj.spec.name) : await readConsumer(jsm, obj.spec.streamName, obj.spec.durableName);
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

  async function finalize(jsm: JetStreamManager | undefined, obj: Resource, unreachable?: string): Promise<void> {
    const meta = obj.metadata!;
    if (!(meta.finalizers ?? []).includes(FINALIZER)) return;
    const what = obj.kind === 'Stream' ? `stream ${obj.spec.name}` : `consumer ${obj.spec.streamName}/${obj.spec.durableName}`;
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
        if (obj.kind === 'Stream') await deleteStream(jsm, obj.spec.name);
        else await deleteConsumer(jsm, obj.spec.streamName, obj.spec.durableName);
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

  function liveOf(jsm: JetStreamManager, kind: Kind, r: { stream?: StreamInfo; consumer?: ConsumerInfo }): Promise<Live> | Live {
    if (kind === 'Consumer') return r.consumer ? { numPending: r.consumer.num_pending, numAckPending: r.consumer.num_ack_pending } : {};
    const s = r.stream;
    if (!s) return {};
    return (async () => {
      const live: Live = { messages: s.state.messages, numPending: 0, numAckPending: 0 };
      for await (const ci of jsm.consumers.list(s.config.name)) {
        live.numPending! += ci.num_pending;
        live.numAckPending! += ci.num_ack_pending;
      }
      return live;
    })();
  }

  const asLive = (jsm: JetStreamManager, kind: Kind, actual: StreamInfo | ConsumerInfo | undefined): Promise<Live> | Live =>
    liveOf(jsm, kind, kind === 'Stream' ? { stream: actual as StreamInfo | undefined } : { consumer: actual as ConsumerInfo | undefined });

  async function apply(jsm: JetStreamManager, ins: Inspection): Promise<ApplyResult> {
    return ins.plan.kind === 'Stream'
      ? applyStreamPlan(jsm, ins.plan as StreamPlan, ins.actual as StreamInfo | undefined)
      : applyConsumerPlan(jsm, ins.plan as ConsumerPlan, ins.actual as ConsumerInfo | undefined);
  }

  /** Consumers with deadLetter: a stream to catch the dead letters, before the consumer can produce any. */
  async function deadLetterReady(jsm: JetStreamManager, obj: Resource): Promise<Verdict | undefined> {
    if (obj.kind !== 'Consumer' || !obj.spec.deadLetter?.subject) return undefined;
    const gen = obj.metadata!.generation;
    const source = await readStream(jsm, obj.spec.streamName);
    if (!source) return verdict(false, 'ApplyFailed', `stream ${obj.spec.streamName} does not exist`, gen);
    const declared: StreamSpec[] = deps.list('Stream').map((s) => s.spec as StreamSpec);
    const r = await ensureDeadLetterStream(jsm, { subject: obj.spec.deadLetter.subject, source, declared });
    if (r.ok) {
      if (r.created) log.info({ stream: r.stream, replicas: source.config.num_replicas }, 'dead-letter stream created');
      return undefined;
    }
    return verdict(false, r.reason, r.message, gen);
  }

  async function reconcileLive(jsm: JetStreamManager, obj: Resource): Promise<Outcome> {
    const meta = obj.metadata!;
    const gen = meta.generation;
    const ins = await inspect(jsm, desired(obj), markerPolicy(obj));
    const { plan } = ins;
    if (plan.action === 'refuse') return { label: 'refused', condition: observedCondition(plan, gen), live: {}, requeue: false };

    // Observe mode writes nothing, so an unmarked object is simply compared; another resource's is still reported.
    const problem =
      mode === 'observe' && ins.ownership.state === 'unmarked'
        ? undefined
        : ownershipProblem(ins.ownership, `${plan.kind === 'Stream' ? 'stream' : 'consumer'} ${plan.key}`);
    if (problem) {
      // Never ours to delete: no finalizer holds the resource.
      if (mode === 'manage') await setFinalizer(obj, false);
      return { label: 'refused', condition: verdict(false, problem.reason, problem.message, gen), live: {}, requeue: false };
    }

    if (mode === 'observe') {
      await setFinalizer(obj, false);
      return { label: 'observed', condition: observedCondition(plan, gen), live: await asLive(jsm, obj.kind, ins.actual), requeue: false };
    }

    // Before JetStream is touched, so a resource deleted right after its object was made still
    // deletes it; and only where deleting the resource will delete the object — a finalizer
    // nothing would act on only keeps a resource Terminating once the operator is gone.
    await setFinalizer(obj, !flags(obj).preventDelete && mayManage(ins.ownership));

    if (flags(obj).preventUpdate && ins.actual && (plan.action === 'update' || plan.action === 'recreate-needed')) {
      return {
        label: 'prevented',
        condition: preventedCondition(plan, gen),
        live: await asLive(jsm, obj.kind, ins.actual),
        requeue: false,
      };
    }
    if (plan.action === 'create' || plan.action === 'update') {
      const blocked = await deadLetterReady(jsm, obj);
      if (blocked)
        return {
          label: 'failed',
          condition: blocked,
          live: await asLive(jsm, obj.kind, ins.actual),
          requeue: true,
          error: blocked.message,
        };
    } else if (plan.action === 'noop' && obj.kind === 'Consumer') {
      // The dead-letter stream may have been removed since the consumer was made.
      const blocked = await deadLetterReady(jsm, obj);
      if (blocked)
        return {
          label: 'failed',
          condition: blocked,
          live: await asLive(jsm, obj.kind, ins.actual),
          requeue: true,
          error: blocked.message,
        };
    }

    const result = await apply(jsm, ins);
    const condition = readyCondition(result, gen);
    const live = await liveOf(jsm, obj.kind, result);
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
    // A failed apply (server rejected, stream missing) is retried with backoff; a refused one
    // waits for a spec change (or the next resync).
    return { label: result.outcome, condition, live, requeue: result.outcome === 'failed', error: result.error, event };
  }

  /** Level-based: writes only when the status differs by value from what the server holds. */
  async function writeStatus(obj: Resource, status: ResourceStatus): Promise<boolean> {
    const meta = obj.metadata!;
    if (sameStatus(obj.status, status)) return false;
    await api.patchStatus(obj.kind, meta.namespace!, meta.name!, statusPatch(obj.status, status));
    return true;
  }

  const statusOf = (obj: Resource, condition: Verdict, live: Live): ResourceStatus => ({
    observedGeneration: obj.metadata!.generation,
    conditions: [withTransitionTime(condition, obj.status?.conditions)],
    ...live,
  });

  /** A refusal or a failure is an event once, when the condition changes to it — not on every resync. */
  function changedTo(obj: Resource, c: Verdict): boolean {
    const prev = obj.status?.conditions?.find((x) => x.type === 'Ready');
    return !prev || prev.status !== c.status || prev.reason !== c.reason || prev.message !== c.message;
  }

  /**
   * RBAC refused a call: a clear log line naming the verb and resource (the server's own
   * message), and — where the status subresource is still writable — Ready=False/Forbidden.
   */
  async function reportForbidden(key: string, obj: Resource, err: unknown): Promise<void> {
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
    const obj = deps.get(kind, namespace, name);
    if (!obj?.metadata || deps.leading?.() === false) return { requeue: false };
    const meta = obj.metadata;
    const end = metrics.duration.startTimer({ kind });
    try {
      if (meta.deletionTimestamp) {
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
      await writeStatus(obj, statusOf(obj, c, outcome.live));
      if (event) deps.events?.record(obj, event);
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
