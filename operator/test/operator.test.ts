/**
 * The operator in-process against a REAL control plane (etcd + kube-apiserver, see
 * test/support/control-plane.ts) and the suite's real nats-server. Resources are written with
 * kubectl, the CRDs are the chart's. One control plane for the file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { readConsumer, readStream } from '@orderflow/kit';
import { deleteNamespaceStreams, testNats, waitFor } from '@orderflow/kit/testing';
import { KubectlError, type ControlPlane } from '../../test/support/control-plane.js';
import { createKubeApi } from '../src/kube-api.js';
import { createMetrics, type OperatorMetrics } from '../src/metrics.js';
import { createOperator, type Operator } from '../src/operator.js';
import { fixedConnection } from './support/operator.js';
import { FINALIZER } from '../src/resources.js';
import { operatorTestFixture } from './support/fixture.js';
import { cr, deadLetterConsumer, kubectlApply, kubectlPatch, ready, type Obj } from './support/kube.js';

const fx = operatorTestFixture('op', 'operator');
const { ns, names, K8S_NS, log, lines, get } = fx;
const ORDERS = names.stream('ORDERS');

let cp: ControlPlane;
let kc: KubeConfig;
let nc: NatsConnection;
let jsm: JetStreamManager;
let op: Operator | undefined;
let metrics: OperatorMetrics;
/** Status writes the operator made (the API it is given is wrapped to count them). */
let statusWrites = 0;

const reconcileCount = async (kind: 'Stream' | 'Consumer'): Promise<number> =>
  (await metrics.reconciles.get()).values.filter((v) => v.labels.kind === kind).reduce((a, v) => a + v.value, 0);

beforeAll(async () => {
  ({ cp, kc } = await fx.start());
  nc = await testNats();
  jsm = await jetstreamManager(nc);
  metrics = createMetrics();
  const api = createKubeApi(kc);
  op = createOperator({
    kc,
    api: {
      ...api,
      patchStatus: (...args) => {
        statusWrites++;
        return api.patchStatus(...args);
      },
    },
    nats: await fixedConnection(nc),
    log,
    metrics,
    identity: 'op-a',
    namespace: K8S_NS,
    // Long enough to ride out an apiserver restart: the watches must survive it on their own,
    // not by a new election rebuilding them.
    lease: { namespace: K8S_NS, name: 'orderflow-operator', durationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 500 },
    resyncMs: 300,
    requeue: { baseDelayMs: 50, maxDelayMs: 1000 },
  });
  op.start();
  await waitFor('leader with synced caches', () => op!.isLeader() && op!.ready(), 30_000);
}, 180_000);

afterAll(async () => {
  await op?.stop();
  await fx.stop();
  if (nc) {
    await deleteNamespaceStreams(nc, ns);
    await nc.close();
  }
});

describe('operator against a real kube-apiserver', () => {
  it('kubectl apply → JetStream objects, finalizer, Ready=True with observedGeneration and live numbers', async () => {
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'orders', { name: ORDERS, subjects: [names.subject('orders.>')], maxAge: '1h' }),
      deadLetterConsumer(names, 'inventory-orders', ORDERS, {
        filterSubject: names.subject('orders.>'),
        maxDeliver: 5,
        backoff: ['1s', '5s'],
      }),
    );
    const s = await waitFor('stream Ready', async () => {
      const o = await get('Stream', K8S_NS, 'orders');
      return ready(o)?.status === 'True' ? o : undefined;
    });
    expect(s.status).toMatchObject({ observedGeneration: 1, messages: 0 });
    expect(ready(s)).toMatchObject({ reason: expect.stringMatching(/Created|InSync/), observedGeneration: 1 });
    expect(s.metadata.finalizers).toContain(FINALIZER);
    // The CRD's defaults were applied by the server, and the operator took them as given.
    expect(s.spec).toMatchObject({ storage: 'file', replicas: 1, retention: 'limits', discard: 'old' });
    const c = await waitFor('consumer Ready', async () => {
      const o = await get('Consumer', K8S_NS, 'inventory-orders');
      return ready(o)?.status === 'True' ? o : undefined;
    });
    expect(c.status).toMatchObject({ observedGeneration: 1, numPending: 0, numAckPending: 0 });
    expect((await readStream(jsm, ORDERS))?.config.max_age).toBe(3600e9);
    expect((await readConsumer(jsm, ORDERS, 'inventory-orders'))?.config.max_deliver).toBe(5);
    expect(await readStream(jsm, names.stream('DLQ'))).toBeDefined();

    // kubectl shows the printer columns from the status.
    const table = await cp.kubectl(['get', 'streams.jetstream.orderflow.dev', '-n', K8S_NS]);
    expect(table).toMatch(/orders\s+True\s+0\s+0/);

    await jetstream(nc).publish(names.subject('orders.created'), 'x');
    await waitFor('messages=1, numPending=1', async () => {
      const o = await get('Stream', K8S_NS, 'orders');
      return o?.status?.messages === 1 && o.status.numPending === 1;
    });
  });

  it('a no-op resync writes nothing: no status patch, resourceVersion stays put (status compared by value, not key order)', async () => {
    // Settled first: a resync after Created/Updated turns the reason to InSync (one write).
    const before = await waitFor('stream InSync', async () => {
      const o = await get('Stream', K8S_NS, 'orders');
      return ready(o)?.reason === 'InSync' ? o : undefined;
    });
    const consumerBefore = await waitFor('consumer InSync', async () => {
      const o = await get('Consumer', K8S_NS, 'inventory-orders');
      return ready(o)?.reason === 'InSync' && o?.status?.numPending === 1 ? o : undefined;
    });
    // The server returns status keys in its own order (sorted), not in the order written.
    expect(Object.keys(before.status!)).toEqual([...Object.keys(before.status!)].sort());
    const writes = statusWrites;
    const [streams, consumers] = [await reconcileCount('Stream'), await reconcileCount('Consumer')];
    // Several full resyncs of both resources happen in between (the fact waited on).
    await waitFor(
      'three more resyncs of each',
      async () => (await reconcileCount('Stream')) >= streams + 3 && (await reconcileCount('Consumer')) >= consumers + 3,
    );
    expect(statusWrites).toBe(writes);
    const after = (await get('Stream', K8S_NS, 'orders'))!;
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect((await get('Consumer', K8S_NS, 'inventory-orders'))!.metadata.resourceVersion).toBe(consumerBefore.metadata.resourceVersion);
  });

  it('kubectl patch of the spec bumps generation → JetStream updated, observedGeneration follows', async () => {
    await kubectlPatch(cp, K8S_NS, 'Stream', 'orders', { spec: { maxAge: '2h' } });
    const s = await waitFor('observedGeneration 2', async () => {
      const o = await get('Stream', K8S_NS, 'orders');
      return o?.status?.observedGeneration === 2 ? o : undefined;
    });
    expect(s.metadata.generation).toBe(2);
    // Updated, or InSync once a resync has seen it already applied.
    expect(ready(s)).toMatchObject({ status: 'True', reason: expect.stringMatching(/^(Updated|InSync)$/), observedGeneration: 2 });
    expect((await readStream(jsm, ORDERS))?.config.max_age).toBe(7200e9);
  });

  it('the server rejects a spec outside the CRD schema or its CEL rules; a schema-valid but unusable spec is Ready=False', async () => {
    const rejected = await kubectlPatch(cp, K8S_NS, 'Stream', 'orders', { spec: { maxAge: 'forever' } }).catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(KubectlError);
    expect((rejected as KubectlError).stderr).toMatch(/spec\.maxAge.*should match/);
    // Cross-field rules and fields fixed at creation are the API server's to refuse (CEL).
    for (const [spec, message] of [
      [{ duplicateWindow: '3h' }, 'duplicateWindow may not exceed maxAge'],
      [{ storage: 'memory' }, 'storage is fixed when the stream is created'],
    ] as const) {
      const refused = await kubectlPatch(cp, K8S_NS, 'Stream', 'orders', { spec }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(KubectlError);
      expect((refused as KubectlError).stderr).toContain(message);
    }
    expect((await get('Stream', K8S_NS, 'orders'))!.metadata.generation).toBe(2);

    const before = await readStream(jsm, ORDERS);
    await kubectlPatch(cp, K8S_NS, 'Stream', 'orders', { spec: { subjects: [names.subject('orders.>'), names.subject('orders.>.x')] } });
    const s = await waitFor('InvalidSpec', async () => {
      const o = await get('Stream', K8S_NS, 'orders');
      return o?.status?.observedGeneration === 3 ? o : undefined;
    });
    expect(ready(s)).toMatchObject({ status: 'False', reason: 'InvalidSpec', observedGeneration: 3 });
    expect(ready(s)?.message).toContain('spec.subjects[1]');
    expect((await readStream(jsm, ORDERS))?.config).toEqual(before?.config);

    await kubectlPatch(cp, K8S_NS, 'Stream', 'orders', { spec: { subjects: [names.subject('orders.>')] } });
    const back = await waitFor('Ready again', async () => {
      const o = await get('Stream', K8S_NS, 'orders');
      return o?.status?.observedGeneration === 4 && ready(o)?.status === 'True' ? o : undefined;
    });
    // The live numbers are back with Ready.
    expect(back.status?.messages).toBe(1);

    // What admission cannot see: JetStream changed by hand into something the spec cannot reach in place.
    const DRIFTED = names.stream('DRIFTED');
    await kubectlApply(cp, K8S_NS, cr('Stream', 'drifted', { name: DRIFTED, subjects: [names.subject('drifted.>')] }));
    await waitFor('drifted created', () => readStream(jsm, DRIFTED));
    await jsm.streams.delete(DRIFTED);
    await jsm.streams.add({ name: DRIFTED, subjects: [names.subject('drifted.>')], storage: 'memory' });
    const r = await waitFor('RecreateNeeded', async () => {
      const o = await get('Stream', K8S_NS, 'drifted');
      return ready(o)?.reason === 'RecreateNeeded' ? o : undefined;
    });
    expect(ready(r)).toMatchObject({ status: 'False', reason: 'RecreateNeeded' });
    expect(ready(r)?.message).toContain('storage: "memory" → "file" cannot be changed in place');
    expect((await readStream(jsm, DRIFTED))?.config.storage).toBe('memory');
    await jsm.streams.delete(DRIFTED);
    await waitFor('recreated as the spec says', async () => (await readStream(jsm, DRIFTED))?.config.storage === 'file');
    await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'drifted', '--timeout=60s']);
  });

  it('drift: a stream deleted or edited by hand is put back by the periodic resync', async () => {
    await jsm.streams.delete(ORDERS);
    await waitFor('stream recreated', () => readStream(jsm, ORDERS));
    await waitFor('consumer recreated', () => readConsumer(jsm, ORDERS, 'inventory-orders'));
    const info = (await readStream(jsm, ORDERS))!;
    await jsm.streams.update(ORDERS, { ...info.config, max_age: 3 * 3600e9 });
    await waitFor('max_age repaired', async () => (await readStream(jsm, ORDERS))?.config.max_age === 7200e9);
  });

  it('watches survive an apiserver restart: a change made after it is reconciled, by the same leader', async () => {
    const elected = lines.filter((l) => l.msg === 'became leader').length;
    // A crash (kill -9): the watch connections break at once, no clean close.
    await cp.restartApiserver({ signal: 'SIGKILL' });
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'after-restart', { name: names.stream('AFTERRESTART'), subjects: [names.subject('afterrestart.>')] }),
    );
    await waitFor('reconciled after the restart', () => readStream(jsm, names.stream('AFTERRESTART')), 30_000);
    await kubectlPatch(cp, K8S_NS, 'Stream', 'orders', { spec: { maxMsgs: 1000 } });
    await waitFor('update after the restart reconciled', async () => (await readStream(jsm, ORDERS))?.config.max_msgs === 1000, 30_000);
    expect(lines.filter((l) => l.msg === 'became leader').length).toBe(elected);
    expect(op!.isLeader()).toBe(true);
  });

  it('kubectl delete: the finalizer deletes the JetStream object; preventDelete keeps it', async () => {
    // kubectl delete waits until the object is gone, i.e. until the operator removed its finalizer.
    await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'after-restart', '--timeout=30s']);
    expect(await get('Stream', K8S_NS, 'after-restart')).toBeUndefined();
    expect(await readStream(jsm, names.stream('AFTERRESTART'))).toBeUndefined();

    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'kept', { name: names.stream('KEPT'), subjects: [names.subject('kept.>')], preventDelete: true }),
    );
    await waitFor('kept Ready', async () => ready(await get('Stream', K8S_NS, 'kept'))?.status === 'True');
    await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'kept', '--timeout=30s']);
    expect(await get('Stream', K8S_NS, 'kept')).toBeUndefined();
    expect(await readStream(jsm, names.stream('KEPT'))).toBeDefined();

    await cp.kubectl(['delete', '-n', K8S_NS, 'consumers.jetstream.orderflow.dev', 'inventory-orders', '--timeout=30s']);
    expect(await readConsumer(jsm, ORDERS, 'inventory-orders')).toBeUndefined();
    expect(await readStream(jsm, ORDERS)).toBeDefined();
  });

  it('a stale finalizer write is refused by the server with 409 Conflict', async () => {
    const o = (await get('Stream', K8S_NS, 'orders')) as Obj;
    const api = createKubeApi(kc);
    await kubectlPatch(cp, K8S_NS, 'Stream', 'orders', { metadata: { labels: { touched: 'yes' } } });
    const err = await api.setFinalizers('Stream', K8S_NS, 'orders', [], o.metadata.resourceVersion!).catch((e: unknown) => e);
    expect((err as { code?: number }).code).toBe(409);
    expect((await get('Stream', K8S_NS, 'orders'))!.metadata.finalizers).toContain(FINALIZER);
  });
});
