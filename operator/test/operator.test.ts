/**
 * The Kubernetes adapter against a STAND-IN API server (test/support/stand-in-apiserver.ts — an
 * in-process node:http imitation of kube-apiserver's REST paths, since no real API server can be
 * installed here) and the REAL nats-server JetStream on 127.0.0.1:4222.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { KubeConfig } from '@kubernetes/client-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Names, readConsumer, readStream } from '@orderflow/kit';
import { deleteNamespaceStreams, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { createKubeApi } from '../src/kube-api.js';
import { createMetrics, type OperatorMetrics } from '../src/metrics.js';
import { createOperator, type Operator } from '../src/operator.js';
import { FINALIZER, type Condition, type ResourceStatus } from '../src/resources.js';
import { StandInApiServer } from './support/stand-in-apiserver.js';

const ns = testNamespace('op');
const names = new Names(ns);
const K8S_NS = 'orderflow';
const BASE = `/apis/jetstream.orderflow.dev/v1alpha1/namespaces/${K8S_NS}`;
const log = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

let apiserver: StandInApiServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let kc: KubeConfig;
const running: { op: Operator; metrics: OperatorMetrics; id: string }[] = [];

function kubeConfig(server: string): KubeConfig {
  const k = new KubeConfig();
  k.loadFromOptions({
    clusters: [{ name: 'stand-in', server, skipTLSVerify: true }],
    users: [{ name: 'test', token: 'test' }],
    contexts: [{ name: 'test', cluster: 'stand-in', user: 'test' }],
    currentContext: 'test',
  });
  return k;
}

function startOperator(id: string): { op: Operator; metrics: OperatorMetrics; id: string } {
  const metrics = createMetrics();
  const op = createOperator({
    kc,
    api: createKubeApi(kc),
    nc,
    js: jetstream(nc),
    jsm,
    log: log.child({ id }),
    metrics,
    identity: id,
    namespace: K8S_NS,
    lease: { namespace: K8S_NS, name: 'orderflow-operator', durationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 200 },
    resyncMs: 500,
    requeue: { baseDelayMs: 50, maxDelayMs: 1000 },
  });
  op.start();
  const r = { op, metrics, id };
  running.push(r);
  return r;
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${apiserver.url()}${path}`, {
    method,
    headers: { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const streamCR = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'jetstream.orderflow.dev/v1alpha1', kind: 'Stream', metadata: { name }, spec });
const consumerCR = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'jetstream.orderflow.dev/v1alpha1', kind: 'Consumer', metadata: { name }, spec });

function ready(status: ResourceStatus | undefined): Condition | undefined {
  return status?.conditions?.find((c) => c.type === 'Ready');
}

async function statusOf(plural: string, name: string): Promise<{ status?: ResourceStatus; metadata: Record<string, unknown> }> {
  const r = await call('GET', `${BASE}/${plural}/${name}`);
  return r.json as { status?: ResourceStatus; metadata: Record<string, unknown> };
}

const ORDERS = names.stream('ORDERS');

beforeAll(async () => {
  apiserver = new StandInApiServer(100);
  kc = kubeConfig(await apiserver.start());
  nc = await testNats();
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  for (const r of running) await r.op.stop();
  await apiserver.stop();
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});

describe('operator against the stand-in API server', () => {
  let leader: { op: Operator; metrics: OperatorMetrics; id: string };

  it('create → JetStream objects exist, finalizer added, Ready=True with observedGeneration and live numbers', async () => {
    leader = startOperator('op-a');
    await waitFor('leader', () => leader.op.isLeader() && leader.op.ready());
    expect((await call('POST', `${BASE}/streams`, streamCR('orders', { name: ORDERS, subjects: [names.subject('orders.>')], maxAge: '1h' }))).status).toBe(201);
    expect(
      (
        await call('POST', `${BASE}/consumers`, consumerCR('inventory-orders', {
          streamName: ORDERS, durableName: 'inventory-orders', filterSubject: names.subject('orders.>'), maxDeliver: 5, backoff: ['1s', '5s'],
          deadLetter: { subject: names.dlqSubject(ORDERS, 'inventory-orders') },
        }))
      ).status,
    ).toBe(201);
    const s = await waitFor('stream Ready', async () => {
      const o = await statusOf('streams', 'orders');
      return ready(o.status)?.status === 'True' ? o : undefined;
    });
    expect(s.status).toMatchObject({ observedGeneration: 1, messages: 0 });
    expect(ready(s.status)).toMatchObject({ reason: expect.stringMatching(/Created|InSync/) });
    expect(s.metadata.finalizers).toContain(FINALIZER);
    const c = await waitFor('consumer Ready', async () => {
      const o = await statusOf('consumers', 'inventory-orders');
      return ready(o.status)?.status === 'True' ? o : undefined;
    });
    expect(c.status).toMatchObject({ observedGeneration: 1, numPending: 0, numAckPending: 0 });
    expect((await readStream(jsm, ORDERS))?.config.max_age).toBe(3600e9);
    expect((await readConsumer(jsm, ORDERS, 'inventory-orders'))?.config.max_deliver).toBe(5);
    // The dead-letter stream was derived and ensured for the consumer's deadLetter subject.
    expect(await readStream(jsm, names.stream('DLQ'))).toBeDefined();

    // Live numbers follow the stream on resync.
    await jetstream(nc).publish(names.subject('orders.created'), 'x');
    await waitFor('messages=1, numPending=1', async () => {
      const o = await statusOf('streams', 'orders');
      return o.status?.messages === 1 && o.status.numPending === 1;
    });
  });

  it('spec change bumps generation → JetStream updated and observedGeneration follows', async () => {
    const cur = await call('GET', `${BASE}/streams/orders`);
    const obj = cur.json as { spec: Record<string, unknown> };
    await call('PUT', `${BASE}/streams/orders`, { ...obj, spec: { ...obj.spec, maxAge: '2h' } });
    const s = await waitFor('observedGeneration 2', async () => {
      const o = await statusOf('streams', 'orders');
      return o.status?.observedGeneration === 2 ? o : undefined;
    });
    expect(s.metadata.generation).toBe(2);
    expect(ready(s.status)).toMatchObject({ status: 'True', observedGeneration: 2 });
    expect((await readStream(jsm, ORDERS))?.config.max_age).toBe(7200e9);
  });

  it('invalid spec → Ready=False with reason, JetStream untouched', async () => {
    const before = await readStream(jsm, ORDERS);
    await call('PATCH', `${BASE}/streams/orders`, { spec: { maxAge: 'forever' } });
    const s = await waitFor('Ready=False', async () => {
      const o = await statusOf('streams', 'orders');
      return o.status?.observedGeneration === 3 ? o : undefined;
    });
    expect(ready(s.status)).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(ready(s.status)?.message).toContain('spec.maxAge invalid duration "forever"');
    expect((await readStream(jsm, ORDERS))?.config).toEqual(before?.config);

    await call('PATCH', `${BASE}/streams/orders`, { spec: { storage: 'memory', maxAge: '2h' } });
    const r = await waitFor('RecreateNeeded', async () => {
      const o = await statusOf('streams', 'orders');
      return o.status?.observedGeneration === 4 ? o : undefined;
    });
    expect(ready(r.status)).toMatchObject({ status: 'False', reason: 'RecreateNeeded' });
    expect(ready(r.status)?.message).toContain('storage');
    await call('PATCH', `${BASE}/streams/orders`, { spec: { storage: 'file' } });
    await waitFor('Ready again', async () => ready((await statusOf('streams', 'orders')).status)?.status === 'True');
  });

  it('drift: a stream deleted or edited by hand is put back by the periodic resync', async () => {
    await jsm.streams.delete(ORDERS);
    await waitFor('stream recreated', () => readStream(jsm, ORDERS));
    await waitFor('consumer recreated', () => readConsumer(jsm, ORDERS, 'inventory-orders'));
    const info = (await readStream(jsm, ORDERS))!;
    await jsm.streams.update(ORDERS, { ...info.config, max_age: 3 * 3600e9 });
    await waitFor('max_age repaired', async () => (await readStream(jsm, ORDERS))?.config.max_age === 7200e9);
  });

  it('watch disconnect → resumes from its resourceVersion; 410 Gone → relists', async () => {
    apiserver.dropWatches();
    await call('POST', `${BASE}/streams`, streamCR('after-drop', { name: names.stream('AFTERDROP'), subjects: [names.subject('afterdrop.>')] }));
    await waitFor('reconciled after reconnect', () => readStream(jsm, names.stream('AFTERDROP')), 10_000);

    const listsBefore = apiserver.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/streams') && !r.query.includes('watch=true')).length;
    const gone = apiserver.requests.length;
    apiserver.compactAndDropWatches();
    await call('POST', `${BASE}/streams`, streamCR('after-gone', { name: names.stream('AFTERGONE'), subjects: [names.subject('aftergone.>')] }));
    await waitFor('reconciled after 410', () => readStream(jsm, names.stream('AFTERGONE')), 10_000);
    const lists = apiserver.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/streams') && !r.query.includes('watch=true')).length;
    expect(lists).toBeGreaterThan(listsBefore);
    expect(apiserver.requests.slice(gone).some((r) => r.query.includes('watch=true'))).toBe(true);
    // Watches asked for bookmarks.
    expect(apiserver.requests.some((r) => r.query.includes('allowWatchBookmarks=true'))).toBe(true);
  });

  it('delete with finalizer removes the JetStream object; preventDelete keeps it', async () => {
    await call('DELETE', `${BASE}/streams/after-drop`);
    await waitFor('resource gone', async () => (await call('GET', `${BASE}/streams/after-drop`)).status === 404);
    expect(await readStream(jsm, names.stream('AFTERDROP'))).toBeUndefined();

    await call('PATCH', `${BASE}/streams/after-gone`, { spec: { preventDelete: true } });
    await waitFor('observed', async () => (await statusOf('streams', 'after-gone')).status?.observedGeneration === 2);
    await call('DELETE', `${BASE}/streams/after-gone`);
    await waitFor('resource gone', async () => (await call('GET', `${BASE}/streams/after-gone`)).status === 404);
    expect(await readStream(jsm, names.stream('AFTERGONE'))).toBeDefined();
  });

  it('a stale finalizer write gets 409 Conflict and is retried', async () => {
    const r = await call('PATCH', `${BASE}/streams/orders`, { metadata: { finalizers: [], resourceVersion: '1' } });
    expect(r.status).toBe(409);
  });

  it('two instances: only the leader reconciles; the standby takes over when the leader stops', async () => {
    const standby = startOperator('op-b');
    await new Promise((r) => setTimeout(r, 800));
    expect(leader.op.isLeader()).toBe(true);
    expect(standby.op.isLeader()).toBe(false);
    const lease = apiserver.get('coordination.k8s.io/v1/leases', K8S_NS, 'orderflow-operator');
    expect((lease as unknown as { spec: { holderIdentity: string } }).spec.holderIdentity).toBe('op-a');
    await call('POST', `${BASE}/streams`, streamCR('while-a', { name: names.stream('WHILEA'), subjects: [names.subject('whilea.>')] }));
    await waitFor('reconciled by leader', () => readStream(jsm, names.stream('WHILEA')));
    const total = async (m: OperatorMetrics): Promise<number> => (await m.reconciles.get()).values.reduce((a, v) => a + v.value, 0);
    expect(await total(standby.metrics)).toBe(0);
    expect(await total(leader.metrics)).toBeGreaterThan(0);

    await leader.op.stop();
    await waitFor('standby leads', () => standby.op.isLeader() && standby.op.ready(), 5000);
    await call('POST', `${BASE}/streams`, streamCR('while-b', { name: names.stream('WHILEB'), subjects: [names.subject('whileb.>')] }));
    await waitFor('reconciled by new leader', () => readStream(jsm, names.stream('WHILEB')));
    expect(await total(standby.metrics)).toBeGreaterThan(0);
  });
});
