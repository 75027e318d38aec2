/**
 * Streams and Consumers for the reconcile of object-reconciler.ts: how their objects are read,
 * planned (inspect.ts), applied and deleted, their live numbers (a stream's sums its consumers'),
 * and the one thing they add: a consumer with deadLetter gets the stream that catches its dead
 * letters before it can produce any.
 */
import {
  applyConsumerPlan,
  applyStreamPlan,
  deleteConsumer,
  deleteStream,
  readConsumer,
  readStream,
  type ConsumerPlan,
  type StreamPlan,
  type StreamSpec,
} from '@orderflow/kit';
import type { ConsumerInfo, JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import type { ConnectionResolver } from './connections.js';
import { ensureDeadLetterStream } from './dead-letter-stream.js';
import type { EventRecorder } from './events.js';
import { inspect } from './inspect.js';
import type { KubeApi } from './kube-api.js';
import { createObjectReconciler, type Live, type ObjectKind, type ObjectReconcilerDeps } from './object-reconciler.js';
import { FINALIZER, type Kind, type Resource } from './resources.js';
import { verdict, type Verdict } from './status.js';
import type { HandlerResult } from './work-queue.js';

export type { OperatorMode } from './object-reconciler.js';

export interface ReconcilerDeps extends Omit<ObjectReconcilerDeps<Resource>, 'connections' | 'api' | 'get' | 'events'> {
  /** Each resource's JetStream handle: its NatsConnection's, or the operator's default one. */
  connections: ConnectionResolver;
  api: KubeApi;
  /** The informer cache: the latest seen object, or undefined once it is gone. */
  get(kind: Kind, namespace: string, name: string): Resource | undefined;
  /** Every cached resource of a kind. */
  list(kind: Kind): Resource[];
  events?: EventRecorder;
}

const objectName = (obj: Resource): string => (obj.kind === 'Stream' ? obj.spec.name : `${obj.spec.streamName}/${obj.spec.durableName}`);

export function createReconciler(deps: ReconcilerDeps): (key: string) => Promise<HandlerResult> {
  const { log } = deps;

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

  const kind: ObjectKind<Resource> = {
    describe: (kind, key) => `${kind === 'Stream' ? 'stream' : 'consumer'} ${key}`,
    key: objectName,
    // Resources made before the ownership markers carry our finalizer: it stands for the marker.
    legacy: (obj) => (obj.metadata!.finalizers ?? []).includes(FINALIZER),
    inspect: (jsm, obj, policy) =>
      inspect(jsm, obj.kind === 'Stream' ? { kind: 'Stream', spec: obj.spec } : { kind: 'Consumer', spec: obj.spec }, policy),
    read: (jsm, obj) =>
      obj.kind === 'Stream' ? readStream(jsm, obj.spec.name) : readConsumer(jsm, obj.spec.streamName, obj.spec.durableName),
    remove: (jsm, obj) =>
      obj.kind === 'Stream' ? deleteStream(jsm, obj.spec.name) : deleteConsumer(jsm, obj.spec.streamName, obj.spec.durableName),
    apply: (jsm, ins) =>
      ins.plan.kind === 'Stream'
        ? applyStreamPlan(jsm, ins.plan as StreamPlan, ins.actual as StreamInfo | undefined)
        : applyConsumerPlan(jsm, ins.plan as ConsumerPlan, ins.actual as ConsumerInfo | undefined),
    applied: (result) => (result.kind === 'Stream' ? result.stream : result.consumer),
    live(jsm, obj, actual): Promise<Live> | Live {
      if (obj.kind === 'Consumer') {
        const c = actual as ConsumerInfo | undefined;
        return c ? { numPending: c.num_pending, numAckPending: c.num_ack_pending } : {};
      }
      const s = actual as StreamInfo | undefined;
      if (!s) return {};
      // A stream's backlog: the sum over its consumers.
      return (async () => {
        const live: Live = { messages: s.state.messages, numPending: 0, numAckPending: 0 };
        for await (const ci of jsm.consumers.list(s.config.name)) {
          live.numPending! += ci.num_pending;
          live.numAckPending! += ci.num_ack_pending;
        }
        return live;
      })();
    },
    blocked: (jsm, obj) => deadLetterReady(jsm, obj),
  };

  return createObjectReconciler<Resource>(deps, kind);
}
