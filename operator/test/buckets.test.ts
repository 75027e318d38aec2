/**
 * KeyValue and ObjectStore resources on a REAL control plane (etcd + kube-apiserver) with the
 * operator in-process: on the suite's current nats-server a bucket is created (Ready=True with
 * observedGeneration, usable through the NATS clients' Kvm/Objm), changed in place, refused naming
 * a field the server fixes, deleted with its resource (or kept with preventDelete); on Debian's
 * 2.9.10 a field that server lacks is Ready=False naming the version it needs. The CRDs' CEL
 * rules refuse the fixed fields at admission.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { deleteBucket, readBucket } from '@orderflow/kit';
import { testNats, waitFor } from '@orderflow/kit/testing';
import type { ControlPlane } from '../../test/support/control-plane.js';
import { FINALIZER, GROUP, PLURAL, type Kind } from '../src/resources.js';
import { operatorTestFixture } from './support/fixture.js';
import { cr, kubectlApply, kubectlPatch, ready, refusedPatch, type Obj } from './support/kube.js';
import { eventsFor, startTestOperator, type TestOperator } from './support/operator.js';

const LEGACY_URL = process.env.LEGACY_NATS_URL ?? 'nats://127.0.0.1:4222';
const fx = operatorTestFixture('bkt', 'buckets');
const { ns, K8S_NS, log, get } = fx;
const OLD_NS = `${K8S_NS}-old`;
const OBS_NS = `${K8S_NS}-obs`;
const bucket = (base: string): string => `${ns}_${base}`;

let cp: ControlPlane;
let kc: KubeConfig;
let nc: NatsConnection;
let jsm: JetStreamManager;
let legacy: NatsConnection;
let legacyJsm: JetStreamManager;
const operators: TestOperator[] = [];

beforeAll(async () => {
  ({ cp, kc } = await fx.start());
  await cp.kubectl(['create', 'namespace', OLD_NS]);
  await cp.kubectl(['create', 'namespace', OBS_NS]);
  nc = await testNats();
  jsm = await jetstreamManager(nc);
  legacy = await connect({ servers: LEGACY_URL, name: 'buckets-legacy' });
  legacyJsm = await jetstreamManager(legacy);
  operators.push(await startTestOperator({ kc, nc, namespace: K8S_NS, log, identity: 'op-current' }));
  operators.push(await startTestOperator({ kc, nc: legacy, namespace: OLD_NS, log, identity: 'op-legacy' }));
  operators.push(await startTestOperator({ kc, nc, namespace: OBS_NS, log, identity: 'op-observe', mode: 'observe' }));
  for (const t of operators) await waitFor('leader with synced caches', () => t.op.isLeader() && t.op.ready(), 30_000);
}, 180_000);

afterAll(async () => {
  for (const t of operators) await t.op.stop();
  await fx.stop();
  for (const [c, m] of [
    [nc, jsm],
    [legacy, legacyJsm],
  ] as const) {
    if (!c) continue;
    for await (const name of m.streams.names()) {
      if (name.startsWith(`KV_${ns}_`) || name.startsWith(`OBJ_${ns}_`)) await m.streams.delete(name).catch(() => undefined);
    }
    await c.close();
  }
});

const readyOf = async (kind: Kind, namespace: string, name: string, generation: number): Promise<Obj> =>
  waitFor(`${kind} ${name} Ready=True at generation ${generation}`, async () => {
    const o = await get(kind, namespace, name);
    const c = ready(o);
    return c?.status === 'True' && o?.status?.observedGeneration === generation && c.observedGeneration === generation ? o : undefined;
  });

const deleteResource = (kind: Kind, namespace: string, name: string): Promise<string> =>
  cp.kubectl(['delete', '-n', namespace, `${PLURAL[kind]}.${GROUP}`, name, '--timeout=60s']);

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('KeyValue and ObjectStore on the current nats-server', () => {
  it(
    'kubectl apply → buckets Kvm/Objm open and use, Ready=True with observedGeneration and size; ' +
      'a change applies in place; delete removes them',
    async () => {
      const kvName = bucket('cache');
      const osName = bucket('files');
      await kubectlApply(
        cp,
        K8S_NS,
        cr('KeyValue', 'cache', { bucket: kvName, history: 3, ttl: '1h', description: 'order cache' }),
        cr('ObjectStore', 'files', { bucket: osName, description: 'invoices', maxBytes: 1 << 24 }),
      );
      const kvObj = await readyOf('KeyValue', K8S_NS, 'cache', 1);
      expect(kvObj.status).toMatchObject({ observedGeneration: 1, messages: 0, bytes: 0 });
      expect(kvObj.metadata.finalizers).toContain(FINALIZER);
      // The CRD's defaults were applied by the server.
      expect(kvObj.spec).toMatchObject({ storage: 'file', replicas: 1 });
      const osObj = await readyOf('ObjectStore', K8S_NS, 'files', 1);
      expect(osObj.metadata.finalizers).toContain(FINALIZER);

      const kv = await new Kvm(nc).open(kvName);
      await kv.put('order-1', enc('reserved'));
      expect((await kv.get('order-1'))?.string()).toBe('reserved');
      const os = await new Objm(nc).open(osName);
      await os.putBlob({ name: 'invoice-1' }, enc('%PDF'));
      expect(new TextDecoder().decode((await os.getBlob('invoice-1'))!)).toBe('%PDF');
      // A resync brings the live numbers.
      await waitFor('KeyValue status counts the value', async () => (await get('KeyValue', K8S_NS, 'cache'))?.status?.messages === 1);
      await waitFor(
        'ObjectStore status counts the bytes',
        async () => (((await get('ObjectStore', K8S_NS, 'files'))?.status as { bytes?: number } | undefined)?.bytes ?? 0) > 0,
      );

      await kubectlPatch(cp, K8S_NS, 'KeyValue', 'cache', { spec: { history: 5 } });
      const updated = await readyOf('KeyValue', K8S_NS, 'cache', 2);
      expect(ready(updated)?.status).toBe('True');
      expect((await readBucket(jsm, 'KeyValue', kvName))?.config.max_msgs_per_subject).toBe(5);
      expect((await kv.get('order-1'))?.string()).toBe('reserved');
      // The change is named in the Update event: the condition's message may already be a later
      // resync's "matches the spec" by the time it is read.
      await waitFor('an Updated event names the change', async () =>
        (await eventsFor(kc, K8S_NS, 'KeyValue', 'cache')).some(
          (e) => e.reason === 'Updated' && (e.note ?? '').includes('history (max_msgs_per_subject): 3 → 5'),
        ),
      );
      const reasons = (await eventsFor(kc, K8S_NS, 'KeyValue', 'cache')).map((e) => e.reason);
      expect(reasons).toEqual(expect.arrayContaining(['Created', 'Updated']));

      await deleteResource('KeyValue', K8S_NS, 'cache');
      await deleteResource('ObjectStore', K8S_NS, 'files');
      expect(await get('KeyValue', K8S_NS, 'cache')).toBeUndefined();
      expect(await readBucket(jsm, 'KeyValue', kvName)).toBeUndefined();
      expect(await readBucket(jsm, 'ObjectStore', osName)).toBeUndefined();
    },
  );

  it('a bucket Kvm made before is taken over only when asked, and a field the server fixes is refused naming it', async () => {
    const b = bucket('adopted');
    await new Kvm(nc).create(b, { storage: 'memory' as never, history: 2 });
    await kubectlApply(cp, K8S_NS, cr('KeyValue', 'adopted', { bucket: b, history: 2 }));
    const notOwned = await waitFor('NotOwned', async () => {
      const o = await get('KeyValue', K8S_NS, 'adopted');
      return ready(o)?.reason === 'NotOwned' ? o : undefined;
    });
    expect(ready(notOwned)?.message).toContain(`key-value bucket ${b} exists and was not created by this resource`);
    await cp.kubectl(['annotate', '-n', K8S_NS, `keyvalues.${GROUP}`, 'adopted', `${GROUP}/adopt=true`]);
    const refused = await waitFor('RecreateNeeded', async () => {
      const o = await get('KeyValue', K8S_NS, 'adopted');
      return ready(o)?.reason === 'RecreateNeeded' ? o : undefined;
    });
    expect(ready(refused)).toMatchObject({ status: 'False' });
    expect(ready(refused)?.message).toMatch(/^storage: "memory" → "file" cannot be changed in place/);
    // Nothing was written: the bucket keeps its storage and carries no marker.
    expect((await readBucket(jsm, 'KeyValue', b))?.config).toMatchObject({ storage: 'memory' });
    await deleteResource('KeyValue', K8S_NS, 'adopted');
    await deleteBucket(jsm, 'KeyValue', b);
  });

  it('preventDelete keeps the bucket when its resource is deleted', async () => {
    const b = bucket('kept');
    await kubectlApply(cp, K8S_NS, cr('ObjectStore', 'kept', { bucket: b, preventDelete: true }));
    const o = await readyOf('ObjectStore', K8S_NS, 'kept', 1);
    // Nothing will delete the store, so no finalizer holds the resource.
    expect(o.metadata.finalizers ?? []).not.toContain(FINALIZER);
    await deleteResource('ObjectStore', K8S_NS, 'kept');
    expect(await get('ObjectStore', K8S_NS, 'kept')).toBeUndefined();
    expect(await readBucket(jsm, 'ObjectStore', b)).toBeDefined();
    await (await new Objm(nc).open(b)).putBlob({ name: 'still-here' }, enc('x'));
    await deleteBucket(jsm, 'ObjectStore', b);
  });
});

describe('preventUpdate and observe mode', () => {
  it('preventUpdate: a change is reported (UpdatePrevented), not applied', async () => {
    const b = bucket('frozen');
    await kubectlApply(cp, K8S_NS, cr('KeyValue', 'frozen', { bucket: b, history: 2, preventUpdate: true }));
    await readyOf('KeyValue', K8S_NS, 'frozen', 1);
    await kubectlPatch(cp, K8S_NS, 'KeyValue', 'frozen', { spec: { history: 6 } });
    const o = await readyOf('KeyValue', K8S_NS, 'frozen', 2);
    expect(ready(o)).toMatchObject({ reason: 'UpdatePrevented' });
    expect(ready(o)?.message).toContain('history (max_msgs_per_subject): 2 → 6');
    expect((await readBucket(jsm, 'KeyValue', b))?.config.max_msgs_per_subject).toBe(2);
    await deleteResource('KeyValue', K8S_NS, 'frozen');
    expect(await readBucket(jsm, 'KeyValue', b)).toBeUndefined();
  });

  it('observe mode: a missing bucket is reported, never created; one made elsewhere is compared; nothing is deleted', async () => {
    const b = bucket('observed');
    await kubectlApply(cp, OBS_NS, cr('ObjectStore', 'observed', { bucket: b, ttl: '1h' }));
    const missing = await waitFor('Missing', async () => {
      const o = await get('ObjectStore', OBS_NS, 'observed');
      return ready(o)?.reason === 'Missing' ? o : undefined;
    });
    expect(ready(missing)?.message).toBe(`ObjectStore ${b} does not exist (observe mode: not created)`);
    expect(missing.metadata.finalizers ?? []).not.toContain(FINALIZER);
    expect(await readBucket(jsm, 'ObjectStore', b)).toBeUndefined();
    await new Objm(nc).create(b, { ttl: 3_600_000_000_000 });
    await waitFor('InSync', async () => ready(await get('ObjectStore', OBS_NS, 'observed'))?.reason === 'InSync');
    await deleteResource('ObjectStore', OBS_NS, 'observed');
    expect(await readBucket(jsm, 'ObjectStore', b)).toBeDefined();
    await deleteBucket(jsm, 'ObjectStore', b);
  });
});

describe('KeyValue and ObjectStore on nats-server 2.9', () => {
  it('a field 2.9 lacks is Ready=False naming the version it needs, and nothing is created', async () => {
    const kvName = bucket('old_kv');
    const osName = bucket('old_os');
    await kubectlApply(
      cp,
      OLD_NS,
      cr('KeyValue', 'compressed', { bucket: kvName, compression: true }),
      cr('ObjectStore', 'tagged', { bucket: osName, metadata: { team: 'billing' } }),
      cr('KeyValue', 'plain', { bucket: bucket('old_plain'), history: 4 }),
    );
    for (const [kind, name, path] of [
      ['KeyValue', 'compressed', 'spec.compression'],
      ['ObjectStore', 'tagged', 'spec.metadata'],
    ] as const) {
      const o = await waitFor(`${kind} ${name} InvalidSpec`, async () => {
        const x = await get(kind, OLD_NS, name);
        return ready(x)?.reason === 'InvalidSpec' ? x : undefined;
      });
      expect(ready(o)).toMatchObject({ status: 'False', observedGeneration: 1 });
      expect(ready(o)?.message).toBe(`${path} needs nats-server 2.10.0 or newer (the connected server is 2.9.10)`);
    }
    expect(await readBucket(legacyJsm, 'KeyValue', kvName)).toBeUndefined();
    expect(await readBucket(legacyJsm, 'ObjectStore', osName)).toBeUndefined();
    // What 2.9 has works there, through the client too.
    await readyOf('KeyValue', OLD_NS, 'plain', 1);
    const kv = await new Kvm(legacy).open(bucket('old_plain'));
    await kv.put('k', enc('v'));
    expect((await kv.get('k'))?.string()).toBe('v');
    await deleteResource('KeyValue', OLD_NS, 'plain');
    expect(await readBucket(legacyJsm, 'KeyValue', bucket('old_plain'))).toBeUndefined();
  });
});

describe('admission (the CRDs’ CEL rules on the real API server)', () => {
  it('bucket, storage and mirror are fixed; a mirror has no sources', async () => {
    const origin = bucket('adm_origin');
    await kubectlApply(
      cp,
      K8S_NS,
      cr('KeyValue', 'adm-kv', { bucket: bucket('adm_kv') }),
      cr('KeyValue', 'adm-mirror', { bucket: bucket('adm_mirror'), mirror: { name: origin } }),
      cr('ObjectStore', 'adm-os', { bucket: bucket('adm_os') }),
    );
    expect(await refusedPatch(cp, K8S_NS, 'KeyValue', 'adm-kv', { storage: 'memory' })).toContain(
      'storage is fixed when the bucket is created',
    );
    expect(await refusedPatch(cp, K8S_NS, 'KeyValue', 'adm-kv', { bucket: bucket('renamed') })).toContain('bucket is fixed');
    expect(await refusedPatch(cp, K8S_NS, 'KeyValue', 'adm-mirror', { mirror: { name: bucket('elsewhere') } })).toContain(
      'mirror is fixed',
    );
    expect(await refusedPatch(cp, K8S_NS, 'KeyValue', 'adm-mirror', { sources: [{ name: origin }] })).toContain('a mirror has no sources');
    expect(await refusedPatch(cp, K8S_NS, 'ObjectStore', 'adm-os', { storage: 'memory' })).toContain(
      'storage is fixed when the store is created',
    );
    // What may change is admitted.
    await kubectlPatch(cp, K8S_NS, 'KeyValue', 'adm-kv', { spec: { history: 10, ttl: '2h' } });
    for (const [kind, name] of [
      ['KeyValue', 'adm-kv'],
      ['KeyValue', 'adm-mirror'],
      ['ObjectStore', 'adm-os'],
    ] as const)
      await deleteResource(kind, K8S_NS, name);
  });
});
