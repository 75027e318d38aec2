/**
 * `helm install`, `helm upgrade` and `helm uninstall` of charts/orderflow into a real control plane
 * (etcd + kube-apiserver, test/support/control-plane.ts; no kubelet, so workloads are admitted and
 * stored, never scheduled). Every object the release renders — CRDs, Deployments, RBAC,
 * NetworkPolicies, PDBs, the Stream and Consumer resources — must be accepted by the API server.
 * The operator then runs as a process (operator/dist/main.js) with the env of the chart's own
 * Deployment and a token of the chart's own ServiceAccount, against the suite's nats-server, and
 * must reconcile the release's resources into JetStream, follow an upgrade, and delete the
 * JetStream objects when the release is uninstalled.
 *
 * External-NATS mode: the official nats chart cannot be downloaded here (see helm.ts), so the
 * release points nats.url at the suite's server. The other value sets (dev, auth, database per
 * service) are rendered by helm and sent through the API server's admission with
 * `kubectl apply --dry-run=server`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { TEST_NATS_URL, deleteNamespaceStreams, freePort, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { kubectlWait, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { killGroup, track } from '../support/reaper.js';
import { chartPath, helmAsync, parseRendered, templateText, root, valuesArgs, valuesFile, type Dict } from './helm.js';

const ns = testNamespace('hi').replace(/_/g, '-');
/** ORDERFLOW_NAMESPACE of the release: its stream names (HI_<hex>_ORDERS) are this test's own on the shared NATS. */
const subjects = ns.replace(/-/g, '_');
const RELEASE = 'orderflow';

const VALUES: Dict = {
  nats: { enabled: false, url: TEST_NATS_URL },
  database: { url: 'postgres://orderflow:pw@db.example:5432/orderflow' },
  sandboxGateway: { enabled: true },
  subjectNamespace: subjects,
  // One nats-server here; and let uninstall remove the JetStream objects (the default keeps them).
  jetstream: { replicas: 1, preventDelete: false },
  operator: { replicaCount: 1 },
};
const UPGRADE: Dict = { jetstream: { consumerDefaults: { maxAckPending: 500 } }, orderService: { replicaCount: 3 } };

let cp: ControlPlane;
let nc: NatsConnection;
let jsm: JetStreamManager;
let operator: { proc: ChildProcess; logs: string[]; untrack: () => void } | undefined;

const helm = (args: string[]) => helmAsync([...args, '--kubeconfig', cp.kubeconfigPath]);
const json = async <T>(args: string[]): Promise<T> => JSON.parse(await cp.kubectl([...args, '-o', 'json'])) as T;
type Obj = {
  kind: string;
  metadata: { name: string; namespace?: string; finalizers?: string[] };
  spec: Dict;
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
};
const items = async (what: string, namespace = ns) => (await json<{ items: Obj[] }>(['get', what, '-n', namespace])).items;
const ready = (o: Obj) => o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const streamNames = () => ['ORDERS', 'INVENTORY', 'PAYMENTS', 'DLQ'].map((s) => `${subjects.toUpperCase()}_${s}`);

/** The operator as the chart deploys it: the Deployment's env (downward API filled in), the ServiceAccount's token. */
async function startOperator(manifest: Dict[]): Promise<void> {
  const main = join(root, 'operator', 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} missing: build first (npx turbo run build)`);
  const dep = manifest.find((d) => d.kind === 'Deployment' && (d.metadata as Dict).name === `${RELEASE}-operator`)!;
  const pod = (
    (dep.spec as Dict).template as {
      spec: {
        serviceAccountName: string;
        containers: { env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }[];
      };
    }
  ).spec;
  const podName = `${RELEASE}-operator-test`;
  const env: Record<string, string> = {};
  for (const e of pod.containers[0]!.env) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = ns;
    else throw new Error(`operator env ${e.name}: no stand-in for ${JSON.stringify(e.valueFrom)}`);
  }
  expect(env.NATS_URL).toBe(TEST_NATS_URL);
  const token = await cp.tokenFor(ns, pod.serviceAccountName);
  const logs: string[] = [];
  const proc = spawn(process.execPath, [main], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // PORT: the chart's 3010 may be taken on a shared machine. No OTLP endpoint is set here.
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...env,
      PORT: String(await freePort()),
      KUBECONFIG: cp.kubeconfigFor(token, 'chart-operator'),
    },
  });
  for (const s of [proc.stdout!, proc.stderr!])
    s.setEncoding('utf8').on('data', (c: string) => logs.push(...c.split('\n').filter(Boolean)));
  const untrack = track({ name: 'operator', dispose: () => stopOperator(), kill: () => killGroup(proc.pid) });
  operator = { proc, logs, untrack };
}

async function stopOperator(): Promise<void> {
  if (!operator) return;
  const { proc, untrack } = operator;
  operator = undefined;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    killGroup(proc.pid, 'SIGTERM');
    const t = setTimeout(() => killGroup(proc.pid, 'SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
  }
  untrack();
}

/** Waits on a fact; on a timeout the operator's last log lines say why. */
async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  try {
    return await waitFor(what, fn, timeoutMs, 250);
  } catch (err) {
    throw new Error(`${(err as Error).message}\noperator log:\n${(operator?.logs ?? []).slice(-30).join('\n')}`, { cause: err });
  }
}

beforeAll(async () => {
  cp = await startControlPlane({ name: 'helm' });
  nc = await testNats();
  jsm = await jetstreamManager(nc);
}, 180_000);

afterAll(async () => {
  await stopOperator();
  if (nc) {
    await deleteNamespaceStreams(nc, subjects);
    await nc.close();
  }
  await cp?.stop();
}, 60_000);

describe('helm install / upgrade / uninstall against kube-apiserver, the operator reconciling into JetStream', () => {
  let manifest: Dict[] = [];

  it('helm install: every object of the release, CRDs included, is accepted and stored', async () => {
    await helm(['install', RELEASE, chartPath(), '-n', ns, '--create-namespace', ...valuesArgs([VALUES])]);
    const status = JSON.parse(await helm(['status', RELEASE, '-n', ns, '-o', 'json'])) as {
      info: { status: string; notes: string };
      version: number;
    };
    expect(status).toMatchObject({ info: { status: 'deployed' }, version: 1 });
    // NOTES tell the user the uninstall order the last test follows.
    expect(status.info.notes).toContain(
      `kubectl -n ${ns} delete streams.jetstream.orderflow.dev,consumers.jetstream.orderflow.dev -l ` +
        `app.kubernetes.io/instance=${RELEASE} --wait`,
    );

    const text = await helm(['get', 'manifest', RELEASE, '-n', ns]);
    manifest = parseRendered(text).map((r) => r.doc);
    const kinds = new Set(manifest.map((d) => String(d.kind)));
    for (const k of [
      'Deployment',
      'Service',
      'ConfigMap',
      'Secret',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'ServiceAccount',
      'Role',
      'RoleBinding',
      'Stream',
      'Consumer',
    ])
      expect(kinds, k).toContain(k);
    // The API server's copy of each: `kubectl get -f` fails on any object that is not there.
    const got = JSON.parse(await cp.kubectl(['get', '-n', ns, '-f', '-', '-o', 'json'], { input: text })) as { items: Obj[] };
    expect(got.items.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      manifest.map((d) => `${String(d.kind)}/${String((d.metadata as Dict).name)}`).sort(),
    );

    const crds = await json<{ items: Obj[] }>(['get', 'crd']);
    expect(crds.items.map((c) => c.metadata.name)).toEqual(
      expect.arrayContaining(['streams.jetstream.orderflow.dev', 'consumers.jetstream.orderflow.dev']),
    );
    expect((await items('streams.jetstream.orderflow.dev')).map((s) => s.spec.name).sort()).toEqual(streamNames().sort());
    expect(await items('consumers.jetstream.orderflow.dev')).toHaveLength(6);
  });

  it("the operator, with the chart's env and ServiceAccount, reconciles the release's Streams and Consumers into JetStream", async () => {
    await startOperator(manifest);
    await until('every Stream and Consumer Ready=True', async () => {
      const all = [...(await items('streams.jetstream.orderflow.dev')), ...(await items('consumers.jetstream.orderflow.dev'))];
      return all.length === 10 && all.every(ready);
    });
    for (const name of streamNames()) {
      const info = await jsm.streams.info(name);
      expect(info.config, name).toMatchObject({ num_replicas: 1, storage: 'file', duplicate_window: 120_000_000_000 });
    }
    const consumers = await jsm.consumers.info(`${subjects.toUpperCase()}_ORDERS`, 'inventory-orders');
    expect(consumers.config).toMatchObject({ max_deliver: 5, max_ack_pending: 1000, filter_subject: `${subjects}.orders.>` });
  });

  it('helm upgrade: revision 2 is stored and the operator applies the changed consumer settings', async () => {
    await helm(['upgrade', RELEASE, chartPath(), '-n', ns, ...valuesArgs([VALUES, UPGRADE])]);
    const status = JSON.parse(await helm(['status', RELEASE, '-n', ns, '-o', 'json'])) as { info: { status: string }; version: number };
    expect(status).toMatchObject({ info: { status: 'deployed' }, version: 2 });
    const dep = await json<{ spec: { replicas: number } }>(['get', 'deployment', `${RELEASE}-order-service`, '-n', ns]);
    expect(dep.spec.replicas).toBe(3);
    const crs = await items('consumers.jetstream.orderflow.dev');
    expect(crs.map((c) => c.spec.maxAckPending)).toEqual(Array(6).fill(500));
    await until('JetStream consumers at max_ack_pending 500', async () => {
      for (const c of crs) {
        const info = await jsm.consumers.info(String(c.spec.streamName), String(c.spec.durableName));
        if (info.config.max_ack_pending !== 500) return false;
      }
      return true;
    });
  });

  it(
    'uninstall as docs/deploy.md says: the resources first (the operator releases them and deletes the ' +
      'JetStream streams, preventDelete false), then helm uninstall; the CRDs stay',
    async () => {
      const text = await helm(['get', 'manifest', RELEASE, '-n', ns]);
      // While the operator and its RBAC still exist: `helm uninstall` deletes those together with the
      // resources, and a resource whose finalizer nobody can release stays Terminating for good.
      await cp.kubectl([
        'delete',
        'streams.jetstream.orderflow.dev,consumers.jetstream.orderflow.dev',
        '-n',
        ns,
        '-l',
        `app.kubernetes.io/instance=${RELEASE}`,
        '--wait',
        '--timeout=60s',
      ]);
      expect(await items('streams.jetstream.orderflow.dev')).toEqual([]);
      expect(await items('consumers.jetstream.orderflow.dev')).toEqual([]);
      await until('the JetStream streams deleted', async () => {
        const names: string[] = [];
        for await (const n of jsm.streams.names()) names.push(n);
        return !names.some((n) => streamNames().includes(n));
      });
      await helm(['uninstall', RELEASE, '-n', ns, '--wait']);
      const left = await cp.kubectl(['get', '-n', ns, '-f', '-', '--ignore-not-found', '-o', 'name'], { input: text });
      expect(left.trim()).toBe('');
      expect((await helm(['list', '-n', ns, '-q'])).trim()).toBe('');
      const crds = await json<{ items: Obj[] }>(['get', 'crd']);
      expect(crds.items.map((c) => c.metadata.name)).toEqual(
        expect.arrayContaining(['streams.jetstream.orderflow.dev', 'consumers.jetstream.orderflow.dev']),
      );
    },
  );

  it(
    'a bare `helm uninstall` with the default jetstream.preventDelete: no resource carries a finalizer, nothing ' +
      'stays Terminating, the JetStream objects are kept',
    async () => {
      // A fresh release with the chart's defaults for the JetStream resources (preventDelete true).
      await stopOperator();
      const kept: Dict = { ...VALUES, jetstream: { replicas: 1 } };
      await helm(['install', RELEASE, chartPath(), '-n', ns, ...valuesArgs([kept])]);
      const status = JSON.parse(await helm(['status', RELEASE, '-n', ns, '-o', 'json'])) as { info: { notes: string } };
      expect(status.info.notes).toContain(`helm -n ${ns} uninstall ${RELEASE}\n          keeps the JetStream streams`);
      await startOperator(parseRendered(await helm(['get', 'manifest', RELEASE, '-n', ns])).map((r) => r.doc));
      await until('every Stream and Consumer Ready=True', async () => {
        const all = [...(await items('streams.jetstream.orderflow.dev')), ...(await items('consumers.jetstream.orderflow.dev'))];
        return all.length === 10 && all.every(ready) ? all : undefined;
      });
      // Only a resource whose deletion will delete its JetStream object holds one.
      for (const o of [...(await items('streams.jetstream.orderflow.dev')), ...(await items('consumers.jetstream.orderflow.dev'))])
        expect(o.metadata.finalizers ?? [], o.metadata.name).toEqual([]);

      const text = await helm(['get', 'manifest', RELEASE, '-n', ns]);
      // Deletes the operator, its ServiceAccount and Role together with the resources.
      await helm(['uninstall', RELEASE, '-n', ns, '--wait']);
      const left = await cp.kubectl(['get', '-n', ns, '-f', '-', '--ignore-not-found', '-o', 'name'], { input: text });
      expect(left.trim()).toBe('');
      expect(await items('streams.jetstream.orderflow.dev')).toEqual([]);
      expect(await items('consumers.jetstream.orderflow.dev')).toEqual([]);
      for (const name of streamNames()) expect((await jsm.streams.info(name)).config.name).toBe(name);
    },
  );
});

describe("the other value sets pass the API server's admission (kubectl apply --dry-run=server)", () => {
  const passwords = {
    natsAuth: {
      services: {
        orderService: { password: 'a' },
        inventoryService: { password: 'b' },
        paymentService: { password: 'c' },
        console: { password: 'd' },
        operator: { password: 'd' },
      },
    },
  };
  const DB = { database: { url: 'postgres://u:p@db:5432/o' } };
  const GATEWAY = { paymentService: { gatewayUrl: 'https://payments.example.com' } };
  beforeAll(async () => {
    // The CRDs, so the Stream/Consumer resources are checked against their schemas (helm install did this too).
    await cp.kubectl(['apply', '-f', join(root, 'charts', 'orderflow', 'crds')]);
    await kubectlWait(cp, [
      'wait',
      '--for=condition=Established',
      'crd/streams.jetstream.orderflow.dev',
      'crd/consumers.jetstream.orderflow.dev',
    ]);
  });
  it.each([
    ['default', [DB, GATEWAY]],
    ['dev', [valuesFile('values-dev.yaml'), DB]],
    ['auth', [valuesFile('values-nats-auth.yaml'), DB, GATEWAY, passwords]],
    [
      'database per service',
      [
        GATEWAY,
        {
          database: {
            services: {
              orderService: { url: 'postgres://o@a:5432/o' },
              inventoryService: { existingSecret: 'inv-db' },
              paymentService: { url: 'postgres://p@b:5432/p' },
            },
          },
        },
      ],
    ],
  ] as [string, (Dict | string)[]][])('%s', async (name, values) => {
    const target = `dry-${name.replace(/\W+/g, '-')}-${ns}`.slice(0, 63);
    await cp.kubectl(['create', 'namespace', target]);
    const text = templateText(values, { release: RELEASE, namespace: target });
    const out = await cp.kubectl(['apply', '--dry-run=server', '-n', target, '-f', '-'], { input: text });
    const accepted = out.split('\n').filter((l) => /\(server dry run\)$/.test(l));
    expect(accepted).toHaveLength(parseRendered(text).length);
  });
});
