/**
 * Leader election against a REAL kube-apiserver (test/support/control-plane.ts), the faults that
 * make two leaders possible:
 *  - an API server that accepts and never answers (a TCP relay that stalls): the leader's calls have
 *    deadlines and it steps down at its renew deadline, before the other candidate takes over;
 *  - a holder whose clock runs an hour behind (renewTime in the past) is not overthrown while it
 *    renews; one whose clock runs an hour ahead (renewTime in the future) is replaced once it
 *    stops — time is the candidate's own observation, never the other pod's renewTime.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinationV1Api, KubeConfig, V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import { testNamespace, waitFor } from '@orderflow/kit/testing';
import { startControlPlane, type ControlPlane } from '../../test/support/control-plane.js';
import { createLeaderElector, type LeaderElector } from '../src/leader-election.js';
import { capturingLogger, kubeConfigFrom } from './support/kube.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const NS = testNamespace('le').replace(/_/g, '-');
const LEASE = { leaseDurationMs: 4000, renewDeadlineMs: 2500, retryPeriodMs: 250 };

let cp: ControlPlane;
let kc: KubeConfig;
let leases: CoordinationV1Api;
let proxy: TcpProxy;
const electors: LeaderElector[] = [];

/** An elector with its own log and a record of its transitions. */
function elector(identity: string, name: string, config: KubeConfig, transitions: string[]) {
  const { log, lines } = capturingLogger();
  const e = createLeaderElector({
    kc: config,
    namespace: NS,
    name,
    identity,
    ...LEASE,
    log,
    onStartedLeading: () => void transitions.push(`${identity} started`),
    onStoppedLeading: () => void transitions.push(`${identity} stopped`),
  });
  electors.push(e);
  return { e, lines };
}

/** Writes the Lease as another pod would: holder, its clock's renewTime, 4 s duration. */
async function writeLease(name: string, holder: string, renewTime: Date): Promise<void> {
  const body = (prev?: V1Lease): V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace: NS, resourceVersion: prev?.metadata?.resourceVersion },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 4,
      renewTime: new V1MicroTime(renewTime.getTime()),
      acquireTime: new V1MicroTime(renewTime.getTime()),
    },
  });
  try {
    const prev = await leases.readNamespacedLease({ name, namespace: NS });
    await leases.replaceNamespacedLease({ name, namespace: NS, body: body(prev) });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
    await leases.createNamespacedLease({ namespace: NS, body: body() });
  }
}

beforeAll(async () => {
  cp = await startControlPlane({ name: 'leader-election' });
  await cp.kubectl(['create', 'namespace', NS]);
  kc = kubeConfigFrom(cp.kubeconfigPath);
  leases = kc.makeApiClient(CoordinationV1Api);
  const url = new URL(cp.server);
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
}, 180_000);

afterAll(async () => {
  proxy?.resume();
  await Promise.all(electors.map((e) => e.stop().catch(() => undefined)));
  await proxy?.close();
  await cp?.stop();
});

describe('leader election', () => {
  it('an API server that stops answering: the leader steps down at its renew deadline, before the other candidate leads', async () => {
    // A reaches the API server through the relay, B directly.
    const viaProxy = new KubeConfig();
    viaProxy.loadFromOptions({
      clusters: kc.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${proxy.port}` })),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    const transitions: string[] = [];
    const a = elector('a', 'stall', viaProxy, transitions);
    a.e.start();
    await waitFor('a leads', () => a.e.isLeader());
    let aLeadingWhenBStarted: boolean | undefined;
    const b = createLeaderElector({
      kc,
      namespace: NS,
      name: 'stall',
      identity: 'b',
      ...LEASE,
      log: capturingLogger().log,
      onStartedLeading: () => {
        aLeadingWhenBStarted = a.e.isLeader();
        transitions.push('b started');
      },
      onStoppedLeading: () => void transitions.push('b stopped'),
    });
    electors.push(b);
    b.start();
    await waitFor('b sees the lease held', () => !b.isLeader() && transitions.length === 1);

    proxy.stall();
    await waitFor('a stepped down', () => transitions.includes('a stopped'), 20_000);
    expect(a.e.isLeader()).toBe(false);
    expect(a.lines.some((l) => l.msg === 'lease not renewed within the renew deadline')).toBe(true);
    await waitFor('b leads', () => b.isLeader(), 20_000);
    expect(transitions).toEqual(['a started', 'a stopped', 'b started']);
    expect(aLeadingWhenBStarted).toBe(false);

    // The API server answers again: a follows, b keeps the lease.
    proxy.resume();
    await waitFor('a observes b', () => a.lines.some((l) => l.msg === 'lease held by another' && l.holder === 'b'), 20_000);
    expect(a.e.isLeader()).toBe(false);
    expect(b.isLeader()).toBe(true);
  });

  it('a holder whose clock is an hour behind keeps the lease while it renews; it is taken over once it stops', async () => {
    let renewing = true;
    let renewals = 0;
    await writeLease('behind', 'slow-clock', new Date(Date.now() - 3600_000));
    const holder = (async () => {
      while (renewing) {
        await writeLease('behind', 'slow-clock', new Date(Date.now() - 3600_000));
        renewals++;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const transitions: string[] = [];
    const c = elector('c', 'behind', kc, transitions);
    c.e.start();
    // Observed over more than two lease durations (its attempts are the facts counted).
    const attempts = Math.ceil((2 * LEASE.leaseDurationMs) / LEASE.retryPeriodMs);
    await waitFor(
      'c saw the holder across two lease durations',
      () => c.lines.filter((l) => l.msg === 'lease held by another').length >= attempts,
      30_000,
    );
    expect(transitions).toEqual([]);
    expect(renewals).toBeGreaterThan(attempts / 2);
    renewing = false;
    await holder;
    await waitFor('c takes over after the holder stopped', () => c.e.isLeader(), 20_000);
    expect(transitions).toEqual(['c started']);
  });

  it('a dead holder whose clock was an hour ahead is replaced after one lease duration of ours', async () => {
    await writeLease('ahead', 'fast-clock', new Date(Date.now() + 3600_000));
    const transitions: string[] = [];
    const d = elector('d', 'ahead', kc, transitions);
    d.e.start();
    await waitFor('d takes over', () => d.e.isLeader(), 20_000);
    const lease = await leases.readNamespacedLease({ name: 'ahead', namespace: NS });
    expect(lease.spec?.holderIdentity).toBe('d');
    expect(d.lines.some((l) => l.msg === 'lease held by another' && l.holder === 'fast-clock')).toBe(true);
  });
});
