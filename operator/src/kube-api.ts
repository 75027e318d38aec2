/**
 * The few API calls the reconciler makes besides watching: status patch (status subresource) and
 * finalizer changes. Finalizer patches carry metadata.resourceVersion so a stale view gets a 409
 * Conflict instead of overwriting someone else's change; the work queue then retries.
 */
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesListObject } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type Kind, type Resource, type ResourceStatus } from './resources.js';

export interface KubeApi {
  list(kind: Kind, namespace?: string): Promise<KubernetesListObject<Resource>>;
  patchStatus(kind: Kind, namespace: string, name: string, status: ResourceStatus): Promise<void>;
  setFinalizers(kind: Kind, namespace: string, name: string, finalizers: string[], resourceVersion: string): Promise<void>;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function createKubeApi(kc: KubeConfig): KubeApi {
  const api = kc.makeApiClient(CustomObjectsApi);
  return {
    async list(kind, namespace) {
      const plural = PLURAL[kind];
      const list: unknown = namespace
        ? await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace })
        : await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural });
      return list as KubernetesListObject<Resource>;
    },
    async patchStatus(kind, namespace, name, status) {
      await api.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural: PLURAL[kind], namespace, name, body: { status } }, mergePatch);
    },
    async setFinalizers(kind, namespace, name, finalizers, resourceVersion) {
      await api.patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, plural: PLURAL[kind], namespace, name, body: { metadata: { finalizers, resourceVersion } } },
        mergePatch,
      );
    },
  };
}

/** The HTTP status of a client-node ApiException (or undefined for other errors). */
export function apiStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}
