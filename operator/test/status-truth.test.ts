/**
 * Status that tells the truth, on a REAL control plane (test/support/control-plane.ts) and a
 * nats-server of this file's own (current version, on a spare port) that the tests stop and
 * start: Ready=False with the reason while JetStream is away and the live numbers dropped, back
 * when it returns; values the server normalises cause no writes on resync; Events for create,
 * update, refuse and delete; the dead-letter stream never improvised by a consumer; dead-letter
 * advisories published while no operator leads are copied by the next leader; /ready (the
 * operator's ready()) false while its first list is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { readConsumer, readStream } from '@orderflow/kit';
import { TestNatsServer, waitFor } from '@orderflow/kit/testing';
import type { ControlPlane } from '../../test/support/control-plane.js';
import { DEFAULT_ADVISORY_STREAM, MAX_DELIVERIES_ADVISORY } from '../src/advisory-stream.js';
import { OWNER_KEY } from '../src/ownership.js';
import { operatorTestFixture } from './support/fixture.js';
import { cr, deadLetterConsumer, kubeConfigFrom, kubectlApply, kubectlPatch, ready } from './support/kube.js';
import { eventsFor, startTestOperator, type TestOperator } from './support/operator.js';
import { createKubeApi } from '../src/kube-api.js';
import { createMetrics } from '../src/metrics.js';
import { createReconciler } from '../src/reconciler.js';
import type { Resource } from '../src/resources.js';

const fx = operatorTestFixture('opst', 'status-truth');
const { names, K8S_NS, log, lines, get } = fx;
const ORDERS = names.stream('ORDERS');

let cp: ControlPlane;
let kc: KubeConfig;
let server: TestNatsServer;
let nc: NatsConnection;
let admin: NatsConnection;
let jsm: JetStreamManager;
let t: TestOperator | undefined;

const reasonOf = async (kind: 'Stream' | 'Consumer', name: string): Promise<string | undefined> =>
  ready(await get(kind, K8S_NS, name))?.reason;

beforeAll(async () => {
  ({ cp, kc } = await fx.start());
  server = await TestNatsServer.create({ name: 'status-truth' });
  await server.start();
  // The operator's connection rides out the server's restart (as the kit's manager does).
  nc = await connect({ servers: server.url, name: 'operator', maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  admin = await connect({ servers: server.url, name: 'test', maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  jsm = await jetstreamManager(admin);
  t = await startTestOperator({ kc, nc, namespace: K8S_NS, log });
  await waitFor('leader with synced caches', () => t!.op.isLeader() && t!.op.ready(), 30_000);
}, 180_000);

afterAll(async () => {
  await t?.op.stop();
  await fx.stop();
  await nc?.close();
  await admin?.close();
  await server?.dispose();
});

describe('status that tells the truth', () => {
  it(
    'JetStream away: Ready=False/JetStreamUnavailable and the live numbers dropped (not left stale); ' + 'back: Ready=True with numbers',
    async () => {
      await kubectlApply(
        cp,
        K8S_NS,
        cr('Stream', 'orders', { name: ORDERS, subjects: [names.subject('orders.>')] }),
        deadLetterConsumer(names, 'worker', ORDERS, { filterSubject: names.subject('orders.>') }),
      );
      await waitFor('both Ready with live numbers', async () => {
        const [s, c] = [await get('Stream', K8S_NS, 'orders'), await get('Consumer', K8S_NS, 'worker')];
        return ready(s)?.status === 'True' && s?.status?.messages === 0 && ready(c)?.status === 'True' && c?.status?.numPending === 0;
      });

      await server.stop();
      const s = await waitFor(
        'stream Ready=False JetStreamUnavailable',
        async () => {
          const o = await get('Stream', K8S_NS, 'orders');
          return ready(o)?.reason === 'JetStreamUnavailable' ? o : undefined;
        },
        30_000,
      );
      expect(ready(s)).toMatchObject({ status: 'False', observedGeneration: 1 });
      expect(ready(s)?.message).toMatch(/JetStream did not answer/);
      // A merge patch alone would have kept the last numbers: they are removed (null in the patch).
      expect(s.status).not.toHaveProperty('messages');
      expect(s.status).not.toHaveProperty('numPending');
      const c = await waitFor(
        'consumer Ready=False JetStreamUnavailable',
        async () => {
          const o = await get('Consumer', K8S_NS, 'worker');
          return ready(o)?.reason === 'JetStreamUnavailable' ? o : undefined;
        },
        30_000,
      );
      expect(c.status).not.toHaveProperty('numAckPending');
      const warned = await waitFor('a Warning event', async () =>
        (await eventsFor(kc, K8S_NS, 'Stream', 'orders')).find((e) => e.reason === 'JetStreamUnavailable'),
      );
      expect(warned.type).toBe('Warning');

      await server.start();
      const back = await waitFor(
        'Ready=True again',
        async () => {
          const o = await get('Stream', K8S_NS, 'orders');
          return ready(o)?.status === 'True' && o?.status?.messages !== undefined ? o : undefined;
        },
        30_000,
      );
      expect(back.status).toMatchObject({ messages: 0, numPending: 0, numAckPending: 0 });
      await waitFor('consumer Ready=True again', async () => ready(await get('Consumer', K8S_NS, 'worker'))?.status === 'True', 30_000);
    },
  );

  it('values the server normalises (maxBytes 0 → -1, maxAckPending 0 → 1000) cause no update and no status write on resync', async () => {
    const NORM = names.stream('NORM');
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'norm', { name: NORM, subjects: [names.subject('norm.>')], maxBytes: 0, maxMsgs: 0, maxMsgsPerSubject: 0 }),
      cr('Consumer', 'norm-c', { streamName: NORM, durableName: 'norm-c', maxAckPending: 0 }),
    );
    await waitFor(
      'InSync',
      async () => (await reasonOf('Stream', 'norm')) === 'InSync' && (await reasonOf('Consumer', 'norm-c')) === 'InSync',
    );
    expect((await readStream(jsm, NORM))?.config.max_bytes).toBe(-1);
    expect((await readConsumer(jsm, NORM, 'norm-c'))?.config.max_ack_pending).toBe(1000);
    const writes = t!.statusWrites();
    const updates = (await t!.reconciles('Stream', 'updated')) + (await t!.reconciles('Consumer', 'updated'));
    const [s0, c0] = [await t!.reconciles('Stream', 'unchanged'), await t!.reconciles('Consumer', 'unchanged')];
    await waitFor(
      'six resyncs of each',
      async () => (await t!.reconciles('Stream', 'unchanged')) >= s0 + 6 && (await t!.reconciles('Consumer', 'unchanged')) >= c0 + 6,
    );
    expect((await t!.reconciles('Stream', 'updated')) + (await t!.reconciles('Consumer', 'updated'))).toBe(updates);
    expect(t!.statusWrites()).toBe(writes);
  });

  it('a status computed from an informer copy older than the last write is refused (409, requeued), never written over it', async () => {
    const STALE = names.stream('STALE');
    await kubectlApply(cp, K8S_NS, cr('Stream', 'stale', { name: STALE, subjects: [names.subject('stale.>')] }));
    const first = await waitFor('the resource', () => get('Stream', K8S_NS, 'stale'));
    const fresh = await waitFor('InSync', async () => {
      const o = await get('Stream', K8S_NS, 'stale');
      return ready(o)?.reason === 'InSync' ? o : undefined;
    });
    // The informer's copy lagging behind the writes: an older resourceVersion and the condition it
    // had then. Its Ready=True would take a new lastTransitionTime from it, a change the fresh copy
    // would then write back — a status that moves on resyncs where nothing did.
    const lagging = {
      ...fresh,
      metadata: { ...fresh.metadata, resourceVersion: first.metadata.resourceVersion },
      status: {
        observedGeneration: 1,
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'JetStreamUnavailable',
            message: 'earlier',
            lastTransitionTime: '2020-01-01T00:00:00Z',
          },
        ],
      },
    } as unknown as Resource;
    expect(lagging.metadata!.resourceVersion).not.toBe(fresh.metadata.resourceVersion);
    const reconcileWith = (copy: Resource) =>
      createReconciler({
        connections: {
          resolve: async () => ({ ok: true, handle: { nc: admin, js: jetstream(admin), jsm }, via: 'default' }),
          lastKnown: () => undefined,
        },
        api: createKubeApi(kc),
        get: () => copy,
        list: () => [],
        metrics: createMetrics(),
        log,
      })(`Stream/${K8S_NS}/stale`);
    expect(await reconcileWith(lagging)).toMatchObject({ requeue: true });
    const after = await get('Stream', K8S_NS, 'stale');
    expect(after!.metadata.resourceVersion).toBe(fresh.metadata.resourceVersion);
    expect(ready(after)).toEqual(ready(fresh));
    // The fresh copy: nothing to write, nothing requeued.
    expect(await reconcileWith(fresh as unknown as Resource)).toEqual({ requeue: false });
    expect((await get('Stream', K8S_NS, 'stale'))!.metadata.resourceVersion).toBe(fresh.metadata.resourceVersion);
  });

  it('Events: Created, Updated, one InvalidSpec warning however many resyncs, Deleted', async () => {
    const EV = names.stream('EV');
    await kubectlApply(cp, K8S_NS, cr('Stream', 'ev', { name: EV, subjects: [names.subject('ev.>')] }));
    await waitFor('Created event', async () => (await eventsFor(kc, K8S_NS, 'Stream', 'ev')).some((e) => e.reason === 'Created'));
    await kubectlPatch(cp, K8S_NS, 'Stream', 'ev', { spec: { maxAge: '1h' } });
    const updated = await waitFor('Updated event', async () =>
      (await eventsFor(kc, K8S_NS, 'Stream', 'ev')).find((e) => e.reason === 'Updated'),
    );
    expect(updated).toMatchObject({
      type: 'Normal',
      action: 'Update',
      reportingController: 'jetstream.orderflow.dev/operator',
      reportingInstance: 'op-a',
    });
    expect(updated.note).toContain('max_age');

    await kubectlPatch(cp, K8S_NS, 'Stream', 'ev', { spec: { subjects: [names.subject('ev.>'), names.subject('ev.>.x')] } });
    await waitFor('InvalidSpec', async () => (await reasonOf('Stream', 'ev')) === 'InvalidSpec');
    const refused = await t!.reconciles('Stream', 'refused');
    await waitFor('three more refusals (resyncs)', async () => (await t!.reconciles('Stream', 'refused')) >= refused + 3);
    const invalid = (await eventsFor(kc, K8S_NS, 'Stream', 'ev')).filter((e) => e.reason === 'InvalidSpec');
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toMatchObject({ type: 'Warning', action: 'Refuse' });

    await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'ev', '--timeout=30s']);
    const deleted = (await eventsFor(kc, K8S_NS, 'Stream', 'ev')).find((e) => e.reason === 'Deleted');
    expect(deleted).toMatchObject({ type: 'Normal', action: 'Delete' });
    expect(await readStream(jsm, EV)).toBeUndefined();
  });

  it('a consumer never improvises the dead-letter stream a Stream resource declares (no R1 stand-in); it waits for it', async () => {
    const SRC = names.stream('SRC');
    const DLQ = names.stream('DLQ2');
    // Without the declared stream, the consumer's own fallback would be <NS>_DLQ2_DLQ on <ns>.dlq2.dlq.> (R1).
    const DEAD = names.subject(`dlq2.dlq.${SRC}.src-c`);
    // The declared DLQ stream cannot be created yet: three replicas on a single server.
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'src', { name: SRC, subjects: [names.subject('src.>')] }),
      cr('Stream', 'dlq2', { name: DLQ, subjects: [names.subject('dlq2.>')], replicas: 3, maxAge: '48h' }),
      cr('Consumer', 'src-c', { streamName: SRC, durableName: 'src-c', deadLetter: { subject: DEAD } }),
    );
    await waitFor('the declared DLQ stream fails to apply', async () => (await reasonOf('Stream', 'dlq2')) === 'ApplyFailed');
    const c = await waitFor('consumer waits for it', async () => {
      const o = await get('Consumer', K8S_NS, 'src-c');
      return ready(o)?.reason === 'DeadLetterStreamMissing' ? o : undefined;
    });
    expect(ready(c)?.message).toContain(DLQ);
    expect(await readStream(jsm, DLQ)).toBeUndefined();
    expect(await jsm.streams.find(DEAD).catch(() => undefined)).toBeUndefined();
    expect(await readConsumer(jsm, SRC, 'src-c')).toBeUndefined();

    await kubectlPatch(cp, K8S_NS, 'Stream', 'dlq2', { spec: { replicas: 1 } });
    await waitFor(
      'consumer Ready once the resource made its stream',
      async () => ready(await get('Consumer', K8S_NS, 'src-c'))?.status === 'True',
      30_000,
    );
    const dlq = (await readStream(jsm, DLQ))!;
    // Made by its Stream resource, as declared, and marked as that resource's.
    expect(dlq.config.max_age).toBe(48 * 3600e9);
    expect(dlq.config.metadata?.[OWNER_KEY]).toBe(`${K8S_NS}/dlq2`);
  });

  it('a MAX_DELIVERIES advisory published while no operator leads is captured and copied by the next leader', async () => {
    const HO = names.stream('HO');
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'ho', { name: HO, subjects: [names.subject('ho.>')] }),
      deadLetterConsumer(names, 'ho-c', HO, { maxDeliver: 1, ackWait: '1s' }),
    );
    await waitFor('consumer Ready', async () => ready(await get('Consumer', K8S_NS, 'ho-c'))?.status === 'True');
    await waitFor(
      "advisory stream and this deployment's durable",
      async () => (await jsm.consumers.list(DEFAULT_ADVISORY_STREAM).next()).length > 0,
    );

    // No leader now.
    await t!.op.stop();
    const js = jetstream(admin);
    await js.publish(names.subject('ho.x'), 'poison');
    const consumer = await js.consumers.get(HO, 'ho-c');
    const m = await consumer.next({ expires: 5000 });
    expect(m?.info.deliveryCount).toBe(1);
    // Never acked: after 1 s the server gives up (max_deliver 1) and announces it — to nobody.
    await waitFor(
      'the advisory, captured in the stream',
      async () =>
        (await jsm.streams
          .getMessage(DEFAULT_ADVISORY_STREAM, { last_by_subj: `${MAX_DELIVERIES_ADVISORY}.${HO}.ho-c` })
          .catch(() => null)) ?? undefined,
      15_000,
    );
    const DLQ = names.stream('DLQ');
    const before = (await readStream(jsm, DLQ))?.state.messages ?? 0;

    // The next leader (another instance) copies it.
    t = await startTestOperator({ kc, nc, namespace: K8S_NS, log, identity: 'op-b' });
    await waitFor('op-b leads', () => t!.op.isLeader() && t!.op.ready(), 30_000);
    const copied = await waitFor(
      'dead letter in the DLQ',
      async () => {
        const s = await readStream(jsm, DLQ);
        return s && s.state.messages > before ? s : undefined;
      },
      30_000,
    );
    const dl = await jsm.streams.getMessage(DLQ, { seq: copied.state.last_seq });
    expect(dl?.header.get('Dlq-Reason')).toBe('max_deliveries');
    expect(dl?.header.get('Dlq-Consumer')).toBe('ho-c');
    expect(new TextDecoder().decode(dl?.data)).toBe('poison');
    expect(lines.some((l) => l.msg === 'dead letter copied' && l.consumer === 'ho-c')).toBe(true);
  });
});

describe('a JetStream lookup that fails is not "absent"', () => {
  let authServer: TestNatsServer;
  let opConn: NatsConnection;
  let adminConn: NatsConnection;
  let second: TestOperator | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'opst-auth-'));
  const LNS = `${K8S_NS}-lookup`;

  beforeAll(async () => {
    // The operator's user may do everything but list stream names (what finding a DLQ stream asks).
    const conf = join(dir, 'nats.conf');
    writeFileSync(
      conf,
      `authorization {
  users = [
    { user: admin, password: admin }
    {
      user: operator, password: operator
      permissions: { publish: { allow: [">"], deny: ["$JS.API.STREAM.NAMES"] }, subscribe: { allow: [">"] } }
    }
  ]
}
`,
    );
    authServer = await TestNatsServer.create({ name: 'lookup', args: ['-c', conf] });
    await authServer.start();
    opConn = await connect({ servers: authServer.url, user: 'operator', pass: 'operator', name: 'operator' });
    adminConn = await connect({ servers: authServer.url, user: 'admin', pass: 'admin', name: 'test' });
    await cp.kubectl(['create', 'namespace', LNS]);
    second = await startTestOperator({ kc, nc: opConn, namespace: LNS, log, identity: 'op-lookup' });
    await waitFor('leader', () => second!.op.isLeader() && second!.op.ready(), 30_000);
  }, 60_000);

  afterAll(async () => {
    await second?.op.stop();
    await opConn?.close();
    await adminConn?.close();
    await authServer?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the consumer is Ready=False naming the error (PermissionDenied); no dead-letter stream is made on a guess', async () => {
    const ajsm = await jetstreamManager(adminConn);
    await ajsm.streams.add({ name: 'SRC', subjects: ['src.>'] });
    // Dead letters already have a stream (not the derived name).
    await ajsm.streams.add({ name: 'MYDLQ', subjects: ['dlq.>'] });
    await kubectlApply(
      cp,
      LNS,
      cr('Consumer', 'c', { streamName: 'SRC', durableName: 'c', ackPolicy: AckPolicy.Explicit, deadLetter: { subject: 'dlq.SRC.c' } }),
    );
    const c = await waitFor('Ready=False PermissionDenied', async () => {
      const o = await get('Consumer', LNS, 'c');
      return ready(o)?.reason === 'PermissionDenied' ? o : undefined;
    });
    expect(ready(c)?.message).toContain('Permissions Violation for Publish to "$JS.API.STREAM.NAMES"');
    expect(await readStream(ajsm, 'DLQ')).toBeUndefined();
    expect(await readConsumer(ajsm, 'SRC', 'c')).toBeUndefined();
  });
});

describe('/ready is false while the first list is refused', () => {
  it('a leader whose Role lacks list on consumers is not ready; granting it makes it ready', async () => {
    const RNS = `${K8S_NS}-rbac`;
    await cp.kubectl(['create', 'namespace', RNS]);
    await cp.kubectl(['create', 'serviceaccount', 'op', '-n', RNS]);
    const role = (resources: string) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'op', namespace: RNS },
      rules: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
        { apiGroups: ['jetstream.orderflow.dev'], resources: resources.split(','), verbs: ['get', 'list', 'watch', 'patch', 'update'] },
      ],
    });
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'op', namespace: RNS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'op' },
      subjects: [{ kind: 'ServiceAccount', name: 'op', namespace: RNS }],
    };
    await cp.kubectl(['apply', '-f', '-'], { input: [role('streams'), binding].map((o) => JSON.stringify(o)).join('\n---\n') });
    const limited = kubeConfigFrom(cp.kubeconfigFor(await cp.tokenFor(RNS, 'op'), 'rbac-op'));
    const r = await startTestOperator({ kc: limited, nc, namespace: RNS, log, identity: 'op-rbac' });
    try {
      await waitFor('leading', () => r.op.isLeader(), 30_000);
      await waitFor('the refused list logged', () =>
        lines.some(
          (l) => String(l.msg).includes('list/watch of consumers.jetstream.orderflow.dev') && String(l.msg).includes('refused (403)'),
        ),
      );
      expect(r.op.ready()).toBe(false);
      await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(role('streams,consumers,natsconnections,keyvalues,objectstores')) });
      await waitFor('ready once the list is allowed', () => r.op.ready(), 30_000);
    } finally {
      await r.op.stop();
    }
  });
});
