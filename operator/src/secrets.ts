/**
 * Reads the Secrets a NatsConnection references, as NACK does: a GET at each resolve rather than
 * a cache of every Secret in the namespace (an informer would hold all of them, Helm release
 * Secrets included, in the operator's memory). RBAC: `get` on secrets in the watched namespace.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { SecretData } from './connection-spec.js';
import { API_CALL_TIMEOUT_MS, apiStatus, withTimeout } from './kube-api.js';

export interface SecretReader {
  /** undefined when the Secret does not exist; other errors (403, API away) are thrown. */
  get(namespace: string, name: string): Promise<SecretData | undefined>;
}

export function createSecretReader(kc: KubeConfig, timeoutMs = API_CALL_TIMEOUT_MS): SecretReader {
  const api = kc.makeApiClient(CoreV1Api);
  const opts = withTimeout(timeoutMs);
  return {
    async get(namespace, name) {
      try {
        const s = await api.readNamespacedSecret({ namespace, name }, opts);
        const data: Record<string, string> = {};
        for (const [k, b64] of Object.entries(s.data ?? {})) data[k] = Buffer.from(b64, 'base64').toString('utf8');
        for (const [k, text] of Object.entries(s.stringData ?? {})) data[k] = text;
        return { resourceVersion: s.metadata?.resourceVersion ?? '', data };
      } catch (err) {
        if (apiStatus(err) === 404) return undefined;
        throw err;
      }
    },
  };
}
