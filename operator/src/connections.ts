/**
 * The one way every kind's reconcile gets its JetStream handle: `resolve(resource)` gives the
 * connection the resource names (`spec.connection`: a NatsConnection in its namespace, built from
 * its Secrets through the pool) or — without a reference — the operator's default connection (the
 * kit's settings: NATS_URL, NATS_USER…), or the problem that prevents it as a condition reason
 * (ConnectionNotFound, SecretNotFound, SecretKeyNotFound, ConnectionUnavailable…). A problem is a
 * status and a requeue, never an exception.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Connected } from '@orderflow/kit';
import {
  accessFrom,
  connectionName,
  secretRefs,
  type AccessResult,
  type NatsConnectionResource,
  type SecretData,
} from './connection-spec.js';
import type { ConnectionPool } from './connection-pool.js';
import type { SecretReader } from './secrets.js';

/** The operator's own connection (main.ts: the kit's NatsManager over the env settings). */
export interface DefaultConnection {
  /** The live connection; undefined until the first connect (NATS away at start) or while rebuilt. */
  connection(): Connected | undefined;
  /** Every new connection, the first and each rebuilt one. */
  onConnection(fn: (c: Connected) => void | Promise<void>): void;
  lastConnectError?(): string | undefined;
}

export type Resolution =
  | { ok: true; handle: Connected; /** `default` or `<namespace>/<name>` of the NatsConnection. */ via: string }
  | { ok: false; reason: string; message: string };

export interface ConnectionResolver {
  resolve(obj: KubernetesObject & { spec?: unknown }): Promise<Resolution>;
  /**
   * For a resource being deleted whose NatsConnection or Secret is already gone (a namespace
   * deleted as a whole): the connection last built for it, if it is still open.
   */
  lastKnown(obj: KubernetesObject & { spec?: unknown }): Connected | undefined;
}

export interface ConnectionResolverDeps {
  defaultConnection: DefaultConnection;
  /** Where the default connection points, for messages. */
  defaultServers: string[];
  /** The informer cache of NatsConnection resources. */
  getConnection(namespace: string, name: string): NatsConnectionResource | undefined;
  secrets: SecretReader;
  pool: ConnectionPool;
}

export const DEFAULT_CONNECTION = 'default';
export const connectionKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/** Reads the Secrets a NatsConnection references (each once) and turns them into its NatsAccess. */
export async function readAccess(secrets: SecretReader, conn: NatsConnectionResource): Promise<AccessResult> {
  const namespace = conn.metadata?.namespace ?? '';
  const found = new Map<string, SecretData | undefined>();
  for (const { ref } of secretRefs(conn.spec ?? { servers: [] }))
    if (!found.has(ref.name)) found.set(ref.name, await secrets.get(namespace, ref.name));
  return accessFrom(conn, found);
}

export function createConnectionResolver(d: ConnectionResolverDeps): ConnectionResolver {
  const notFound = (namespace: string, name: string): Resolution => ({
    ok: false,
    reason: 'ConnectionNotFound',
    message: `NatsConnection ${name} (spec.connection) not found in namespace ${namespace}; waiting for it`,
  });

  async function resolve(obj: KubernetesObject & { spec?: unknown }, attempt = 0): Promise<Resolution> {
    const namespace = obj.metadata?.namespace ?? '';
    const name = connectionName(obj);
    if (!name) {
      const handle = d.defaultConnection.connection();
      if (handle) return { ok: true, handle, via: DEFAULT_CONNECTION };
      const why = d.defaultConnection.lastConnectError?.();
      return {
        ok: false,
        reason: 'ConnectionUnavailable',
        message:
          `the operator's default NATS connection (${d.defaultServers.join(',')}) ` +
          `is not connected${why ? `: ${why}` : ' yet'}; retrying`,
      };
    }
    const conn = d.getConnection(namespace, name);
    if (!conn) return notFound(namespace, name);
    const access = await readAccess(d.secrets, conn);
    // Deleted or changed while its Secrets were read: building from the old object would bring
    // back a connection the pool has just closed.
    const now = d.getConnection(namespace, name);
    if (now !== conn) return now && attempt < 3 ? resolve(obj, attempt + 1) : notFound(namespace, name);
    if (!access.ok) return { ok: false, reason: access.reason, message: `${access.message}; waiting for it` };
    const key = connectionKey(namespace, name);
    const manager = d.pool.acquire(key, access.fingerprint, access.access);
    const handle = manager.connection();
    if (handle) return { ok: true, handle, via: key };
    const why = manager.lastConnectError();
    return {
      ok: false,
      reason: 'ConnectionUnavailable',
      message: `NatsConnection ${name} (${conn.spec.servers.join(',')}) is not connected${why ? `: ${why}` : ' yet'}; retrying`,
    };
  }

  return {
    resolve: (obj) => resolve(obj),
    lastKnown(obj) {
      const name = connectionName(obj);
      return name ? d.pool.connection(connectionKey(obj.metadata?.namespace ?? '', name)) : d.defaultConnection.connection();
    },
  };
}
