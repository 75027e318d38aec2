/**
 * Kubernetes Events (events.k8s.io/v1) about the resources the operator acts on: created, updated,
 * adopted, refused, deleted or kept — what `kubectl describe` and `kubectl events` show next to the
 * status. Best effort: an event that cannot be written is logged, never retried and never fails a
 * reconcile (client-go's recorder drops them too).
 */
import { EventsV1Api, V1MicroTime, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_CALL_TIMEOUT_MS, apiError, isForbidden, withTimeout } from './kube-api.js';
import type { BucketResource } from './bucket-resources.js';
import type { NatsConnectionResource } from './connection-spec.js';
import { API_VERSION, type Resource } from './resources.js';

export const REPORTING_CONTROLLER = 'jetstream.orderflow.dev/operator';

export interface OperatorEvent {
  type: 'Normal' | 'Warning';
  /** CamelCase, e.g. Created, Updated, InvalidSpec, Deleted. */
  reason: string;
  /** What the operator did or would do: Create, Update, Adopt, Refuse, Delete, Keep. */
  action: string;
  note: string;
}

export interface EventRecorder {
  record(obj: Resource | BucketResource | NatsConnectionResource, e: OperatorEvent): void;
  /** Waits for the events still being written (tests, shutdown). */
  flush(): Promise<void>;
}

/** Kubernetes keeps notes to 1 kB. */
const NOTE_MAX = 1024;
const trim = (s: string): string => (s.length > NOTE_MAX ? `${s.slice(0, NOTE_MAX - 1)}…` : s);

export function createEventRecorder(kc: KubeConfig, identity: string, log: Pick<Logger, 'warn' | 'debug'>): EventRecorder {
  const api = kc.makeApiClient(EventsV1Api);
  const pending = new Set<Promise<void>>();
  const timeout = withTimeout(API_CALL_TIMEOUT_MS);
  let warnedForbidden = false;
  let seq = 0;

  async function write(obj: Resource | BucketResource | NatsConnectionResource, e: OperatorEvent): Promise<void> {
    const meta = obj.metadata!;
    const namespace = meta.namespace!;
    try {
      await api.createNamespacedEvent(
        {
          namespace,
          body: {
            apiVersion: 'events.k8s.io/v1',
            kind: 'Event',
            // Unique per event, like client-go: the object's name and a time-based suffix.
            metadata: { name: `${meta.name}.${Date.now().toString(16)}${(seq++ % 0x1000).toString(16).padStart(3, '0')}`, namespace },
            eventTime: new V1MicroTime(),
            reportingController: REPORTING_CONTROLLER,
            reportingInstance: identity,
            action: e.action,
            reason: e.reason,
            note: trim(e.note),
            type: e.type,
            regarding: {
              apiVersion: obj.apiVersion ?? API_VERSION,
              kind: obj.kind,
              name: meta.name,
              namespace,
              uid: meta.uid,
              resourceVersion: meta.resourceVersion,
            },
          },
        },
        timeout,
      );
    } catch (err) {
      const a = apiError(err);
      if (isForbidden(err)) {
        if (!warnedForbidden)
          log.warn({ status: a.status, err: a.message }, 'events not written: grant the operator create on events.k8s.io events');
        warnedForbidden = true;
      } else {
        log.debug({ reason: e.reason, status: a.status, err: a.message }, 'event not written');
      }
    }
  }

  return {
    record(obj, e) {
      const p = write(obj, e).finally(() => pending.delete(p));
      pending.add(p);
    },
    async flush() {
      await Promise.all([...pending]);
    },
  };
}
