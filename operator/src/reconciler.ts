/**
 * One reconcile of one resource key: finalizer bookkeeping, the kit's reconcile core, the
 * dead-letter stream, then status. Kubernetes-specific glue only — the decisions (plan, refuse,
 * recreate-needed) are the kit's.
 */
import {
  deleteConsumer,
  deleteStream,
  ensureDeadLetterStream,
  reconcileConsumer,
  reconcileStream,
  type ApplyResult,
} from '@orderflow/kit';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { apiError, apiStatus, isForbidden, type KubeApi } from './kube-api.js';
import type { OperatorMetrics } from './metrics.js';
import { FINALIZER, parseKey, type Kind, type Resource, type ResourceStatus } from './resources.js';
import { forbiddenCondition, readyCondition, sameStatus, statusPatch, withTransitionTime } from './status.js';
import type { HandlerResult } from './work-queue.js';

export interface ReconcilerDeps {
  jsm: JetStreamManager;
  api: KubeApi;
  /** The informer cache: the latest seen object, or undefined once it is gone. */
  get(kind: Kind, namespace: string, name: string): Resource | undefined;
  metrics: OperatorMetrics;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
}

export function createReconciler(deps: ReconcilerDeps): (key: string) => Promise<HandlerResult> {
  const { jsm, api, metrics, log } = deps;

  async function finalize(obj: Resource): Promise<void> {
    const meta = obj.metadata!;
    if (!(meta.finalizers ?? []).includes(FINALIZER)) return;
    if (obj.spec.preventDelete) {
      log.info({ kind: obj.kind, name: meta.name }, 'preventDelete: JetStream object kept');
    } else if (obj.kind === 'Stream') {
      await deleteStream(jsm, obj.spec.name);
    } else {
      await deleteConsumer(jsm, obj.spec.streamName, obj.spec.durableName);
    }
    await api.setFinalizers(obj.kind, meta.namespace!, meta.name!, (meta.finalizers ?? []).filter((f) => f !== FINALIZER), meta.resourceVersion!);
  }

  async function apply(obj: Resource): Promise<{ result: ApplyResult; live: Pick<ResourceStatus, 'messages' | 'numPending' | 'numAckPending'> }> {
    if (obj.kind === 'Stream') {
      const result = await reconcileStream(jsm, obj.spec);
      const live: Pick<ResourceStatus, 'messages' | 'numPending' | 'numAckPending'> = {};
      if (result.stream) {
        live.messages = result.stream.state.messages;
        live.numPending = 0;
        live.numAckPending = 0;
        for await (const ci of jsm.consumers.list(obj.spec.name)) {
          live.numPending += ci.num_pending;
          live.numAckPending += ci.num_ack_pending;
        }
      }
      return { result, live };
    }
    if (obj.spec.deadLetter?.subject) {
      const dlq = await ensureDeadLetterStream(jsm, obj.spec.deadLetter.subject);
      if (dlq.outcome === 'failed' || dlq.outcome === 'refused') {
        return { result: { ...dlq, kind: 'Consumer', reasons: [`dead-letter stream: ${dlq.reasons.join('; ') || dlq.error}`] }, live: {} };
      }
    }
    const result = await reconcileConsumer(jsm, obj.spec);
    const live = result.consumer ? { numPending: result.consumer.num_pending, numAckPending: result.consumer.num_ack_pending } : {};
    return { result, live };
  }

  /** Level-based: writes only when the status differs by value from what the server holds. */
  async function writeStatus(obj: Resource, status: ResourceStatus): Promise<void> {
    const meta = obj.metadata!;
    if (sameStatus(obj.status, status)) return;
    await api.patchStatus(obj.kind, meta.namespace!, meta.name!, statusPatch(obj.status, status));
  }

  /**
   * RBAC refused a call: a clear log line naming the verb and resource (the server's own
   * message), and — where the status subresource is still writable — Ready=False/Forbidden.
   */
  async function reportForbidden(key: string, obj: Resource, err: unknown): Promise<void> {
    const e = apiError(err);
    log.error({ key, status: e.status, reason: e.reason, err: e.message }, 'forbidden by RBAC: grant the operator this verb in its Role; requeued');
    const meta = obj.metadata!;
    const condition = withTransitionTime(forbiddenCondition(e.message, meta.generation), obj.status?.conditions);
    try {
      await writeStatus(obj, { ...obj.status, observedGeneration: meta.generation, conditions: [condition] });
    } catch (statusErr) {
      log.error({ key, err: apiError(statusErr).message }, 'could not write the Forbidden condition either');
    }
  }

  return async function reconcile(key: string): Promise<HandlerResult> {
    const { kind, namespace, name } = parseKey(key);
    const obj = deps.get(kind, namespace, name);
    if (!obj?.metadata) return { requeue: false };
    const meta = obj.metadata;
    const end = metrics.duration.startTimer({ kind });
    try {
      if (meta.deletionTimestamp) {
        await finalize(obj);
        metrics.reconciles.inc({ kind, outcome: 'deleted' });
        return { requeue: false };
      }
      if (!(meta.finalizers ?? []).includes(FINALIZER)) {
        // 409 if our view is stale: the queue retries with the newer object.
        await api.setFinalizers(kind, namespace, name, [...(meta.finalizers ?? []), FINALIZER], meta.resourceVersion!);
      }
      const { result, live } = await apply(obj);
      metrics.reconciles.inc({ kind, outcome: result.outcome });
      const status: ResourceStatus = {
        observedGeneration: meta.generation,
        conditions: [withTransitionTime(readyCondition(result, meta.generation), obj.status?.conditions)],
        ...live,
      };
      await writeStatus(obj, status);
      if (result.outcome !== 'unchanged') log.info({ key, action: result.action, outcome: result.outcome, reasons: result.reasons }, 'reconciled');
      // A failed apply (server rejected, stream missing) is retried with backoff; a refused one
      // waits for a spec change (or the next resync).
      return result.outcome === 'failed' ? { requeue: true, error: result.error } : { requeue: false };
    } catch (err) {
      metrics.errors.inc({ kind });
      if (isForbidden(err)) await reportForbidden(key, obj, err);
      else log.warn({ key, status: apiStatus(err), err: apiError(err).message }, 'reconcile error; requeued');
      return { requeue: true, error: err };
    } finally {
      end();
    }
  };
}
