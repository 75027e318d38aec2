/**
 * Reconcile of a NatsConnection resource: its status says whether the operator can reach the
 * account it describes — connected server, server version, JetStream enabled and its domain —
 * with observedGeneration. A connection some resource references is the pool's (kept open); one
 * nothing references is checked with a short-lived connection and the pool's is closed, so an
 * unused resource holds no connection open.
 *
 * While a resource that will delete its JetStream object (one carrying our finalizer) names it,
 * the NatsConnection carries our finalizer too: deleted together — a namespace, a Helm release —
 * it stays (Terminating, its connection open) until those resources have deleted their objects
 * through it, instead of leaving them behind. It carries it too while a Consumer with `deadLetter`
 * names it: its deletion first removes the dead-letter advisory capture the operator runs in that
 * account (connection-advisories.ts). A server that cannot be reached then does not hold the
 * deletion (as a connection gone for good does not hold a resource's): what is left is logged and
 * named in a Warning event `Kept`, once the finalizer is off. Until then — while resources still
 * delete through it — its capture keeps running, and a durable left behind by a capture that ended
 * earlier keeps the finalizer and the connection (captured()), so later syncs can remove it.
 */
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { natsConnectionOptions, type NatsAccess } from '@orderflow/kit';
import type { Logger } from 'pino';
import type { NatsConnectionResource, NatsConnectionStatus } from './connection-spec.js';
import type { OperatorEvent } from './events.js';
import type { ConnectionPool } from './connection-pool.js';
import { connectionKey, readAccess, type ConnectionResolver } from './connections.js';
import { apiStatus } from './kube-api.js';
import { errorCondition, sameStatus, verdict, withTransitionTime, type Verdict } from './status.js';
import type { SecretReader } from './secrets.js';
import type { OperatorMetrics } from './metrics.js';
import type { HandlerResult } from './work-queue.js';

export interface ConnectionReconcilerDeps {
  get(namespace: string, name: string): NatsConnectionResource | undefined;
  /** Whether any resource (of any kind) names this connection, or a capture durable is left to remove through it. */
  referenced(namespace: string, name: string): boolean;
  /** Whether a resource that names it carries our finalizer (will need it to delete its object). */
  needed(namespace: string, name: string): boolean;
  /** Whether a Consumer with deadLetter names it (a capture runs on it) or a capture it ran left its durable to remove. */
  captured(namespace: string, name: string): boolean;
  /**
   * Stops and removes the capture on this connection (its durable, and the stream if the capture
   * made it and nothing else reads it); what was left and why, or undefined.
   */
  retireCapture(namespace: string, name: string): Promise<string | undefined>;
  events?: { record(obj: NatsConnectionResource, e: OperatorEvent): void };
  /** Sets or removes our finalizer (a 409 on a stale view is thrown: the queue retries). */
  /** Resolves to the new resourceVersion when it wrote, undefined when there was nothing to change. */
  setFinalizer(obj: NatsConnectionResource, want: boolean): Promise<string | undefined>;
  resolver: ConnectionResolver;
  secrets: SecretReader;
  pool: ConnectionPool;
  /** JSON merge patch of the status subresource. */
  /** With the resourceVersion the status was computed from: a 409 when the object moved on since. */
  patchStatus(namespace: string, name: string, status: Record<string, unknown>, resourceVersion?: string): Promise<void>;
  clientName: string;
  leading?: () => boolean;
  /** Counted as kind NatsConnection, outcome `connected` or the Ready=False reason. */
  metrics?: Pick<OperatorMetrics, 'reconciles'>;
  log: Pick<Logger, 'info' | 'warn' | 'debug'>;
}

interface Facts {
  condition: Verdict;
  server?: string;
  serverVersion?: string;
  jetStreamDomain?: string;
}

/** What the server and its JetStream say about this account. */
async function describe(jsm: JetStreamManager, server: string, version: string, gen: number | undefined): Promise<Facts> {
  try {
    const info = await jsm.getAccountInfo();
    const domain = info.domain || undefined;
    return {
      condition: verdict(
        true,
        'Connected',
        `connected to ${server} (nats-server ${version}), JetStream enabled${domain ? ` (domain ${domain})` : ''}`,
        gen,
      ),
      server,
      serverVersion: version,
      jetStreamDomain: domain,
    };
  } catch (err) {
    const c = errorCondition(err, gen);
    return {
      condition: verdict(
        false,
        c.reason === 'ReconcileError' ? 'JetStreamUnavailable' : c.reason,
        `connected to ${server} (nats-server ${version}), but ${c.message}`,
        gen,
      ),
      server,
      serverVersion: version,
    };
  }
}

/** A one-off connection for a resource nothing uses: connect, ask, close. */
async function probe(access: NatsAccess, clientName: string, gen: number | undefined): Promise<Facts> {
  let nc;
  try {
    nc = await connect({ ...natsConnectionOptions(access, clientName), reconnect: false, timeout: 5000 });
  } catch (err) {
    return {
      condition: verdict(false, 'ConnectionUnavailable', `cannot connect to ${access.servers.join(',')}: ${(err as Error).message}`, gen),
    };
  }
  try {
    const jsm = await jetstreamManager(nc, { checkAPI: false, ...(access.jsDomain ? { domain: access.jsDomain } : {}) });
    const facts = await describe(jsm, nc.getServer(), nc.info?.version ?? 'unknown', gen);
    if (facts.condition.status === 'True') facts.condition.message += '; not in use (no resource references it): no connection kept open';
    return facts;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

export function createConnectionReconciler(d: ConnectionReconcilerDeps): (namespace: string, name: string) => Promise<HandlerResult> {
  return async function reconcileConnection(namespace, name) {
    const key = connectionKey(namespace, name);
    const obj = d.get(namespace, name);
    if (!obj) {
      d.pool.release(key);
      return { requeue: false };
    }
    if (d.leading?.() === false) return { requeue: false };
    const needed = d.needed(namespace, name);
    if (obj.metadata?.deletionTimestamp) {
      // Kept, connection and all, while resources still have objects to delete through it.
      if (needed) return { requeue: true, error: `NatsConnection ${key} is still needed to delete the resources that name it` };
      const left = await d.retireCapture(namespace, name);
      // A 409 here retries the whole deletion: the event only once the finalizer is off, or it is told twice.
      await d.setFinalizer(obj, false);
      if (left) {
        d.log.warn({ connection: key }, left);
        d.events?.record(obj, { type: 'Warning', reason: 'Kept', action: 'Keep', note: left });
      }
      d.pool.release(key);
      return { requeue: false };
    }
    const rv = (await d.setFinalizer(obj, needed || d.captured(namespace, name))) ?? obj.metadata?.resourceVersion;
    const gen = obj.metadata?.generation;
    let facts: Facts;
    if (d.referenced(namespace, name)) {
      const r = await d.resolver.resolve({ metadata: { namespace }, spec: { connection: name } });
      if (r.ok) {
        const nc = r.handle.nc;
        facts = await describe(r.handle.jsm, nc.getServer(), nc.info?.version ?? 'unknown', gen);
      } else facts = { condition: verdict(false, r.reason, r.message, gen) };
    } else {
      d.pool.release(key);
      const access = await readAccess(d.secrets, obj);
      facts = access.ok ? await probe(access.access, d.clientName, gen) : { condition: verdict(false, access.reason, access.message, gen) };
    }
    const status: NatsConnectionStatus = {
      observedGeneration: gen,
      conditions: [withTransitionTime(facts.condition, obj.status?.conditions)],
      ...(facts.server ? { server: facts.server } : {}),
      ...(facts.serverVersion ? { serverVersion: facts.serverVersion } : {}),
      ...(facts.jetStreamDomain ? { jetStreamDomain: facts.jetStreamDomain } : {}),
    };
    if (!sameStatus(obj.status as never, status as never)) {
      // Keys no longer known are removed (null), as for the other kinds.
      const patch: Record<string, unknown> = JSON.parse(JSON.stringify(status)) as Record<string, unknown>;
      for (const k of Object.keys(obj.status ?? {})) if (!(k in patch)) patch[k] = null;
      try {
        // Only onto the copy it was computed from: a lagging informer copy would flip lastTransitionTime.
        await d.patchStatus(namespace, name, patch, rv);
      } catch (err) {
        if (apiStatus(err) === 409) return { requeue: true, error: `NatsConnection ${key} changed meanwhile` };
        throw err;
      }
      d.log.info({ connection: key, reason: facts.condition.reason }, facts.condition.message);
    }
    const ok = facts.condition.status === 'True';
    d.metrics?.reconciles.inc({ kind: 'NatsConnection', outcome: ok ? 'connected' : facts.condition.reason });
    return ok ? { requeue: false } : { requeue: true, error: facts.condition.message };
  };
}
