/**
 * The bucket planner without a server: validation, the layout every bucket has, the reasons in the
 * bucket's own field names, and the server-version rules (republish changes from 2.10,
 * limitMarkerTtl turned on in place from 2.12 and never off).
 */
import { describe, expect, it } from 'vitest';
import type { StreamConfig } from '@nats-io/jetstream';
import { planKeyValue, planObjectStore, toKeyValueStreamConfig, toObjectStoreStreamConfig } from '../../src/reconcile/index.js';

const held = (c: Partial<StreamConfig>): { config: StreamConfig } => ({ config: c as StreamConfig });

describe('KeyValue plan', () => {
  it('refuses an invalid spec naming each field, before anything is read', () => {
    const p = planKeyValue(
      {
        bucket: 'a.b',
        history: 65,
        replicas: 7,
        ttl: '1 day',
        limitMarkerTtl: '500ms',
        mirror: { name: 'x' },
        sources: [{ name: 'y' }],
        republish: { destination: 'bad subject' },
        storage: 'disk' as never,
      },
      undefined,
    );
    expect(p.action).toBe('refuse');
    expect(p.errors.map((e) => e.path)).toEqual([
      'spec.bucket',
      'spec.storage',
      'spec.replicas',
      'spec.ttl',
      'spec.history',
      'spec.limitMarkerTtl',
      'spec.sources',
      'spec.republish',
      'spec.republish.destination',
    ]);
  });

  it('lays the bucket out as the clients do, with explicit defaults', () => {
    expect(toKeyValueStreamConfig({ bucket: 'cfg' })).toEqual({
      name: 'KV_cfg',
      subjects: ['$KV.cfg.>'],
      description: undefined,
      retention: 'limits',
      max_age: 0,
      max_bytes: -1,
      storage: 'file',
      num_replicas: 1,
      placement: undefined,
      compression: 'none',
      metadata: {},
      discard: 'new',
      allow_rollup_hdrs: true,
      allow_direct: true,
      duplicate_window: 120e9,
      max_msgs_per_subject: 1,
      max_msg_size: -1,
      republish: undefined,
      mirror: undefined,
      mirror_direct: false,
      sources: undefined,
      allow_msg_ttl: false,
      subject_delete_marker_ttl: undefined,
    });
    // A source bucket's keys are renamed into this bucket's subjects; an external one is left as it is.
    expect(
      toKeyValueStreamConfig({ bucket: 'agg', sources: [{ name: 'a' }, { name: 'KV_b', externalApiPrefix: '$JS.hub.API' }] }).sources,
    ).toEqual([
      { name: 'KV_a', subject_transforms: [{ src: '$KV.a.>', dest: '$KV.agg.>' }] },
      { name: 'KV_b', external: { api: '$JS.hub.API' } },
    ]);
    // Fields newer than the server are not sent to it.
    const old = toKeyValueStreamConfig({ bucket: 'cfg' }, [2, 9, 0]);
    expect(old).not.toHaveProperty('compression');
    expect(old).not.toHaveProperty('metadata');
    expect(old).not.toHaveProperty('allow_msg_ttl');
  });

  it('names the bucket field and the stream field behind it; puts a hand-changed layout back', () => {
    const actual = held({ ...toKeyValueStreamConfig({ bucket: 'kv', history: 2 }), allow_direct: false, discard: 'old' });
    const p = planKeyValue({ bucket: 'kv', history: 4, placement: { cluster: 'east' } }, actual);
    expect(p.action).toBe('update');
    expect(p.reasons).toEqual([
      'placement: null → {"cluster":"east","tags":[]}',
      'discard (bucket layout): "old" → "new"',
      'allow_direct (bucket layout): false → true',
      'history (max_msgs_per_subject): 2 → 4',
    ]);
  });

  it('republish changes in place from 2.10; limitMarkerTtl is turned on in place from 2.12 and never off', () => {
    const withRepublish = held(toKeyValueStreamConfig({ bucket: 'kv', republish: { destination: 'a.>' } }, [2, 9, 0]));
    const r = planKeyValue({ bucket: 'kv', republish: { destination: 'b.>' } }, withRepublish, { serverVersion: '2.9.10' });
    expect(r.action).toBe('recreate-needed');
    expect(r.reasons[0]).toMatch(/^republish: .* \(nats-server 2\.9\.10 refuses it; 2\.10\.0 allows changing it\)/);

    const plain = held(toKeyValueStreamConfig({ bucket: 'kv' }));
    const on11 = planKeyValue({ bucket: 'kv', limitMarkerTtl: '5s' }, plain, { serverVersion: '2.11.4' });
    expect(on11.action).toBe('recreate-needed');
    const refused =
      'limitMarkerTtl (allow_msg_ttl): false → true cannot be changed in place ' +
      '(nats-server 2.11.4 refuses it; 2.12.0 allows turning it on)';
    expect(on11.reasons[0]?.slice(0, refused.length)).toBe(refused);
    expect(planKeyValue({ bucket: 'kv', limitMarkerTtl: '5s' }, plain, { serverVersion: '2.12.0' }).action).toBe('update');

    const marked = held(toKeyValueStreamConfig({ bucket: 'kv', limitMarkerTtl: '5s' }));
    const off = planKeyValue({ bucket: 'kv' }, marked, { serverVersion: '2.15.2' });
    expect(off.action).toBe('recreate-needed');
    expect(off.reasons).toEqual([
      expect.stringMatching(/^limitMarkerTtl \(allow_msg_ttl\): true → false .*allowing message TTLs cannot be undone/),
    ]);
  });
});

describe('ObjectStore plan', () => {
  it('lays the store out as the clients do, and refuses what the server lacks naming the version', () => {
    expect(toObjectStoreStreamConfig({ bucket: 'files', ttl: '1h' })).toMatchObject({
      name: 'OBJ_files',
      subjects: ['$O.files.C.>', '$O.files.M.>'],
      max_age: 3600e9,
      duplicate_window: 120e9,
      discard: 'new',
      allow_rollup_hdrs: true,
      allow_direct: true,
    });
    const p = planObjectStore({ bucket: 'files', metadata: { a: 'b' } }, undefined, { serverVersion: '2.9.10' });
    expect(p).toMatchObject({
      action: 'refuse',
      reasons: ['spec.metadata needs nats-server 2.10.0 or newer (the connected server is 2.9.10)'],
    });
    const fixed = planObjectStore({ bucket: 'files', storage: 'memory' }, held(toObjectStoreStreamConfig({ bucket: 'files' })));
    expect(fixed.action).toBe('recreate-needed');
    expect(fixed.reasons[0]).toMatch(/^storage: "file" → "memory" cannot be changed in place/);
  });
});
