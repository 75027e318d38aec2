/**
 * The few API calls the reconciler makes besides watching: status patch (status subresource) and
 * finalizer changes. Finalizer patches carry metadata.resourceVersion so a stale view gets a 409
 * Conflict instead of overwriting someone else's change; the work queue then retries. A status
 * patch may carry one too: a status computed from an informer copy older than the last write
 * (its lastTransitionTime taken from an older condition) must not replace the newer one.
 */
import {
  CustomObjectsApi,
  Observable,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
  type KubeConfig,
  type KubernetesListObject,
} from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type Kind, type Resource, type ResourceStatus } from './resources.js';

export type StatusPatch = { [K in keyof ResourceStatus]: ResourceStatus[K] | null };

export interface KubeApi {
  list(kind: Kind, namespace?: string): Promise<KubernetesListObject<Resource>>;
  /**
   * JSON merge patch of the status subresource; a key set to null is removed. With a
   * resourceVersion, a 409 if the object changed since; resolves to the new resourceVersion.
   */
  patchStatus(kind: Kind, namespace: string, name: string, status: StatusPatch, resourceVersion?: string): Promise<string | undefined>;
  /** Resolves to the new resourceVersion. */
  setFinalizers(kind: Kind, namespace: string, name: string, finalizers: string[], resourceVersion: string): Promise<string | undefined>;
}

/**
 * Per-call options that abort the request after `ms`: an API server that stops answering must not
 * hang a worker (or a leader's renewal) for good. Appended to any options given.
 */
export function withTimeout(ms: number, options?: ConfigurationOptions): ConfigurationOptions {
  return {
    ...options,
    middleware: [
      ...(options?.middleware ?? []),
      {
        pre: (ctx) => {
          ctx.setSignal(AbortSignal.timeout(ms));
          return new Observable(Promise.resolve(ctx));
        },
        post: (ctx) => new Observable(Promise.resolve(ctx)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** Deadline of the reconciler's calls (lists, status and finalizer patches). */
export const API_CALL_TIMEOUT_MS = 30_000;

export function createKubeApi(kc: KubeConfig, timeoutMs = API_CALL_TIMEOUT_MS): KubeApi {
  const mergePatch = withTimeout(timeoutMs, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const plain = withTimeout(timeoutMs);
  const api = kc.makeApiClient(CustomObjectsApi);
  return {
    async list(kind, namespace) {
      const plural = PLURAL[kind];
      const list: unknown = namespace
        ? await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace }, plain)
        : await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural }, plain);
      return list as KubernetesListObject<Resource>;
    },
    async patchStatus(kind, namespace, name, status, resourceVersion) {
      const body = resourceVersion === undefined ? { status } : { metadata: { resourceVersion }, status };
      const updated: unknown = await api.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: PLURAL[kind], namespace, name, body },
        mergePatch,
      );
      return versionOf(updated);
    },
    async setFinalizers(kind, namespace, name, finalizers, resourceVersion) {
      const updated: unknown = await api.patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, plural: PLURAL[kind], namespace, name, body: { metadata: { finalizers, resourceVersion } } },
        mergePatch,
      );
      return versionOf(updated);
    },
  };
}

function versionOf(obj: unknown): string | undefined {
  return (obj as { metadata?: { resourceVersion?: string } } | null)?.metadata?.resourceVersion;
}

/**
 * The HTTP status of a client-node error: ApiException carries `code`, a failed watch `statusCode`
 * (undefined for other errors, e.g. a refused connection).
 */
export function apiStatus(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  if (typeof e?.code === 'number') return e.code;
  return typeof e?.statusCode === 'number' ? e.statusCode : undefined;
}

/**
 * What the API server said, for logs and conditions: the Status object's reason and message
 * (e.g. `streams.jetstream.orderflow.dev "x" is forbidden: User "…" cannot patch resource …`),
 * not client-node's multi-line dump of code, body and headers.
 */
export function apiError(err: unknown): { status?: number; reason?: string; message: string } {
  const status = apiStatus(err);
  let body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      // not a Status object
    }
  }
  const s = body as { reason?: unknown; message?: unknown } | undefined;
  if (s && typeof s.message === 'string')
    return { status, reason: typeof s.reason === 'string' ? s.reason : undefined, message: s.message };
  const message = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
  return { status, message };
}

export const isForbidden = (err: unknown): boolean => apiStatus(err) === 403;
