/**
 * The NatsConnection kind (NACK's Account): where a NATS account is and how to prove who we are,
 * with every secret in a Kubernetes Secret of the same namespace. Pure: Secret contents in, the
 * kit's NatsAccess (or the problem that prevents it) out; reading the Secrets is secrets.ts.
 */
import { createHash } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { NatsAccess } from '@orderflow/kit';
import type { Condition } from './resources.js';

/** A key of a Secret in the resource's own namespace (as a Pod's `secretKeyRef`). */
export interface SecretKeyRef {
  name: string;
  key: string;
}

export interface NatsConnectionSpec {
  /** nats:// or tls:// URLs of one cluster (or super-cluster entry points). */
  servers: string[];
  /** A creds file (user JWT + nkey seed), as `nsc generate creds` writes it. */
  creds?: SecretKeyRef;
  /** An nkey user's seed (`SU…`). */
  nkey?: SecretKeyRef;
  /** User and password (both). */
  user?: SecretKeyRef;
  password?: SecretKeyRef;
  token?: SecretKeyRef;
  tls?: { ca?: SecretKeyRef; cert?: SecretKeyRef; key?: SecretKeyRef; handshakeFirst?: boolean };
  /** The JetStream domain the resources live in (`$JS.<domain>.API`). */
  jsDomain?: string;
}

export interface NatsConnectionStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** The server this operator is connected to, its version and the account's JetStream domain. */
  server?: string;
  serverVersion?: string;
  jetStreamDomain?: string;
}

export interface NatsConnectionResource extends KubernetesObject {
  kind: 'NatsConnection';
  spec: NatsConnectionSpec;
  status?: NatsConnectionStatus;
}

/** The connection a Stream, Consumer, KeyValue or ObjectStore names (`spec.connection`), if any. */
export function connectionName(obj: { spec?: unknown }): string | undefined {
  const c = (obj.spec as { connection?: unknown } | undefined)?.connection;
  return typeof c === 'string' && c !== '' ? c : undefined;
}

/** Every Secret key the spec references, with where (for messages). */
export function secretRefs(spec: NatsConnectionSpec): { path: string; ref: SecretKeyRef }[] {
  const refs: { path: string; ref: SecretKeyRef | undefined }[] = [
    { path: 'spec.creds', ref: spec.creds },
    { path: 'spec.nkey', ref: spec.nkey },
    { path: 'spec.user', ref: spec.user },
    { path: 'spec.password', ref: spec.password },
    { path: 'spec.token', ref: spec.token },
    { path: 'spec.tls.ca', ref: spec.tls?.ca },
    { path: 'spec.tls.cert', ref: spec.tls?.cert },
    { path: 'spec.tls.key', ref: spec.tls?.key },
  ];
  return refs.filter((r): r is { path: string; ref: SecretKeyRef } => r.ref !== undefined);
}

/** A Secret as read: its resourceVersion and decoded data (a change of the keys used rebuilds the connection). */
export interface SecretData {
  resourceVersion: string;
  data: Record<string, string>;
}

export type AccessResult =
  | { ok: true; access: NatsAccess; fingerprint: string }
  | { ok: false; reason: 'SecretNotFound' | 'SecretKeyNotFound' | 'InvalidSpec'; message: string };

/**
 * The NatsAccess the spec describes, given the Secrets it references (undefined = not found).
 * The fingerprint changes whenever the settings the connection is made from do (the spec's servers,
 * TLS and domain, the credentials read from its Secrets), so the pool knows to replace the connection.
 */
export function accessFrom(obj: NatsConnectionResource, secrets: ReadonlyMap<string, SecretData | undefined>): AccessResult {
  const meta = obj.metadata ?? {};
  const who = `NatsConnection ${meta.namespace}/${meta.name}`;
  const spec = obj.spec;
  if (!spec?.servers?.length) return { ok: false, reason: 'InvalidSpec', message: `${who}: spec.servers is empty` };
  if (Boolean(spec.user) !== Boolean(spec.password))
    return { ok: false, reason: 'InvalidSpec', message: `${who}: spec.user and spec.password go together` };
  const values = new Map<string, string>();
  for (const { path, ref } of secretRefs(spec)) {
    const s = secrets.get(ref.name);
    if (!s) return { ok: false, reason: 'SecretNotFound', message: `Secret ${meta.namespace}/${ref.name} (${who}, ${path}) not found` };
    const v = s.data[ref.key];
    if (v === undefined)
      return {
        ok: false,
        reason: 'SecretKeyNotFound',
        message: `Secret ${meta.namespace}/${ref.name} has no key ${ref.key} (${who}, ${path})`,
      };
    values.set(path, v);
  }
  const v = (path: string): string | undefined => values.get(path);
  const tls = spec.tls
    ? {
        ca: v('spec.tls.ca'),
        cert: v('spec.tls.cert'),
        key: v('spec.tls.key'),
        handshakeFirst: spec.tls.handshakeFirst,
      }
    : undefined;
  const access: NatsAccess = {
    servers: spec.servers,
    user: v('spec.user')?.trim(),
    password: v('spec.password'),
    creds: v('spec.creds'),
    nkeySeed: v('spec.nkey'),
    token: v('spec.token')?.trim(),
    tls,
    jsDomain: spec.jsDomain || undefined,
  };
  // What the connection is made from — servers, credentials, TLS, domain — and nothing else: the
  // generation also moves when deletion is requested (the API server bumps it with
  // deletionTimestamp), and a Secret's resourceVersion with a label, neither a reason to reconnect.
  const settings = createHash('sha256').update(JSON.stringify(access)).digest('hex');
  return { ok: true, access, fingerprint: `${meta.uid}/${settings}` };
}
