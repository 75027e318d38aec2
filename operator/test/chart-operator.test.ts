/**
 * The operator as the chart deploys it, against a REAL control plane: the built operator
 * (operator/dist/main.js) as two child processes, authenticated with a TokenRequest token of the
 * chart's own ServiceAccount, bound only by the chart's own Roles (rendered by the real helm), with
 * the chart's WATCH_NAMESPACE and LEASE_NAME. Proves that RBAC is enough (create, status, finalizer,
 * delete, Lease), that a killed leader is replaced, and that a Role missing a verb is reported.
 * Needs `npx turbo run build` first (child processes run built output).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { readConsumer, readStream } from '@orderflow/kit';
import {
  deleteNamespaceStreams,
  freePort,
  httpReady,
  launchProcess,
  testNats,
  TEST_NATS_URL,
  waitFor,
  type LaunchedProcess,
} from '@orderflow/kit/testing';
import type { ControlPlane } from '../../test/support/control-plane.js';
import { track } from '../../test/support/reaper.js';
import { FINALIZER } from '../src/resources.js';
import { operatorObjects, renderChart, type K8sObject } from './support/chart.js';
import { operatorTestFixture } from './support/fixture.js';
import { cr, kubectlApply, ready } from './support/kube.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const fx = operatorTestFixture('opchart', 'chart-operator');
const { ns, names, K8S_NS, get } = fx;
const LIMITED_NS = `${K8S_NS}-limited`;
const RELEASE = 'orderflow';

let cp: ControlPlane;
let nc: NatsConnection;
let jsm: JetStreamManager;
let leases: CoordinationV1Api;
let chart: ReturnType<typeof operatorObjects>;
let chartKubeconfig: string;
const operators = new Map<string, { proc: LaunchedProcess; port: number }>();

async function startOperator(
  id: string,
  o: { namespace: string; kubeconfig: string; leaseName: string },
): Promise<{ proc: LaunchedProcess; port: number }> {
  const port = await freePort();
  const proc = await launchProcess({
    name: id,
    args: [MAIN],
    inheritEnv: (k) => k === 'PATH' || k === 'HOME',
    env: {
      PORT: String(port),
      NATS_URL: TEST_NATS_URL,
      KUBECONFIG: o.kubeconfig,
      // What the chart's Deployment sets (the downward API gives POD_NAME / POD_NAMESPACE).
      WATCH_NAMESPACE: o.namespace,
      LEASE_NAME: o.leaseName,
      POD_NAME: id,
      POD_NAMESPACE: o.namespace,
      // Short lease so a kill -9 is noticed quickly (defaults: 15 s / 10 s / 2 s).
      LEASE_DURATION_MS: '3000',
      LEASE_RENEW_DEADLINE_MS: '2000',
      LEASE_RETRY_PERIOD_MS: '500',
      RESYNC_SECONDS: '2',
      LOG_LEVEL: 'info',
    },
    // Probes before caches: /health answers as soon as the process runs.
    ready: httpReady(`http://127.0.0.1:${port}/health`),
  });
  const untrack = track({ name: id, dispose: async () => void (await proc.stop()), kill: () => proc.proc.kill('SIGKILL') });
  void proc.exited.then(untrack);
  const r = { proc, port };
  operators.set(id, r);
  return r;
}

async function readiness(port: number): Promise<{ status: number; body: { leader?: boolean; down?: unknown } }> {
  const res = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: (await res.json()) as { leader?: boolean; down?: unknown } };
}

async function holder(namespace: string, name: string): Promise<string | undefined> {
  try {
    return (await leases.readNamespacedLease({ namespace, name })).spec?.holderIdentity ?? undefined;
  } catch {
    return undefined;
  }
}

/** `kubectl patch` of a resource's status subresource in the limited namespace (merge patch follows). */
const statusPatch = (plural: string, name: string): string[] => [
  'patch',
  '-n',
  LIMITED_NS,
  `${plural}.jetstream.orderflow.dev`,
  name,
  '--subresource=status',
  '--type=merge',
  '-p',
];

const forbiddenLines = (p: LaunchedProcess): Record<string, unknown>[] =>
  p.logs().filter((l) => /forbidden|refused \(40[13]\)/i.test(String(l.msg)));

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} missing: run npx turbo run build first`);
  const started = await fx.start();
  cp = started.cp;
  const admin = started.kc;
  leases = admin.makeApiClient(CoordinationV1Api);
  nc = await testNats();
  jsm = await jetstreamManager(nc);

  // The chart's operator RBAC, as helm renders it, applied with kubectl; nothing else is granted.
  chart = operatorObjects(renderChart(RELEASE, K8S_NS));
  expect(chart.rbac.map((o) => o.kind).sort()).toEqual(expect.arrayContaining(['Role', 'RoleBinding', 'ServiceAccount']));
  await cp.kubectl(['apply', '-n', K8S_NS, '-f', '-'], { input: chart.rbac.map((o) => JSON.stringify(o)).join('\n---\n') });
  chartKubeconfig = cp.kubeconfigFor(await cp.tokenFor(K8S_NS, chart.serviceAccount), 'chart-operator');
}, 180_000);

afterAll(async () => {
  await Promise.all([...operators.values()].map((o) => o.proc.stop()));
  await fx.stop();
  if (nc) {
    await deleteNamespaceStreams(nc, ns);
    await nc.close();
  }
});

describe("the operator with the chart's ServiceAccount and Roles, two replicas", () => {
  let leaderId: string;

  it('one of two replicas holds the Lease; both are ready; the leader reconciles with no RBAC refusal', async () => {
    expect(chart.env.WATCH_NAMESPACE).toBe(K8S_NS);
    const leaseName = chart.env.LEASE_NAME!;
    expect(leaseName).toBeTruthy();
    await startOperator('op-1', { namespace: K8S_NS, kubeconfig: chartKubeconfig, leaseName });
    await startOperator('op-2', { namespace: K8S_NS, kubeconfig: chartKubeconfig, leaseName });
    leaderId = await waitFor('a Lease holder', async () => {
      const h = await holder(K8S_NS, leaseName);
      return h === 'op-1' || h === 'op-2' ? h : undefined;
    });
    const standbyId = leaderId === 'op-1' ? 'op-2' : 'op-1';
    const leader = await waitFor('leader ready', async () => {
      const r = await readiness(operators.get(leaderId)!.port);
      return r.status === 200 && r.body.leader === true ? r : undefined;
    });
    expect(leader.body.leader).toBe(true);
    // A standby is ready too (it has nothing to sync), once its NATS connection is up.
    const standby = await waitFor('standby ready', async () => {
      const r = await readiness(operators.get(standbyId)!.port);
      return r.status === 200 ? r : undefined;
    });
    expect(standby.body.leader).toBe(false);

    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'orders', { name: names.stream('ORDERS'), subjects: [names.subject('orders.>')] }),
      cr('Consumer', 'inventory-orders', {
        streamName: names.stream('ORDERS'),
        durableName: 'inventory-orders',
        filterSubject: names.subject('orders.>'),
        maxDeliver: 3,
      }),
    );
    const s = await waitFor('stream Ready', async () => {
      const o = await get('Stream', K8S_NS, 'orders');
      return ready(o)?.status === 'True' ? o : undefined;
    });
    expect(s.metadata.finalizers).toContain(FINALIZER);
    await waitFor('consumer Ready', async () => ready(await get('Consumer', K8S_NS, 'inventory-orders'))?.status === 'True');
    expect(await readConsumer(jsm, names.stream('ORDERS'), 'inventory-orders')).toBeDefined();

    // Delete through the finalizer: the chart's Role lets it remove the JetStream object and itself.
    await cp.kubectl(['delete', '-n', K8S_NS, 'consumers.jetstream.orderflow.dev', 'inventory-orders', '--timeout=30s']);
    expect(await readConsumer(jsm, names.stream('ORDERS'), 'inventory-orders')).toBeUndefined();

    for (const { proc } of operators.values()) expect(forbiddenLines(proc), proc.output()).toEqual([]);
    expect(
      operators
        .get(standbyId)!
        .proc.logs()
        .some((l) => l.msg === 'reconciled'),
    ).toBe(false);
  });

  it('kill -9 of the leader: the standby takes the Lease and reconciles what comes next', async () => {
    const leaseName = chart.env.LEASE_NAME!;
    const standbyId = leaderId === 'op-1' ? 'op-2' : 'op-1';
    await operators.get(leaderId)!.proc.stop({ signal: 'SIGKILL' });
    // The fact: the Lease names the standby (after the dead leader's lease ran out).
    await waitFor('the standby holds the Lease', async () => (await holder(K8S_NS, leaseName)) === standbyId, 20_000);
    await waitFor('new leader ready', async () => {
      const r = await readiness(operators.get(standbyId)!.port);
      return r.status === 200 && r.body.leader === true;
    });
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'after-failover', { name: names.stream('FAILOVER'), subjects: [names.subject('failover.>')] }),
    );
    await waitFor('reconciled by the new leader', async () => ready(await get('Stream', K8S_NS, 'after-failover'))?.status === 'True');
    expect(await readStream(jsm, names.stream('FAILOVER'))).toBeDefined();
    const newLeader = operators.get(standbyId)!.proc;
    expect(newLeader.logs().some((l) => l.msg === 'became leader')).toBe(true);
    expect(forbiddenLines(newLeader)).toEqual([]);
  });

  it('SIGTERM of the leader: it releases the Lease, exits 0, and a new replica takes over', async () => {
    const leaseName = chart.env.LEASE_NAME!;
    const current = leaderId === 'op-1' ? 'op-2' : 'op-1';
    await startOperator('op-3', { namespace: K8S_NS, kubeconfig: chartKubeconfig, leaseName });
    const old = operators.get(current)!.proc;
    expect(await old.stop({ signal: 'SIGTERM' })).toBe(0);
    expect(old.logs().some((l) => l.msg === 'stopped leading')).toBe(true);
    expect(old.logs().some((l) => l.msg === 'could not release the lease')).toBe(false);
    await waitFor('op-3 holds the Lease', async () => (await holder(K8S_NS, leaseName)) === 'op-3', 20_000);
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'after-handover', { name: names.stream('HANDOVER'), subjects: [names.subject('handover.>')] }),
    );
    await waitFor('reconciled by op-3', async () => ready(await get('Stream', K8S_NS, 'after-handover'))?.status === 'True');
  });

  it(
    'a Role missing verbs (patch, watch on streams, consumers, buckets) shows up as a Forbidden condition ' +
      'keeping the last live numbers, and a clear log line',
    async () => {
      // The chart's Roles, copied into another namespace for another ServiceAccount, minus two verbs.
      await cp.kubectl(['create', 'namespace', LIMITED_NS]);
      const strip = (o: K8sObject): K8sObject => {
        const copy = structuredClone(o) as K8sObject & {
          rules?: { resources: string[]; verbs: string[] }[];
          subjects?: { namespace?: string }[];
        };
        copy.metadata = { ...copy.metadata, namespace: LIMITED_NS };
        for (const s of copy.subjects ?? []) s.namespace = LIMITED_NS;
        for (const r of copy.rules ?? [])
          if (r.resources.includes('streams')) r.verbs = r.verbs.filter((v) => v !== 'patch' && v !== 'watch');
        return copy;
      };
      const limited = chart.rbac.map(strip);
      const mainRule = (
        limited.find((o) => o.kind === 'Role' && JSON.stringify(o).includes('"streams"')) as unknown as {
          rules: { resources: string[]; verbs: string[] }[];
        }
      ).rules.find((r) => r.resources.includes('streams'))!;
      expect(mainRule.verbs).not.toContain('patch');
      await cp.kubectl(['apply', '-n', LIMITED_NS, '-f', '-'], { input: limited.map((o) => JSON.stringify(o)).join('\n---\n') });
      const kubeconfig = cp.kubeconfigFor(await cp.tokenFor(LIMITED_NS, chart.serviceAccount), 'limited-operator');
      // Exist before the operator starts: its first list sees them (no watch to see anything later).
      const KV = `${ns}_limited`;
      await kubectlApply(
        cp,
        LIMITED_NS,
        cr('Stream', 'limited', { name: names.stream('LIMITED'), subjects: [names.subject('limited.>')] }),
        cr('KeyValue', 'limited-kv', { bucket: KV, history: 2 }),
      );
      // The live numbers an earlier run with every verb wrote: what JetStream said at its last read.
      const earlier = { Stream: { messages: 5, numPending: 2, numAckPending: 1 }, KeyValue: { messages: 7, bytes: 2048 } };
      await cp.kubectl([...statusPatch('streams', 'limited'), JSON.stringify({ status: earlier.Stream })]);
      await cp.kubectl([...statusPatch('keyvalues', 'limited-kv'), JSON.stringify({ status: earlier.KeyValue })]);
      const { proc } = await startOperator('op-limited', { namespace: LIMITED_NS, kubeconfig, leaseName: chart.env.LEASE_NAME! });

      const forbidden = (kind: 'Stream' | 'KeyValue', name: string) =>
        waitFor(`${kind} ${name} Ready=False Forbidden`, async () => {
          const o = await get(kind, LIMITED_NS, name);
          return ready(o)?.reason === 'Forbidden' ? o : undefined;
        });
      const s = await forbidden('Stream', 'limited');
      expect(ready(s)).toMatchObject({ status: 'False', observedGeneration: 1 });
      expect(ready(s)?.message).toMatch(/cannot patch resource "streams" in API group "jetstream.orderflow.dev"/);
      const kv = await forbidden('KeyValue', 'limited-kv');
      expect(ready(kv)).toMatchObject({ status: 'False', observedGeneration: 1 });
      expect(ready(kv)?.message).toMatch(/cannot patch resource "keyvalues" in API group "jetstream.orderflow.dev"/);
      // One rule for every kind: the refusal keeps the last live numbers, the condition says why
      // they are not refreshed.
      expect(s.status).toMatchObject(earlier.Stream);
      expect(kv.status).toMatchObject(earlier.KeyValue);
      // One line per refused resource, in no fixed order between the Stream and the KeyValue.
      for (const key of [`Stream/${LIMITED_NS}/limited`, `KeyValue/${LIMITED_NS}/limited-kv`]) {
        const patchLine = await waitFor(`forbidden log line of ${key}`, () =>
          proc.logs().find((l) => l.msg === 'forbidden by RBAC: grant the operator this verb in its Role; requeued' && l.key === key),
        );
        expect(patchLine).toMatchObject({ level: 'error', status: 403 });
      }
      const watchLine = await waitFor('watch refused log line', () => proc.logs().find((l) => String(l.msg).includes('refused (403)')));
      expect(String(watchLine.msg)).toContain('grant the operator get, list and watch on');
      expect(String(watchLine.err)).toMatch(/forbidden/i);
      // Nothing was half-done: no finalizer, and JetStream was not touched before the finalizer.
      expect(s.metadata.finalizers ?? []).not.toContain(FINALIZER);
      expect(await readStream(jsm, names.stream('LIMITED'))).toBeUndefined();
      expect(kv.metadata.finalizers ?? []).not.toContain(FINALIZER);
      expect(await readStream(jsm, `KV_${KV}`)).toBeUndefined();
    },
  );
});
