/**
 * KeyValue and ObjectStore buckets reconciled into the real nats-server this project runs the file
 * against (the current one for `nats-current`, Debian's 2.9.10 for `nats-2.9`): created, read back,
 * reconciled again without a write, changed in place or refused naming the field, deleted — and
 * usable through the NATS clients' own Kvm/Objm, which also make buckets the planner finds in sync.
 * A field the server is too old for is refused before anything is created, naming the version.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  atLeast,
  deleteBucket,
  parseVersion,
  planKeyValue,
  planObjectStore,
  readBucket,
  reconcileKeyValue,
  reconcileObjectStore,
  reconcileStream,
  type KeyValueSpec,
  type ObjectStoreSpec,
  type Version,
} from '../../src/reconcile/index.js';
import { Names } from '../../src/topology.js';
import { deleteNamespaceStreams, testNamespace, testNats } from '@orderflow/kit/testing';
import { withoutCalls } from './support.js';

let nc: NatsConnection;
let jsm: JetStreamManager;
let server: Version;
const ns = testNamespace('bk');
const names = new Names(ns);
/** Buckets of this file: namespaced, so a leftover is recognisable. */
const bucket = (base: string): string => `${ns}_${base}`;

beforeAll(async () => {
  nc = await testNats();
  jsm = await jetstreamManager(nc);
  server = parseVersion(nc.info?.version)!;
  // One file stream for the whole file: 2.15.2 removes an account's store directory with its last
  // file stream, racing a create that follows at once.
  expect((await reconcileStream(jsm, { name: names.stream('BK_ANCHOR'), subjects: [names.subject('bkanchor')] })).outcome).toBe('created');
});
afterAll(async () => {
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(`KV_${ns}_`) || name.startsWith(`OBJ_${ns}_`)) await jsm.streams.delete(name).catch(() => undefined);
  }
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});

const withoutWrites = <T>(fn: () => Promise<T>): Promise<T> =>
  withoutCalls([vi.spyOn(jsm.streams, 'add'), vi.spyOn(jsm.streams, 'update')], fn);

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('KeyValue', () => {
  it(
    'is created as Kvm lays a bucket out, works through Kvm, changes history/ttl in place, ' + 'refuses a storage change, and is deleted',
    async () => {
      const b = bucket('orders');
      const spec: KeyValueSpec = {
        bucket: b,
        description: 'order cache',
        history: 3,
        ttl: '1h',
        maxValueSize: 1024,
        maxBytes: 1 << 20,
        republish: { destination: names.subject('kvrepub.>') },
      };
      const r = await reconcileKeyValue(jsm, spec);
      expect(r.outcome, r.reasons.join('; ')).toBe('created');
      expect((await readBucket(jsm, 'KeyValue', b))?.config).toMatchObject({
        name: `KV_${b}`,
        subjects: [`$KV.${b}.>`],
        description: 'order cache',
        max_msgs_per_subject: 3,
        max_age: 3600e9,
        max_msg_size: 1024,
        max_bytes: 1 << 20,
        discard: 'new',
        allow_rollup_hdrs: true,
        allow_direct: true,
        republish: { src: `$KV.${b}.>`, dest: names.subject('kvrepub.>') },
      });
      expect((await withoutWrites(() => reconcileKeyValue(jsm, spec))).action).toBe('noop');

      const kv = await new Kvm(nc).open(b);
      await kv.put('o1', enc('a'));
      await kv.put('o1', enc('b'));
      expect((await kv.get('o1'))?.string()).toBe('b');
      expect((await kv.status()).history).toBe(3);

      const changed = { ...spec, history: 5, ttl: '2h', description: 'orders' };
      const u = await reconcileKeyValue(jsm, changed);
      expect(u.outcome, u.reasons.join('; ')).toBe('updated');
      expect(u.reasons).toContain('history (max_msgs_per_subject): 3 → 5');
      expect((await readBucket(jsm, 'KeyValue', b))?.config).toMatchObject({
        max_msgs_per_subject: 5,
        max_age: 7200e9,
        description: 'orders',
      });
      expect((await kv.get('o1'))?.string()).toBe('b');
      expect((await withoutWrites(() => reconcileKeyValue(jsm, changed))).action).toBe('noop');

      const moved = await withoutWrites(() => reconcileKeyValue(jsm, { ...changed, storage: 'memory' }));
      expect(moved).toMatchObject({ action: 'recreate-needed', outcome: 'refused' });
      expect(moved.reasons[0]).toMatch(/^storage: "file" → "memory" cannot be changed in place/);

      expect(await deleteBucket(jsm, 'KeyValue', b)).toBe(true);
      expect(await readBucket(jsm, 'KeyValue', b)).toBeUndefined();
      expect(await deleteBucket(jsm, 'KeyValue', b)).toBe(false);
    },
  );

  it('a bucket Kvm.create made with the same options is in sync with the spec', async () => {
    const b = bucket('bykvm');
    await new Kvm(nc).create(b, {
      history: 4,
      ttl: 60_000,
      maxValueSize: 512,
      max_bytes: 4096,
      description: 'made by Kvm',
      storage: 'memory' as never,
    });
    const spec: KeyValueSpec = {
      bucket: b,
      history: 4,
      ttl: '1m',
      maxValueSize: 512,
      maxBytes: 4096,
      description: 'made by Kvm',
      storage: 'memory',
    };
    const plan = planKeyValue(spec, await readBucket(jsm, 'KeyValue', b), { serverVersion: nc.info?.version });
    expect(plan, plan.reasons.join('; ')).toMatchObject({ action: 'noop' });
    // And a difference is one the planner names in the bucket's terms.
    expect(
      planKeyValue({ ...spec, maxValueSize: 256 }, await readBucket(jsm, 'KeyValue', b), { serverVersion: nc.info?.version }).reasons,
    ).toEqual(['maxValueSize (max_msg_size): 512 → 256']);
    await deleteBucket(jsm, 'KeyValue', b);
  });

  it('a mirror bucket reads its origin through Kvm, and its origin is fixed', async () => {
    const origin = bucket('origin');
    const mirror = bucket('mirror');
    expect((await reconcileKeyValue(jsm, { bucket: origin })).outcome).toBe('created');
    const spec: KeyValueSpec = { bucket: mirror, mirror: { name: origin } };
    const r = await reconcileKeyValue(jsm, spec);
    expect(r.outcome, r.reasons.join('; ')).toBe('created');
    expect((await readBucket(jsm, 'KeyValue', mirror))?.config).toMatchObject({ mirror: { name: `KV_${origin}` }, mirror_direct: true });
    expect((await withoutWrites(() => reconcileKeyValue(jsm, spec))).action).toBe('noop');

    await (await new Kvm(nc).open(origin)).put('k', enc('v1'));
    // The mirror holds the origin's keys under the origin's subjects (nats.js 3.4 reads a mirror
    // by its own name, so the copy is read from the stream).
    await vi.waitFor(
      async () => expect((await jsm.streams.getMessage(`KV_${mirror}`, { last_by_subj: `$KV.${origin}.k` }))?.string()).toBe('v1'),
      { timeout: 10_000, interval: 100 },
    );
    expect((await (await new Kvm(nc).open(mirror)).status()).bucket).toBe(mirror);
    // A mirror Kvm.create makes is the same bucket.
    const byKvm = bucket('kvmmirror');
    await new Kvm(nc).create(byKvm, { mirror: { name: origin } });
    const same = planKeyValue({ bucket: byKvm, mirror: { name: origin } }, await readBucket(jsm, 'KeyValue', byKvm), {
      serverVersion: nc.info?.version,
    });
    expect(same, same.reasons.join('; ')).toMatchObject({ action: 'noop' });
    await deleteBucket(jsm, 'KeyValue', byKvm);

    const moved = await withoutWrites(() => reconcileKeyValue(jsm, { bucket: mirror, mirror: { name: bucket('other') } }));
    expect(moved).toMatchObject({ action: 'recreate-needed', outcome: 'refused' });
    expect(moved.reasons[0]).toMatch(/^mirror: .* cannot be changed in place/);
    await deleteBucket(jsm, 'KeyValue', mirror);
    await deleteBucket(jsm, 'KeyValue', origin);
  });

  it('sources copy other buckets’ keys in (2.10+; refused on older servers naming the version)', async () => {
    const a = bucket('srca');
    const agg = bucket('agg');
    expect((await reconcileKeyValue(jsm, { bucket: a })).outcome).toBe('created');
    const spec: KeyValueSpec = { bucket: agg, sources: [{ name: a }] };
    const r = await reconcileKeyValue(jsm, spec);
    if (!atLeast(server, [2, 10, 0])) {
      expect(r).toMatchObject({ action: 'refuse', outcome: 'refused' });
      expect(r.reasons).toEqual([`spec.sources needs nats-server 2.10.0 or newer (the connected server is ${server.join('.')})`]);
      expect(await readBucket(jsm, 'KeyValue', agg)).toBeUndefined();
      return;
    }
    expect(r.outcome, r.reasons.join('; ')).toBe('created');
    expect((await withoutWrites(() => reconcileKeyValue(jsm, spec))).action).toBe('noop');
    await (await new Kvm(nc).open(a)).put('from-a', enc('1'));
    const kv = await new Kvm(nc).open(agg);
    await vi.waitFor(async () => expect((await kv.get('from-a'))?.string()).toBe('1'), { timeout: 10_000, interval: 100 });
    const u = await reconcileKeyValue(jsm, { bucket: agg, sources: [] });
    expect(u.outcome, u.reasons.join('; ')).toBe('updated');
    expect((await readBucket(jsm, 'KeyValue', agg))?.config.sources ?? []).toHaveLength(0);
  });

  it('compression and metadata need 2.10, limitMarkerTtl 2.11; each is created and changed where the server has it', async () => {
    const cases: { since: Version; spec: Partial<KeyValueSpec>; holds: Record<string, unknown>; path: string }[] = [
      { since: [2, 10, 0], spec: { compression: true }, holds: { compression: 's2' }, path: 'spec.compression' },
      {
        since: [2, 10, 0],
        spec: { metadata: { team: 'orders' } },
        holds: { metadata: expect.objectContaining({ team: 'orders' }) },
        path: 'spec.metadata',
      },
      {
        since: [2, 11, 0],
        spec: { limitMarkerTtl: '5s', ttl: '1m' },
        holds: { allow_msg_ttl: true, subject_delete_marker_ttl: 5e9 },
        path: 'spec.limitMarkerTtl',
      },
    ];
    for (const [i, c] of cases.entries()) {
      const b = bucket(`feat${i}`);
      const spec = { bucket: b, ...c.spec };
      const r = await reconcileKeyValue(jsm, spec);
      if (!atLeast(server, c.since)) {
        expect(r, c.path).toMatchObject({ action: 'refuse', outcome: 'refused' });
        expect(r.reasons).toEqual([
          `${c.path} needs nats-server ${c.since.join('.')} or newer (the connected server is ${server.join('.')})`,
        ]);
        expect(await readBucket(jsm, 'KeyValue', b)).toBeUndefined();
        continue;
      }
      expect(r.outcome, `${c.path}: ${r.reasons.join('; ')}`).toBe('created');
      expect((await readBucket(jsm, 'KeyValue', b))?.config).toMatchObject(c.holds);
      expect((await withoutWrites(() => reconcileKeyValue(jsm, spec))).action, c.path).toBe('noop');
      const kv = await new Kvm(nc).open(b);
      await kv.put('k', enc('v'));
      expect((await kv.get('k'))?.string()).toBe('v');
      await deleteBucket(jsm, 'KeyValue', b);
    }
  });

  it('placement and replicas are created and kept; a field taken out of the spec goes back to its default', async () => {
    const b = bucket('placed');
    const spec: KeyValueSpec = { bucket: b, replicas: 1, placement: { tags: ['ssd'] }, ttl: '10m', maxValueSize: 64, maxBytes: 8192 };
    expect((await reconcileKeyValue(jsm, spec)).outcome).toBe('created');
    expect((await readBucket(jsm, 'KeyValue', b))?.config).toMatchObject({ num_replicas: 1, placement: { tags: ['ssd'] } });
    expect((await withoutWrites(() => reconcileKeyValue(jsm, spec))).action).toBe('noop');
    const bare = await reconcileKeyValue(jsm, { bucket: b, replicas: 1, placement: { tags: ['ssd'] } });
    expect(bare.outcome, bare.reasons.join('; ')).toBe('updated');
    expect((await readBucket(jsm, 'KeyValue', b))?.config).toMatchObject({ max_age: 0, max_msg_size: -1, max_bytes: -1 });
    expect((await withoutWrites(() => reconcileKeyValue(jsm, { bucket: b, placement: { tags: ['ssd'] } }))).action).toBe('noop');
    await deleteBucket(jsm, 'KeyValue', b);

    const o = bucket('placed_os');
    const os: ObjectStoreSpec = { bucket: o, replicas: 1, placement: { tags: ['ssd'] } };
    expect((await reconcileObjectStore(jsm, os)).outcome).toBe('created');
    expect((await readBucket(jsm, 'ObjectStore', o))?.config).toMatchObject({ num_replicas: 1, placement: { tags: ['ssd'] } });
    expect((await withoutWrites(() => reconcileObjectStore(jsm, os))).action).toBe('noop');
    await deleteBucket(jsm, 'ObjectStore', o);
  });

  it('limitMarkerTtl changes in place where the server has it (refused before 2.11)', async () => {
    const b = bucket('markers');
    const first = await reconcileKeyValue(jsm, { bucket: b, limitMarkerTtl: '5s' });
    if (!atLeast(server, [2, 11, 0])) {
      expect(first).toMatchObject({ action: 'refuse', reasons: [expect.stringContaining('spec.limitMarkerTtl needs nats-server 2.11.0')] });
      return;
    }
    expect(first.outcome).toBe('created');
    const u = await reconcileKeyValue(jsm, { bucket: b, limitMarkerTtl: '10s' });
    expect(u.outcome, u.reasons.join('; ')).toBe('updated');
    expect(u.reasons).toEqual(['limitMarkerTtl (subject_delete_marker_ttl): 5s → 10s']);
    expect((await readBucket(jsm, 'KeyValue', b))?.config.subject_delete_marker_ttl).toBe(10e9);
    await deleteBucket(jsm, 'KeyValue', b);
  });

  it('NACK’s integer limitMarkerTtl (nanoseconds) is the same as the duration text', () => {
    const actual = { config: { name: 'KV_x', subjects: ['$KV.x.>'], allow_msg_ttl: true, subject_delete_marker_ttl: 5e9 } };
    const a = planKeyValue({ bucket: 'x', limitMarkerTtl: 5e9 }, undefined);
    const b = planKeyValue({ bucket: 'x', limitMarkerTtl: '5s' }, undefined);
    expect(a.config).toEqual(b.config);
    expect(a.config).toMatchObject(actual.config);
  });
});

describe('ObjectStore', () => {
  it(
    'is created as Objm lays a store out, stores objects through Objm, changes ttl/description in place, ' +
      'refuses a storage change, and is deleted',
    async () => {
      const b = bucket('files');
      const spec: ObjectStoreSpec = { bucket: b, description: 'invoices', ttl: '24h', maxBytes: 1 << 22 };
      const r = await reconcileObjectStore(jsm, spec);
      expect(r.outcome, r.reasons.join('; ')).toBe('created');
      expect((await readBucket(jsm, 'ObjectStore', b))?.config).toMatchObject({
        name: `OBJ_${b}`,
        subjects: [`$O.${b}.C.>`, `$O.${b}.M.>`],
        description: 'invoices',
        max_age: 86400e9,
        max_bytes: 1 << 22,
        discard: 'new',
        allow_rollup_hdrs: true,
        allow_direct: true,
      });
      expect((await withoutWrites(() => reconcileObjectStore(jsm, spec))).action).toBe('noop');

      const os = await new Objm(nc).open(b);
      await os.putBlob({ name: 'invoice-1' }, enc('pdf bytes'));
      expect(new TextDecoder().decode((await os.getBlob('invoice-1'))!)).toBe('pdf bytes');

      const changed = { ...spec, ttl: '48h', description: 'all invoices' };
      const u = await reconcileObjectStore(jsm, changed);
      expect(u.outcome, u.reasons.join('; ')).toBe('updated');
      expect(u.reasons).toContain('ttl (max_age): 24h → 48h');
      expect((await readBucket(jsm, 'ObjectStore', b))?.config).toMatchObject({ max_age: 172800e9, description: 'all invoices' });
      expect((await withoutWrites(() => reconcileObjectStore(jsm, changed))).action).toBe('noop');

      const moved = await withoutWrites(() => reconcileObjectStore(jsm, { ...changed, storage: 'memory' }));
      expect(moved).toMatchObject({ action: 'recreate-needed', outcome: 'refused' });
      expect(moved.reasons[0]).toMatch(/^storage: "file" → "memory" cannot be changed in place/);

      expect(await deleteBucket(jsm, 'ObjectStore', b)).toBe(true);
      expect(await readBucket(jsm, 'ObjectStore', b)).toBeUndefined();
    },
  );

  it('a store Objm.create made with the same options is in sync with the spec', async () => {
    const b = bucket('byobjm');
    await new Objm(nc).create(b, { description: 'made by Objm', ttl: 3_600_000_000_000, max_bytes: 1 << 20, storage: 'memory' as never });
    const plan = planObjectStore(
      { bucket: b, description: 'made by Objm', ttl: '1h', maxBytes: 1 << 20, storage: 'memory' },
      await readBucket(jsm, 'ObjectStore', b),
      { serverVersion: nc.info?.version },
    );
    expect(plan, plan.reasons.join('; ')).toMatchObject({ action: 'noop' });
    await deleteBucket(jsm, 'ObjectStore', b);
  });

  it('compression and metadata need 2.10 (refused on older servers naming the version)', async () => {
    const b = bucket('osfeat');
    const spec: ObjectStoreSpec = { bucket: b, compression: true, metadata: { team: 'billing' } };
    const r = await reconcileObjectStore(jsm, spec);
    if (!atLeast(server, [2, 10, 0])) {
      expect(r).toMatchObject({ action: 'refuse', outcome: 'refused' });
      expect(r.reasons).toEqual([
        'spec.compression needs nats-server 2.10.0 or newer (the connected server is 2.9.10)',
        'spec.metadata needs nats-server 2.10.0 or newer (the connected server is 2.9.10)',
      ]);
      expect(await readBucket(jsm, 'ObjectStore', b)).toBeUndefined();
      return;
    }
    expect(r.outcome, r.reasons.join('; ')).toBe('created');
    expect((await readBucket(jsm, 'ObjectStore', b))?.config).toMatchObject({
      compression: 's2',
      metadata: expect.objectContaining({ team: 'billing' }),
    });
    expect((await withoutWrites(() => reconcileObjectStore(jsm, spec))).action).toBe('noop');
    const u = await reconcileObjectStore(jsm, { ...spec, compression: false });
    expect(u.outcome, u.reasons.join('; ')).toBe('updated');
    expect((await readBucket(jsm, 'ObjectStore', b))?.config.compression).toBe('none');
    await deleteBucket(jsm, 'ObjectStore', b);
  });
});
