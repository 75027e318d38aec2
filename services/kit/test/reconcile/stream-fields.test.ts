/**
 * Every Stream spec field, reconciled into the real nats-server this project runs the file
 * against (the current one for `nats-current`, Debian's 2.9.10 for `nats-2.9`): created with the
 * field, read back, reconciled again with no create/update call, changed in place (or refused,
 * naming the field, where the server fixes it). A field the server is too old for is refused
 * before anything is created, with the version it needs.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { atLeast, deleteStream, parseVersion, readStream, reconcileStream, type Version } from '../../src/reconcile/index.js';
import { Names, type StreamSpec } from '../../src/topology.js';
import { deleteNamespaceStreams, testNamespace, testNats } from '@orderflow/kit/testing';
import { fieldCaseTests, oneField, type FieldCase } from './field-cases.js';
import { withoutCalls } from './support.js';

let nc: NatsConnection;
let jsm: JetStreamManager;
let server: Version;
const ns = testNamespace('sf');
const names = new Names(ns);

beforeAll(async () => {
  nc = await testNats();
  jsm = await jetstreamManager(nc);
  server = parseVersion(nc.info?.version)!;
  // nats-server 2.15.2 removes an account's store directory once its last file stream is gone,
  // racing a create that follows at once ("could not create storage directory"): this file
  // deletes each case's stream as it goes, so one stream stays for the whole file.
  expect((await reconcileStream(jsm, { name: names.stream('SF_ANCHOR'), subjects: [names.subject('sfanchor')] })).outcome).toBe('created');
});
afterAll(async () => {
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});

/** Fails the test if a reconcile makes any create or update call. */
const withoutWrites = <T>(fn: () => Promise<T>): Promise<T> =>
  withoutCalls([vi.spyOn(jsm.streams, 'add'), vi.spyOn(jsm.streams, 'update')], fn);

const ORIGIN = () => names.stream('SF_ORIGIN');
const cases: FieldCase<StreamSpec>[] = [
  oneField('description', 'description', ['orders'], ['all orders']),
  oneField('retention', 'retention', ['interest'], ['workqueue'], { name: 'retention interest', fixed: true }),
  oneField('maxConsumers', 'max_consumers', [10], [20], { fixed: true, fixedBefore: '2.14.0' }),
  oneField('maxMsgs', 'max_msgs', [100], [200]),
  oneField('maxBytes', 'max_bytes', [1 << 20], [2 << 20]),
  oneField('maxAge', 'max_age', ['1h', 3600e9], ['1h30m', 5400e9]),
  oneField('maxMsgsPerSubject', 'max_msgs_per_subject', [5], [6]),
  oneField('maxMsgSize', 'max_msg_size', [1024], [2048]),
  oneField('discard', 'discard', ['new'], ['old']),
  {
    name: 'discardPerSubject',
    spec: { discard: 'new', maxMsgsPerSubject: 5, discardPerSubject: true },
    holds: { discard_new_per_subject: true },
    change: { discard: 'new', maxMsgsPerSubject: 5, discardPerSubject: false },
    changed: { max_msgs_per_subject: 5 },
  },
  oneField('storage', 'storage', ['memory'], ['file'], { fixed: true }),
  { name: 'noAck', spec: { noAck: true }, holds: { no_ack: true }, change: { noAck: false }, changed: {} },
  oneField('duplicateWindow', 'duplicate_window', ['30s', 30e9], ['1m', 60e9]),
  { name: 'placement', spec: { placement: { tags: ['ssd'] } }, holds: { placement: { tags: ['ssd'] } } },
  {
    name: 'sealed',
    spec: { sealed: true },
    holds: { sealed: true, deny_delete: true, deny_purge: true, discard: 'new' },
    change: { sealed: false },
    fixed: 'sealed',
  },
  oneField('denyDelete', 'deny_delete', [true], [false], { fixed: true }),
  oneField('denyPurge', 'deny_purge', [true], [false], { fixed: true }),
  oneField('allowRollup', 'allow_rollup_hdrs', [true], [false]),
  oneField('allowDirect', 'allow_direct', [true], [false]),
  {
    name: 'republish',
    spec: { republish: { source: '>', destination: 'rp.>' } },
    holds: { republish: { src: '>', dest: 'rp.>' } },
    change: { republish: { source: '>', destination: 'rp2.>', headersOnly: true } },
    changed: { republish: { src: '>', dest: 'rp2.>', headers_only: true } },
    fixed: 'republish',
    fixedBefore: '2.10.0',
  },
  {
    name: 'subjectTransform',
    since: '2.10.0',
    spec: { subjectTransform: { source: '>', dest: 'st.>' } },
    holds: { subject_transform: { src: '>', dest: 'st.>' } },
    change: { subjectTransform: { source: '>', dest: 'st2.>' } },
    changed: { subject_transform: { src: '>', dest: 'st2.>' } },
  },
  oneField('compression', 'compression', ['s2'], ['none'], { since: '2.10.0' }),
  oneField('firstSequence', 'first_seq', [100], [200], { since: '2.10.0', fixed: true }),
  oneField('metadata', 'metadata', [{ team: 'orders' }], [{ team: 'payments' }], { since: '2.10.0' }),
  {
    name: 'consumerLimits',
    since: '2.10.0',
    spec: { consumerLimits: { maxAckPending: 100, inactiveThreshold: '1h' } },
    holds: { consumer_limits: { max_ack_pending: 100, inactive_threshold: 3600e9 } },
    change: { consumerLimits: { maxAckPending: 200 } },
    changed: { consumer_limits: { max_ack_pending: 200 } },
  },
  oneField('allowMsgTtl', 'allow_msg_ttl', [true], [false], { since: '2.11.0', fixed: true }),
  {
    name: 'subjectDeleteMarkerTtl',
    since: '2.11.0',
    spec: { allowMsgTtl: true, subjectDeleteMarkerTtl: '5s' },
    holds: { subject_delete_marker_ttl: 5e9 },
    change: { allowMsgTtl: true, subjectDeleteMarkerTtl: '10s' },
    changed: { subject_delete_marker_ttl: 10e9 },
  },
  {
    name: 'allowAtomicPublish',
    since: '2.12.0',
    spec: { allowAtomicPublish: true },
    holds: { allow_atomic: true },
    change: { allowAtomicPublish: false },
    changed: {},
  },
  oneField('allowMsgCounter', 'allow_msg_counter', [true], [false], { since: '2.12.0', fixed: true }),
  oneField('allowMsgSchedules', 'allow_msg_schedules', [true], [false], { since: '2.12.0', fixed: true }),
  oneField('persistMode', 'persist_mode', ['async'], ['default'], { since: '2.12.0', fixed: true }),
];

describe.each(cases.map((c, i) => [c.name, c, i] as const))('Stream %s', (_name, c, i) => {
  const name = names.stream(`SF${i}`);
  const spec = (extra: Partial<StreamSpec>): StreamSpec => ({ name, subjects: [names.subject(`sf${i}.>`)], ...extra });
  // Subjects inside a case's spec are relative to the stream's own prefix.
  const local = (extra: Partial<StreamSpec>): Partial<StreamSpec> => {
    const p = (s: string) => names.subject(`sf${i}x.${s}`);
    return {
      ...extra,
      ...(extra.republish
        ? { republish: { ...extra.republish, source: names.subject(`sf${i}.>`), destination: p(extra.republish.destination) } }
        : {}),
      ...(extra.subjectTransform ? { subjectTransform: { source: names.subject(`sf${i}.>`), dest: p(extra.subjectTransform.dest) } } : {}),
    };
  };
  const holds = (h: Record<string, unknown>): Record<string, unknown> => {
    const out = { ...h };
    if (h.republish)
      out.republish = {
        ...(h.republish as object),
        src: names.subject(`sf${i}.>`),
        dest: names.subject(`sf${i}x.${(h.republish as { dest: string }).dest}`),
      };
    if (h.subject_transform)
      out.subject_transform = {
        src: names.subject(`sf${i}.>`),
        dest: names.subject(`sf${i}x.${(h.subject_transform as { dest: string }).dest}`),
      };
    return out;
  };
  afterAll(async () => {
    await deleteStream(jsm, name);
  });

  fieldCaseTests(c, {
    server: () => server,
    spec: (extra) => spec(local(extra)),
    reconcile: (s) => reconcileStream(jsm, s),
    read: () => readStream(jsm, name),
    holds,
    withoutWrites,
  });
});

describe('Stream retention limits ↔ interest', () => {
  const name = names.stream('SF_RET');
  const spec = (retention: StreamSpec['retention']): StreamSpec => ({ name, subjects: [names.subject('sfret.>')], retention });
  afterAll(async () => {
    await deleteStream(jsm, name);
  });

  it('changes in place from 2.10 on; refused on older servers with the version that allows it', async () => {
    expect((await reconcileStream(jsm, spec('limits'))).outcome).toBe('created');
    const r = await reconcileStream(jsm, spec('interest'));
    if (atLeast(server, [2, 10, 0])) {
      expect(r).toMatchObject({ action: 'update', outcome: 'updated' });
      expect((await readStream(jsm, name))?.config.retention).toBe('interest');
    } else {
      expect(r).toMatchObject({ action: 'recreate-needed', outcome: 'refused' });
      expect(r.reasons[0]).toContain(
        'retention: "limits" → "interest" cannot be changed in place (nats-server 2.9.10 refuses it; 2.10.0 allows limits ↔ interest)',
      );
    }
  });
});

describe('Stream mirror and sources', () => {
  const origin = ORIGIN();
  const mirror = names.stream('SF_MIRROR');
  const sourced = names.stream('SF_SOURCED');
  beforeAll(async () => {
    expect((await reconcileStream(jsm, { name: origin, subjects: [names.subject('sforigin.>')], allowDirect: true })).outcome).toBe(
      'created',
    );
  });
  afterAll(async () => {
    for (const s of [mirror, sourced, origin]) await deleteStream(jsm, s);
  });

  it('a mirror (filter, start sequence, mirrorDirect) is created, kept, and its origin is fixed', async () => {
    const spec: StreamSpec = {
      name: mirror,
      subjects: [],
      mirror: { name: origin, filterSubject: names.subject('sforigin.a'), optStartSeq: 1 },
      mirrorDirect: true,
      allowDirect: true,
    };
    const r = await reconcileStream(jsm, spec);
    expect(r.outcome, r.reasons.join('; ')).toBe('created');
    expect((await readStream(jsm, mirror))?.config).toMatchObject({
      mirror: { name: origin, filter_subject: names.subject('sforigin.a'), opt_start_seq: 1 },
      mirror_direct: true,
    });
    expect((await withoutWrites(() => reconcileStream(jsm, spec))).action).toBe('noop');
    const moved = await withoutWrites(() =>
      reconcileStream(jsm, { ...spec, mirror: { ...spec.mirror!, filterSubject: names.subject('sforigin.b') } }),
    );
    expect(moved).toMatchObject({ action: 'recreate-needed', outcome: 'refused' });
    expect(moved.reasons[0]).toMatch(/^mirror: .* cannot be changed in place/);
  });

  it('sources (filter, start time, external API prefix; subject transforms on 2.10+) are created and changed in place', async () => {
    const transforms = atLeast(server, [2, 10, 0])
      ? [{ source: names.subject('sforigin.>'), dest: names.subject('sfsourced.t.>') }]
      : undefined;
    const spec: StreamSpec = {
      name: sourced,
      subjects: [names.subject('sfsourced.own.>')],
      sources: [
        { name: origin, filterSubject: names.subject('sforigin.a'), optStartTime: '2024-01-01T00:00:00.000+00:00' },
        { name: 'ELSEWHERE', externalApiPrefix: '$JS.hub.API', externalDeliverPrefix: 'hub.deliver' },
      ],
    };
    const r = await reconcileStream(jsm, spec);
    expect(r.outcome, r.reasons.join('; ')).toBe('created');
    expect((await readStream(jsm, sourced))?.config.sources).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: origin, filter_subject: names.subject('sforigin.a') }),
        expect.objectContaining({ name: 'ELSEWHERE', external: { api: '$JS.hub.API', deliver: 'hub.deliver' } }),
      ]),
    );
    // The server rewrites the start time ("…00.000+00:00" → "…00Z"): still no change.
    expect((await withoutWrites(() => reconcileStream(jsm, spec))).action).toBe('noop');
    const changed = {
      ...spec,
      sources: [{ name: origin, ...(transforms ? { subjectTransforms: transforms } : { filterSubject: names.subject('sforigin.b') }) }],
    };
    const u = await reconcileStream(jsm, changed);
    expect(u.outcome, u.reasons.join('; ')).toBe('updated');
    const held = (await readStream(jsm, sourced))?.config.sources;
    expect(held).toHaveLength(1);
    if (transforms) expect(held?.[0]?.subject_transforms).toEqual([{ src: transforms[0]!.source, dest: transforms[0]!.dest }]);
    expect((await withoutWrites(() => reconcileStream(jsm, changed))).action).toBe('noop');
  });

  it('source subject transforms are refused before 2.10 with the version they need', async () => {
    const r = await reconcileStream(jsm, {
      name: names.stream('SF_SRC_T'),
      subjects: [names.subject('sfsrct.>')],
      sources: [{ name: origin, subjectTransforms: [{ source: '>', dest: 'x.>' }] }],
    });
    if (atLeast(server, [2, 10, 0])) {
      expect(r.outcome).toBe('created');
      await deleteStream(jsm, names.stream('SF_SRC_T'));
    } else {
      expect(r).toMatchObject({ action: 'refuse', outcome: 'refused' });
      expect(r.reasons[0]).toBe('spec.sources[].subjectTransforms needs nats-server 2.10.0 or newer (the connected server is 2.9.10)');
    }
  });
});

describe('values the server normalises', () => {
  const name = names.stream('SF_NORM');
  afterAll(async () => {
    await deleteStream(jsm, name);
  });

  it('zeros for "unlimited" and the default duplicate window do not cause an update on resync', async () => {
    const spec: StreamSpec = {
      name,
      subjects: [names.subject('sfnorm.>')],
      maxBytes: 0,
      maxMsgs: 0,
      maxMsgSize: 0,
      maxConsumers: 0,
      maxMsgsPerSubject: 0,
      maxAge: '30s',
      replicas: 1,
      compression: '',
      persistMode: '',
      firstSequence: 0,
    };
    expect((await reconcileStream(jsm, spec)).outcome).toBe('created');
    expect((await readStream(jsm, name))?.config).toMatchObject({
      max_bytes: -1,
      max_msgs: -1,
      max_msg_size: -1,
      max_consumers: -1,
      max_msgs_per_subject: -1,
      duplicate_window: 30e9,
    });
    const again = await withoutWrites(() => reconcileStream(jsm, spec));
    expect(again, again.reasons.join('; ')).toMatchObject({ action: 'noop', outcome: 'unchanged' });
  });
});
