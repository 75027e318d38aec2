/**
 * The custom resources as the operator sees them (shared/README.md, Custom resources). The spec
 * shapes are the kit's StreamSpec / ConsumerSpec, so the reconcile core needs no translation.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ConsumerSpec, StreamSpec } from '@orderflow/kit';

export const GROUP = 'jetstream.orderflow.dev';
export const VERSION = 'v1beta1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** Our finalizer: the JetStream object is deleted (unless preventDelete) before the resource goes. */
export const FINALIZER = `${GROUP}/finalizer`;

/**
 * NatsConnection (connection-spec.ts) is listed and watched like the others, reconciled apart;
 * KeyValue and ObjectStore (bucket-resources.ts) go through the same reconcile as Streams and
 * Consumers (object-reconciler.ts), with their own reads, plans and live numbers.
 */
export type Kind = 'Stream' | 'Consumer' | 'NatsConnection' | 'KeyValue' | 'ObjectStore';
export const PLURAL: Record<Kind, string> = {
  Stream: 'streams',
  Consumer: 'consumers',
  NatsConnection: 'natsconnections',
  KeyValue: 'keyvalues',
  ObjectStore: 'objectstores',
};

export interface Condition {
  type: 'Ready';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface ResourceStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  messages?: number;
  numPending?: number;
  numAckPending?: number;
}

export interface StreamResource extends KubernetesObject {
  kind: 'Stream';
  spec: StreamSpec;
  status?: ResourceStatus;
}

export interface ConsumerResource extends KubernetesObject {
  kind: 'Consumer';
  spec: ConsumerSpec;
  status?: ResourceStatus;
}

export type Resource = StreamResource | ConsumerResource;

/** Work-queue key: `<Kind>/<namespace>/<name>`. */
export function keyOf(kind: Kind, obj: KubernetesObject): string {
  return `${kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

export function parseKey(key: string): { kind: Kind; namespace: string; name: string } {
  const [kind, namespace, name] = key.split('/') as [Kind, string, string];
  return { kind, namespace, name };
}
