/**
 * Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it:
 *
 * - Time is never read from the other pod's clock. A candidate remembers the Lease record it last
 *   saw and the *local* time it saw it change; the holder is presumed alive until
 *   `leaseDurationSeconds` pass on our clock without the record changing. A holder whose clock runs
 *   behind (renewTime in the past) is not overthrown while it renews; one whose clock runs ahead
 *   (renewTime in the future) is replaced once it stops.
 * - Every API call has a deadline (`callTimeoutMs`, by default half the renew deadline): an API
 *   server that stops answering cannot hang a renewal.
 * - A leader that has not renewed within `renewDeadlineMs` (measured from the start of its last
 *   successful renewal) stops leading at once — a timer, not the next call's outcome — so it has
 *   stepped down before any other candidate can see the Lease as expired (renewDeadline <
 *   leaseDuration).
 * - Every write is a replace carrying the resourceVersion read just before, so two candidates
 *   racing for an expired Lease get one success and one 409 Conflict.
 *
 * (client-node has no leader election of its own.) Times are V1MicroTime: the API server parses a
 * Lease's acquireTime/renewTime as RFC 3339 with exactly six fractional digits.
 */
import { CoordinationV1Api, V1MicroTime, type ConfigurationOptions, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiError, apiStatus, withTimeout } from './kube-api.js';

export interface LeaderElectionOptions {
  kc: KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  /** A leader that could not renew for this long steps down (must be < leaseDuration). */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Deadline of each API call (default renewDeadline / 2). */
  callTimeoutMs?: number;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
  /** The local clock (tests). */
  now?: () => number;
}

export interface LeaderElector {
  start(): void;
  /** Stops campaigning; a leader releases the lease so a standby takes over at once. Idempotent. */
  stop(): Promise<void>;
  /** True only while the last renewal is within the renew deadline. */
  isLeader(): boolean;
}

/** The parts of a Lease record whose change proves its holder alive. */
const recordKey = (l: V1Lease): string =>
  JSON.stringify([
    l.spec?.holderIdentity ?? '',
    String(l.spec?.renewTime ?? ''),
    String(l.spec?.acquireTime ?? ''),
    l.spec?.leaseTransitions ?? 0,
    l.spec?.leaseDurationSeconds ?? 0,
  ]);

export function createLeaderElector(opts: LeaderElectionOptions): LeaderElector {
  const api = opts.kc.makeApiClient(CoordinationV1Api);
  const leaseMs = opts.leaseDurationMs ?? 15_000;
  const renewDeadline = opts.renewDeadlineMs ?? 10_000;
  const retry = opts.retryPeriodMs ?? 2_000;
  const callOptions = (): ConfigurationOptions => withTimeout(opts.callTimeoutMs ?? Math.max(500, Math.floor(renewDeadline / 2)));
  const now = opts.now ?? Date.now;
  const { namespace, name, identity, log } = opts;
  const lease = `${namespace}/${name}`;
  let leading = false;
  /** Local time at which the last successful acquire/renew started. */
  let lastRenew = 0;
  /** The record last read and the local time it was first seen (client-go's observedRecord/observedTime). */
  let observed: { key: string; at: number } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let running = false;
  let tick: Promise<void> = Promise.resolve();
  let transitions: Promise<void> = Promise.resolve();

  const spec = (prev: V1Lease['spec'], at: V1MicroTime): V1Lease['spec'] => ({
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseMs / 1000),
    acquireTime: prev?.holderIdentity === identity && prev.acquireTime ? prev.acquireTime : at,
    renewTime: at,
    leaseTransitions: (prev?.leaseTransitions ?? 0) + (prev?.holderIdentity === identity ? 0 : 1),
  });

  function observe(l: V1Lease, at: number): void {
    const key = recordKey(l);
    if (observed?.key !== key) observed = { key, at };
  }

  async function tryAcquireOrRenew(started: number): Promise<boolean> {
    let current: V1Lease;
    try {
      current = await api.readNamespacedLease({ name, namespace }, callOptions());
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
      const created = await api.createNamespacedLease(
        {
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: spec(undefined, new V1MicroTime()),
          },
        },
        callOptions(),
      );
      observe(created, started);
      return true;
    }
    observe(current, now());
    const holder = current.spec?.holderIdentity;
    const duration = (current.spec?.leaseDurationSeconds ?? 0) * 1000;
    // Held by someone else whose record changed less than a lease duration ago, by our clock.
    if (holder && holder !== identity && observed!.at + duration > now()) {
      log.debug({ lease, holder, unchangedForMs: now() - observed!.at }, 'lease held by another');
      return false;
    }
    const replaced = await api.replaceNamespacedLease(
      { name, namespace, body: { ...current, spec: spec(current.spec, new V1MicroTime()) } },
      callOptions(),
    );
    observe(replaced, started);
    return true;
  }

  function setLeading(v: boolean): void {
    if (v === leading) return;
    leading = v;
    log.info({ identity, lease }, v ? 'became leader' : 'stopped leading');
    if (!v) clearTimeout(deadline);
    transitions = transitions.then(async () => {
      try {
        await (v ? opts.onStartedLeading() : opts.onStoppedLeading());
      } catch (err) {
        log.error({ err }, 'leader callback failed');
      }
    });
  }

  /** Steps down when no renewal succeeds within the renew deadline, whatever the calls in flight are doing. */
  function armDeadline(): void {
    clearTimeout(deadline);
    deadline = setTimeout(
      () => {
        if (!leading) return;
        log.warn({ lease, renewDeadlineMs: renewDeadline }, 'lease not renewed within the renew deadline');
        setLeading(false);
      },
      Math.max(0, lastRenew + renewDeadline - now()),
    );
    deadline.unref();
  }

  async function once(): Promise<void> {
    const started = now();
    try {
      const ok = await tryAcquireOrRenew(started);
      if (ok) {
        // A renewal that came back after the deadline does not count: another may already lead.
        if (leading && started - lastRenew > renewDeadline) return setLeading(false);
        lastRenew = started;
        setLeading(true);
        armDeadline();
      } else {
        setLeading(false);
      }
    } catch (err) {
      // 409: someone else wrote the lease between our read and write — they won this round.
      if (apiStatus(err) !== 409) {
        const e = apiError(err);
        log.warn(
          { lease, status: e.status, reason: e.reason, err: e.message },
          e.status === 403 ? 'lease update forbidden by RBAC' : 'lease update failed',
        );
      }
      if (leading && (apiStatus(err) === 409 || now() - lastRenew > renewDeadline)) setLeading(false);
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
      setLeading(false);
      await transitions;
      // Held it at some point (also a leader that stepped down at its deadline and may still be
      // named): release it if it names us, so a standby need not wait for it to expire.
      if (lastRenew === 0) return;
      try {
        const current = await api.readNamespacedLease({ name, namespace }, callOptions());
        if (current.spec?.holderIdentity === identity) {
          await api.replaceNamespacedLease(
            {
              name,
              namespace,
              body: {
                ...current,
                spec: { ...current.spec, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: new V1MicroTime() },
              },
            },
            callOptions(),
          );
        }
      } catch (err) {
        log.warn({ lease, err: apiError(err).message }, 'could not release the lease');
      }
    },
    isLeader: () => leading && now() - lastRenew <= renewDeadline,
  };
}
