/**
 * The operator in-process against a REAL control plane, twice: one operator on the suite's
 * current nats-server and one on Debian's 2.9.10 (127.0.0.1:4222), each watching a namespace of
 * its own. Resources using the newer Stream/Consumer fields reconcile on the current server (and a
 * resync changes nothing); on 2.9 the same resources are Ready=False with a message naming the
 * nats-server version each field needs, and nothing is created in JetStream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Names, readConsumer, readStream } from '@orderflow/kit';
import { deleteNamespaceStreams, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { startControlPlane, type ControlPlane } from '../../test/support/control-plane.js';
import { createKubeApi } from '../src/kube-api.js';
import { createMetrics, type OperatorMetrics } from '../src/metrics.js';
import { createOperator, type Operator } from '../src/operator.js';
import { fixedConnection } from './support/operator.js';
import { capturingLogger, cr, installCrds, kubeConfigFrom, kubectlApply, reader, ready, type Obj } from './support/kube.js';

const LEGACY_URL = process.env.LEGACY_NATS_URL ?? 'nats://127.0.0.1:4222';

interface Side {
  label: string;
  ns: string;
  k8sNs: string;
  names: Names;
  nc: NatsConnection;
  jsm: JetStreamManager;
  op: Operator;
  metrics: OperatorMetrics;
}

let cp: ControlPlane;
let get: ReturnType<typeof reader>;
const sides: Side[] = [];

async function side(label: string, nc: NatsConnection): Promise<Side> {
  const ns = testNamespace(label);
  const k8sNs = ns.replace(/_/g, '-');
  await cp.kubectl(['create', 'namespace', k8sNs]);
  const kc = kubeConfigFrom(cp.kubeconfigPath);
  const jsm = await jetstreamManager(nc);
  const metrics = createMetrics();
  const op = createOperator({
    kc,
    api: createKubeApi(kc),
    nats: await fixedConnection(nc),
    log: capturingLogger().log,
    metrics,
    identity: `op-${label}`,
    namespace: k8sNs,
    lease: { namespace: k8sNs, name: 'orderflow-operator', durationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 500 },
    resyncMs: 300,
    requeue: { baseDelayMs: 50, maxDelayMs: 1000 },
  });
  op.start();
  const s = { label, ns, k8sNs, names: new Names(ns), nc, jsm, op, metrics };
  sides.push(s);
  await waitFor(`${label}: leader with synced caches`, () => op.isLeader() && op.ready(), 30_000);
  return s;
}

/** A Stream and a Consumer using fields 2.9 does not have (2.10: metadata, compression, several filters; 2.11: pause, priority groups). */
function resources(s: Side): Obj[] {
  const stream = s.names.stream('NEWER');
  return [
    cr('Stream', 'newer', {
      name: stream,
      subjects: [s.names.subject('newer.>')],
      compression: 's2',
      metadata: { team: 'orders' },
      consumerLimits: { maxAckPending: 500 },
      maxBytes: 0,
      maxConsumers: 0,
    }),
    cr('Consumer', 'hot', {
      streamName: stream,
      durableName: 'hot',
      filterSubjects: [s.names.subject('newer.a'), s.names.subject('newer.b')],
      ackWait: '1m30s',
      maxDeliver: 5,
      backoff: ['1s', '5s'],
      priorityPolicy: 'overflow',
      priorityGroups: ['hot'],
      pauseUntil: '2099-01-01T00:00:00Z',
      metadata: { owner: 'inventory' },
    }),
  ];
}

beforeAll(async () => {
  cp = await startControlPlane({ name: 'server-versions' });
  await installCrds(cp);
  get = reader(kubeConfigFrom(cp.kubeconfigPath));
  await side('vcur', await testNats());
  await side('vold', await connect({ servers: LEGACY_URL, name: 'test-legacy' }));
}, 180_000);

afterAll(async () => {
  for (const s of sides) {
    await s.op.stop();
  }
  await cp?.stop();
  for (const s of sides) {
    await deleteNamespaceStreams(s.nc, s.ns);
    await s.nc.close();
  }
});

describe('newer Stream/Consumer fields through the operator', () => {
  it('the current nats-server: Ready=True, the fields are in JetStream, and a resync leaves the status alone', async () => {
    const s = sides[0]!;
    expect(s.nc.info?.version).not.toMatch(/^2\.9\./);
    await kubectlApply(cp, s.k8sNs, ...resources(s));
    const stream = s.names.stream('NEWER');
    for (const [kind, name] of [
      ['Stream', 'newer'],
      ['Consumer', 'hot'],
    ] as const) {
      const o = await waitFor(`${kind} Ready`, async () => {
        const x = await get(kind, s.k8sNs, name);
        return ready(x)?.status === 'True' ? x : undefined;
      });
      expect(ready(o)?.reason).toMatch(/^(Created|InSync)$/);
    }
    expect((await readStream(s.jsm, stream))?.config).toMatchObject({
      compression: 's2',
      metadata: { team: 'orders' },
      consumer_limits: { max_ack_pending: 500 },
    });
    const c = await readConsumer(s.jsm, stream, 'hot');
    expect(c?.config).toMatchObject({
      filter_subjects: [s.names.subject('newer.a'), s.names.subject('newer.b')],
      priority_policy: 'overflow',
      priority_groups: ['hot'],
      max_deliver: 5,
    });
    expect(c?.paused).toBe(true);
    // Resyncs run every 300 ms: once InSync, the normalised values (maxBytes 0 → -1, max_ack_pending
    // from the stream's limits, backoff replacing ackWait) keep it there — no update, no new status.
    const settled = await waitFor('InSync', async () => {
      const x = await get('Consumer', s.k8sNs, 'hot');
      return ready(x)?.reason === 'InSync' ? x : undefined;
    });
    const streamSettled = await waitFor('Stream InSync', async () => {
      const x = await get('Stream', s.k8sNs, 'newer');
      return ready(x)?.reason === 'InSync' ? x : undefined;
    });
    const held = (await s.jsm.consumers.info(stream, 'hot')).config;
    const count = async (kind: string, outcome: string): Promise<number> =>
      (await s.metrics.reconciles.get()).values
        .filter((v) => v.labels.kind === kind && v.labels.outcome === outcome)
        .reduce((a, v) => a + v.value, 0);
    const [streamsUnchanged, consumersUnchanged] = [await count('Stream', 'unchanged'), await count('Consumer', 'unchanged')];
    const [streamsUpdated, consumersUpdated] = [await count('Stream', 'updated'), await count('Consumer', 'updated')];
    // Several full resyncs of both happen in between (the fact waited on), each finding nothing to do.
    await waitFor(
      'three more unchanged resyncs of each',
      async () =>
        (await count('Stream', 'unchanged')) >= streamsUnchanged + 3 && (await count('Consumer', 'unchanged')) >= consumersUnchanged + 3,
    );
    expect([await count('Stream', 'updated'), await count('Consumer', 'updated')]).toEqual([streamsUpdated, consumersUpdated]);
    expect((await get('Consumer', s.k8sNs, 'hot'))!.metadata.resourceVersion).toBe(settled.metadata.resourceVersion);
    expect((await get('Stream', s.k8sNs, 'newer'))!.metadata.resourceVersion).toBe(streamSettled.metadata.resourceVersion);
    expect((await s.jsm.consumers.info(stream, 'hot')).config).toEqual(held);
  });

  it('nats-server 2.9: Ready=False naming the version each field needs, nothing created', async () => {
    const s = sides[1]!;
    expect(s.nc.info?.version).toMatch(/^2\.9\./);
    await kubectlApply(cp, s.k8sNs, ...resources(s));
    const st = await waitFor('Stream refused', async () => {
      const x = await get('Stream', s.k8sNs, 'newer');
      return ready(x)?.status === 'False' ? x : undefined;
    });
    expect(ready(st)).toMatchObject({ reason: 'InvalidSpec', observedGeneration: 1 });
    for (const f of ['spec.compression', 'spec.metadata', 'spec.consumerLimits']) {
      expect(ready(st)?.message).toContain(`${f} needs nats-server 2.10.0 or newer (the connected server is ${s.nc.info?.version})`);
    }
    const co = await waitFor('Consumer refused', async () => {
      const x = await get('Consumer', s.k8sNs, 'hot');
      return ready(x)?.status === 'False' ? x : undefined;
    });
    expect(ready(co)?.reason).toBe('InvalidSpec');
    for (const [f, v] of [
      ['spec.filterSubjects', '2.10.0'],
      ['spec.metadata', '2.10.0'],
      ['spec.pauseUntil', '2.11.0'],
      ['spec.priorityPolicy', '2.11.0'],
      ['spec.priorityGroups', '2.11.0'],
    ]) {
      expect(ready(co)?.message).toContain(`${f} needs nats-server ${v} or newer`);
    }
    // The consumer may also be told its stream is missing on a later pass; nothing exists either way.
    expect(await readStream(s.jsm, s.names.stream('NEWER'))).toBeUndefined();
  });
});
