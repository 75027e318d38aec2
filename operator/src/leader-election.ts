/**
 * Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it: the holder renews
 * `renewTime` every retry period; others take over only after `leaseDurationSeconds` without a
 * renewal. Every write is a replace carrying the resourceVersion read just before, so two
 * candidates racing for an expired lease get one success and one 409 Conflict.
 * (client-node has no leader election of its own.) Times are V1MicroTime: the API server parses
 * a Lease's acquireTime/renewTime as RFC 3339 with exactly six fractional digits and rejects a
 * plain Date's toISOString() (three) with 400 BadRequest.
 */
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiError, apiStatus } from './kube-api.js';

export interface LeaderElectionOptions {
  kc: KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  /** A leader that could not renew for this long steps down (must be < leaseDuration). */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
}

export interface LeaderElector {
  start(): void;
  /** Stops campaigning; a leader releases the lease so a standby takes over at once. Idempotent. */
  stop(): Promise<void>;
  isLeader(): boolean;
}

export function createLeaderElector(opts: LeaderElectionOptions): LeaderElector {
  const api = opts.kc.makeApiClient(CoordinationV1Api);
  const leaseMs = opts.leaseDurationMs ?? 15_000;
  const renewDeadline = opts.renewDeadlineMs ?? 10_000;
  const retry = opts.retryPeriodMs ?? 2_000;
  const { namespace, name, identity, log } = opts;
  let leading = false;
  let lastRenew = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let tick: Promise<void> = Promise.resolve();

  const spec = (prev: V1Lease['spec'], now: Date): V1Lease['spec'] => ({
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseMs / 1000),
    acquireTime: prev?.holderIdentity === identity && prev.acquireTime ? prev.acquireTime : now,
    renewTime: now,
    leaseTransitions: (prev?.leaseTransitions ?? 0) + (prev?.holderIdentity === identity ? 0 : 1),
  });

  async function tryAcquireOrRenew(): Promise<boolean> {
    const now = new V1MicroTime();
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
      await api.createNamespacedLease({ namespace, body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: spec(undefined, now) } });
      return true;
    }
    const holder = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    if (holder && holder !== identity && renewed + duration > now.getTime()) return false;
    await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: spec(lease.spec, now) } });
    return true;
  }

  async function setLeading(v: boolean): Promise<void> {
    if (v === leading) return;
    leading = v;
    log.info({ identity, lease: `${namespace}/${name}` }, v ? 'became leader' : 'stopped leading');
    try {
      await (v ? opts.onStartedLeading() : opts.onStoppedLeading());
    } catch (err) {
      log.error({ err }, 'leader callback failed');
    }
  }

  async function once(): Promise<void> {
    try {
      const ok = await tryAcquireOrRenew();
      if (ok) lastRenew = Date.now();
      await setLeading(ok);
    } catch (err) {
      // 409: someone else wrote the lease between our read and write — they won this round.
      if (apiStatus(err) !== 409) {
        const e = apiError(err);
        log.warn({ lease: `${namespace}/${name}`, status: e.status, reason: e.reason, err: e.message }, e.status === 403 ? 'lease update forbidden by RBAC' : 'lease update failed');
      }
      if (leading && (apiStatus(err) === 409 || Date.now() - lastRenew > renewDeadline)) await setLeading(false);
    }
  }

  function schedule(): void {
    if (!running) return;
    timer = setTimeout(() => {
      tick = once().finally(schedule);
    }, retry);
  }

  return {
    start() {
      if (running) return;
      running = true;
      tick = once().finally(schedule);
    },
    async stop() {
      if (!running) return;
      running = false;
      clearTimeout(timer);
      await tick;
      if (!leading) return;
      await setLeading(false);
      try {
        const lease = await api.readNamespacedLease({ name, namespace });
        if (lease.spec?.holderIdentity === identity) {
          await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: new V1MicroTime() } } });
        }
      } catch (err) {
        log.warn({ lease: `${namespace}/${name}`, err: apiError(err).message }, 'could not release the lease');
      }
    },
    isLeader: () => leading,
  };
}
