import { describe, expect, it } from 'vitest';
import type { ConsumerConfig, StreamConfig } from '@nats-io/jetstream';
import {
  deadLetterStreamSpec,
  durationNanos,
  formatNanos,
  planConsumer,
  planStream,
  subjectMatches,
  toConsumerConfig,
  toStreamConfig,
  type PlanContext,
} from '../../src/reconcile/index.js';
import type { ConsumerSpec, StreamSpec } from '../../src/topology.js';

const CURRENT: PlanContext = { serverVersion: '2.15.2' };
const DEBIAN: PlanContext = { serverVersion: '2.9.10' };

const stream: StreamSpec = {
  name: 'ORDERS',
  subjects: ['orders.>'],
  storage: 'file',
  replicas: 1,
  retention: 'limits',
  maxAge: '168h',
  duplicateWindow: '2m',
  discard: 'old',
};

const consumer: ConsumerSpec = {
  streamName: 'ORDERS',
  durableName: 'inventory-orders',
  filterSubject: 'orders.>',
  ackPolicy: 'explicit',
  ackWait: '30s',
  maxDeliver: 5,
  backoff: ['1s', '5s'],
  maxAckPending: 1000,
  deadLetter: { subject: 'dlq.ORDERS.inventory-orders' },
};

// What nats-server 2.15.2 answered for a plain stream / consumer (every default filled in, its own metadata added).
const SERVER_STREAM_DEFAULTS = {
  retention: 'limits',
  max_consumers: -1,
  max_msgs: -1,
  max_bytes: -1,
  max_age: 0,
  max_msgs_per_subject: -1,
  max_msg_size: -1,
  discard: 'old',
  storage: 'file',
  num_replicas: 1,
  duplicate_window: 120e9,
  compression: 'none',
  allow_direct: false,
  mirror_direct: false,
  sealed: false,
  deny_delete: false,
  deny_purge: false,
  allow_rollup_hdrs: false,
  consumer_limits: {},
  allow_msg_ttl: false,
  metadata: { '_nats.level': '5', '_nats.req.level': '0', '_nats.ver': '2.15.2' },
};
const SERVER_CONSUMER_DEFAULTS = {
  deliver_policy: 'all',
  ack_policy: 'explicit',
  ack_wait: 30e9,
  max_deliver: -1,
  replay_policy: 'instant',
  max_waiting: 512,
  max_ack_pending: 1000,
  num_replicas: 0,
  metadata: { '_nats.level': '5', '_nats.req.level': '0', '_nats.ver': '2.15.2' },
};

/** A server's answer: its defaults, then what it stores of ours, then what it rewrote. */
function serverStream(reported: Partial<StreamConfig> | Record<string, unknown>, spec: StreamSpec = stream): { config: StreamConfig } {
  const sent = JSON.parse(JSON.stringify(toStreamConfig(spec))) as Record<string, unknown>;
  return { config: { ...SERVER_STREAM_DEFAULTS, ...sent, metadata: SERVER_STREAM_DEFAULTS.metadata, ...reported } as StreamConfig };
}
function serverConsumer(
  reported: Partial<ConsumerConfig> | Record<string, unknown>,
  spec: ConsumerSpec = consumer,
): { config: ConsumerConfig } {
  const sent = JSON.parse(JSON.stringify(toConsumerConfig(spec))) as Record<string, unknown>;
  const c = {
    ...SERVER_CONSUMER_DEFAULTS,
    ...sent,
    name: spec.durableName,
    metadata: SERVER_CONSUMER_DEFAULTS.metadata,
    ...reported,
  } as ConsumerConfig;
  // The server replaces ack_wait with backoff[0] (2.9.10 and 2.15.2).
  if (c.backoff?.length) c.ack_wait = c.backoff[0];
  return { config: c };
}

describe('durations', () => {
  it('parses Go durations to nanoseconds and prints them back', () => {
    expect(durationNanos('30s')).toBe(30e9);
    expect(durationNanos('1h30m')).toBe(5400e9);
    expect(durationNanos('1.5s')).toBe(1.5e9);
    expect(durationNanos('250ms')).toBe(250e6);
    expect(durationNanos('0')).toBe(0);
    expect(durationNanos('1ns')).toBe(1);
    for (const bad of ['30', '7 days', '-1s', '', 's', '1h 30m']) expect(() => durationNanos(bad), bad).toThrow(/invalid duration/);
    expect([30e9, 5400e9, 168 * 3600e9, 250e6, 1.5e9, 0].map(formatNanos)).toEqual(['30s', '1h30m', '168h', '250ms', '1500ms', '0s']);
  });
});

describe('toStreamConfig / toConsumerConfig', () => {
  it('converts durations to nanoseconds and fills server defaults explicitly', () => {
    expect(toStreamConfig({ name: 'S', subjects: ['s.>'] })).toMatchObject({
      name: 'S',
      subjects: ['s.>'],
      storage: 'file',
      retention: 'limits',
      num_replicas: 1,
      max_age: 0,
      max_bytes: -1,
      max_msgs: -1,
      max_msg_size: -1,
      max_consumers: -1,
      max_msgs_per_subject: -1,
      duplicate_window: 120e9,
      discard: 'old',
      compression: 'none',
      metadata: {},
    });
    expect(toStreamConfig(stream).max_age).toBe(168 * 3600e9);
    // The default duplicate window is capped by a shorter max_age, as the server does.
    expect(toStreamConfig({ name: 'S', subjects: ['s'], maxAge: '30s' }).duplicate_window).toBe(30e9);
    expect(toConsumerConfig(consumer)).toMatchObject({
      durable_name: 'inventory-orders',
      ack_wait: 30e9,
      backoff: [1e9, 5e9],
      max_deliver: 5,
      filter_subject: 'orders.>',
    });
  });

  it('leaves out what the connected server does not know (2.9 would drop it silently)', () => {
    const onDebian = toStreamConfig({ name: 'S', subjects: ['s'] }, [2, 9, 10]);
    for (const k of [
      'compression',
      'metadata',
      'consumer_limits',
      'first_seq',
      'subject_transform',
      'allow_msg_ttl',
      'allow_atomic',
      'persist_mode',
    ])
      expect(onDebian).not.toHaveProperty(k);
    expect(onDebian).toHaveProperty('allow_direct', false);
    const c = toConsumerConfig({ streamName: 'S', durableName: 'd' }, [2, 9, 10]);
    for (const k of ['metadata', 'pause_until', 'priority_policy', 'priority_groups', 'priority_timeout']) expect(c).not.toHaveProperty(k);
  });

  it("maps NACK's names and spellings to the JetStream API", () => {
    expect(
      toStreamConfig({
        name: 'S',
        subjects: [],
        mirror: { name: 'O', optStartSeq: 3, externalApiPrefix: '$JS.hub.API', subjectTransforms: [{ source: 'a.>', dest: 'b.>' }] },
        republish: { source: '>', destination: 'r.>', headersOnly: true },
        allowRollup: true,
        discardPerSubject: false,
        allowAtomicPublish: true,
        consumerLimits: { inactiveThreshold: '1m', maxAckPending: 10 },
        subjectDeleteMarkerTtl: '5s',
      }),
    ).toMatchObject({
      subjects: undefined,
      mirror: { name: 'O', opt_start_seq: 3, external: { api: '$JS.hub.API' }, subject_transforms: [{ src: 'a.>', dest: 'b.>' }] },
      republish: { src: '>', dest: 'r.>', headers_only: true },
      allow_rollup_hdrs: true,
      allow_atomic: true,
      consumer_limits: { inactive_threshold: 60e9, max_ack_pending: 10 },
      subject_delete_marker_ttl: 5e9,
    });
    expect(toConsumerConfig({ streamName: 'S', durableName: 'd', deliverPolicy: 'byStartSequence', optStartSeq: 9 }).deliver_policy).toBe(
      'by_start_sequence',
    );
    expect(
      toConsumerConfig({ streamName: 'S', durableName: 'd', deliverPolicy: 'last_per_subject', filterSubject: 'a' }).deliver_policy,
    ).toBe('last_per_subject');
    expect(toConsumerConfig({ streamName: 'S', durableName: 'd', filterSubjects: ['a', 'b'] })).toMatchObject({
      filter_subject: undefined,
      filter_subjects: ['a', 'b'],
    });
    // One entry goes as filter_subject, which every server knows.
    expect(toConsumerConfig({ streamName: 'S', durableName: 'd', filterSubjects: ['a'] })).toMatchObject({
      filter_subject: 'a',
      filter_subjects: undefined,
    });
    expect(
      toConsumerConfig({ streamName: 'S', durableName: 'd', priorityPolicy: 'pinned_client', priorityGroups: ['g'], pinnedTtl: '30s' }),
    ).toMatchObject({ priority_policy: 'pinned_client', priority_groups: ['g'], priority_timeout: 30e9 });
  });
});

describe('planStream', () => {
  it('create when absent, noop when equal', () => {
    expect(planStream(stream, undefined, CURRENT)).toMatchObject({ action: 'create', reasons: ['stream does not exist'] });
    expect(planStream(stream, serverStream({}), CURRENT)).toMatchObject({ action: 'noop', reasons: [], changes: [] });
  });

  it('noop when subjects differ only in order', () => {
    const two = { ...stream, subjects: ['a.>', 'b.>'] };
    expect(planStream(two, serverStream({ subjects: ['b.>', 'a.>'] }, two), CURRENT).action).toBe('noop');
  });

  // Each: a spec, and what the server reports for it (seen on 2.15.2 / 2.9.10): never an update.
  const normalised: [string, Partial<StreamSpec>, Record<string, unknown>][] = [
    ['maxBytes 0 → -1', { maxBytes: 0 }, { max_bytes: -1 }],
    ['maxMsgs 0 → -1', { maxMsgs: 0 }, { max_msgs: -1 }],
    ['maxMsgSize 0 → -1', { maxMsgSize: 0 }, { max_msg_size: -1 }],
    ['maxConsumers 0 → -1', { maxConsumers: 0 }, { max_consumers: -1 }],
    ['maxMsgsPerSubject 0 → -1', { maxMsgsPerSubject: 0 }, { max_msgs_per_subject: -1 }],
    [
      'duplicate window left out: 2m capped at maxAge',
      { maxAge: '30s', duplicateWindow: undefined },
      { max_age: 30e9, duplicate_window: 30e9 },
    ],
    ['compression "" → none', { compression: '' }, { compression: 'none' }],
    ['persistMode "" / default → left out', { persistMode: 'default' }, { persist_mode: undefined }],
    ['firstSequence 0 → left out', { firstSequence: 0 }, { first_seq: undefined }],
    [
      'metadata: the server adds _nats.*',
      { metadata: { team: 'orders' } },
      { metadata: { team: 'orders', '_nats.ver': '2.15.2', '_nats.level': '5' } },
    ],
    ['placement without cluster or tags → left out', { placement: { cluster: '', tags: [] } }, { placement: undefined }],
    ['placement: the server drops an empty cluster', { placement: { tags: ['ssd'] } }, { placement: { tags: ['ssd'] } }],
    [
      'sealed: discard new, deny delete/purge, no max age, no rollups',
      { sealed: true, allowRollup: true },
      { sealed: true, discard: 'new', deny_delete: true, deny_purge: true, max_age: 0, allow_rollup_hdrs: false },
    ],
    [
      'subject delete markers turn rollups on',
      { allowMsgTtl: true, subjectDeleteMarkerTtl: '5s' },
      { allow_msg_ttl: true, subject_delete_marker_ttl: 5e9, allow_rollup_hdrs: true },
    ],
    ['message schedules turn rollups on', { allowMsgSchedules: true }, { allow_msg_schedules: true, allow_rollup_hdrs: true }],
    ['consumerLimits left out → {}', { consumerLimits: {} }, { consumer_limits: {} }],
    ['republish without headersOnly', { republish: { source: '>', destination: 'r.>' } }, { republish: { src: '>', dest: 'r.>' } }],
    [
      'source start time rewritten and sources reordered',
      {
        subjects: ['own.>'],
        sources: [
          { name: 'A', optStartTime: '2024-01-01T01:00:00.000+01:00' },
          { name: 'B', filterSubject: 'b.x' },
        ],
      },
      {
        subjects: ['own.>'],
        sources: [
          { name: 'B', filter_subject: 'b.x' },
          { name: 'A', opt_start_time: '2024-01-01T00:00:00Z' },
        ],
      },
    ],
  ];
  it.each(normalised)('%s: noop', (_name, change, reported) => {
    const spec = { ...stream, ...change };
    const plan = planStream(spec, serverStream(reported, spec), CURRENT);
    expect(plan.reasons).toEqual([]);
    expect(plan.action).toBe('noop');
  });

  const mutable: [string, Partial<StreamSpec>, string][] = [
    ['subjects', { subjects: ['orders.>', 'legacy.>'] }, 'subjects'],
    ['description', { description: 'orders' }, 'description: "" → "orders"'],
    ['maxAge', { maxAge: '24h' }, 'max_age: 168h → 24h'],
    ['maxBytes', { maxBytes: 1024 }, 'max_bytes: -1 → 1024'],
    ['maxMsgs', { maxMsgs: 10 }, 'max_msgs: -1 → 10'],
    ['maxConsumers', { maxConsumers: 10 }, 'max_consumers: -1 → 10'],
    ['maxMsgsPerSubject', { maxMsgsPerSubject: 3 }, 'max_msgs_per_subject: -1 → 3'],
    ['maxMsgSize', { maxMsgSize: 4096 }, 'max_msg_size: -1 → 4096'],
    ['duplicateWindow', { duplicateWindow: '1m' }, 'duplicate_window: 2m → 1m'],
    ['discard', { discard: 'new' }, 'discard: "old" → "new"'],
    ['replicas', { replicas: 3 }, 'num_replicas: 1 → 3'],
    ['noAck', { noAck: true }, 'no_ack: false → true'],
    ['allowRollup', { allowRollup: true }, 'allow_rollup_hdrs: false → true'],
    ['allowDirect', { allowDirect: true }, 'allow_direct: false → true'],
    ['retention limits → interest (2.10+)', { retention: 'interest' }, 'retention: "limits" → "interest"'],
    ['sealed (one way: on)', { sealed: true }, 'sealed: false → true'],
    ['denyDelete (one way: on)', { denyDelete: true }, 'deny_delete: false → true'],
    ['compression', { compression: 's2' }, 'compression: "none" → "s2"'],
    ['metadata', { metadata: { team: 'orders' } }, 'metadata: {} → {"team":"orders"}'],
    ['sources', { sources: [{ name: 'OTHER' }] }, 'sources: [] →'],
    ['subjectTransform', { subjectTransform: { source: 'orders.>', dest: 'o.>' } }, 'subject_transform: null →'],
    ['allowMsgTtl (one way: on)', { allowMsgTtl: true }, 'allow_msg_ttl: false → true'],
    ['allowAtomicPublish', { allowAtomicPublish: true }, 'allow_atomic: false → true'],
    ['removing maxAge restores unlimited', { maxAge: undefined }, 'max_age: 168h → 0 (unlimited)'],
  ];
  it.each(mutable)('%s change → update', (_name, change, reason) => {
    const plan = planStream({ ...stream, ...change }, serverStream({}), CURRENT);
    expect(plan.action).toBe('update');
    expect(plan.reasons.join('\n')).toContain(reason);
    expect(plan.changes.every((c) => !c.immutable)).toBe(true);
  });

  // Each: the change, the server it is planned for, the field named, and why.
  const fixed: [string, Partial<StreamSpec>, Partial<StreamConfig> | Record<string, unknown>, PlanContext, string][] = [
    ['storage', { storage: 'memory' }, {}, CURRENT, 'storage: "file" → "memory" cannot be changed in place (fixed when it is created)'],
    [
      'retention to workqueue',
      { retention: 'workqueue' },
      {},
      CURRENT,
      'retention: "limits" → "workqueue" cannot be changed in place (no nats-server changes retention to or from workqueue)',
    ],
    [
      'retention on 2.9',
      { retention: 'interest' },
      {},
      DEBIAN,
      'retention: "limits" → "interest" cannot be changed in place (nats-server 2.9.10 refuses it; 2.10.0 allows limits ↔ interest)',
    ],
    [
      'maxConsumers before 2.14',
      { maxConsumers: 5 },
      {},
      { serverVersion: '2.12.3' },
      'max_consumers: -1 → 5 cannot be changed in place (nats-server 2.12.3 refuses it; 2.14.0 allows changing it)',
    ],
    [
      'republish on 2.9',
      { republish: { source: '>', destination: 'b.>' } },
      { republish: { src: '>', dest: 'a.>' } },
      DEBIAN,
      'republish: {"src":">","dest":"a.>","headers_only":false} → {"src":">","dest":"b.>","headers_only":false} ' +
        'cannot be changed in place (nats-server 2.9.10 refuses it; 2.10.0 allows changing it)',
    ],
    [
      'unsealing',
      { sealed: false },
      { sealed: true },
      CURRENT,
      'sealed: true → false cannot be changed in place (sealing cannot be undone)',
    ],
    [
      'denyDelete off',
      {},
      { deny_delete: true },
      CURRENT,
      'deny_delete: true → false cannot be changed in place (deny_delete cannot be undone)',
    ],
    [
      'denyPurge off',
      {},
      { deny_purge: true },
      CURRENT,
      'deny_purge: true → false cannot be changed in place (deny_purge cannot be undone)',
    ],
    [
      'allowMsgTtl off',
      {},
      { allow_msg_ttl: true },
      CURRENT,
      'allow_msg_ttl: true → false cannot be changed in place (allowing message TTLs cannot be undone)',
    ],
    [
      'allowMsgTtl on, on 2.11',
      { allowMsgTtl: true },
      {},
      { serverVersion: '2.11.4' },
      'allow_msg_ttl: false → true cannot be changed in place (nats-server 2.11.4 refuses it; 2.12.0 allows turning it on)',
    ],
    [
      'allowMsgSchedules off',
      {},
      { allow_msg_schedules: true, allow_rollup_hdrs: true },
      CURRENT,
      'allow_msg_schedules: true → false cannot be changed in place',
    ],
    [
      'allowMsgCounter',
      { allowMsgCounter: true },
      {},
      CURRENT,
      'allow_msg_counter: false → true cannot be changed in place (fixed when it is created)',
    ],
    ['persistMode', { persistMode: 'async' }, {}, CURRENT, 'persist_mode: "default" → "async" cannot be changed in place'],
    ['firstSequence', { firstSequence: 100 }, {}, CURRENT, 'first_seq: 0 → 100 cannot be changed in place'],
    ['mirror', { subjects: [], mirror: { name: 'B' } }, { subjects: undefined, mirror: { name: 'A' } }, CURRENT, 'mirror: '],
    [
      'mirrorDirect',
      { subjects: [], mirror: { name: 'A' }, mirrorDirect: true },
      { subjects: undefined, mirror: { name: 'A' } },
      CURRENT,
      'mirror_direct: false → true cannot be changed in place',
    ],
  ];
  it.each(fixed)('%s → recreate-needed naming the field', (_name, change, reported, ctx, reason) => {
    const plan = planStream({ ...stream, ...change, maxAge: '1h' }, serverStream(reported), ctx);
    expect(plan.action).toBe('recreate-needed');
    // Only refused changes are named (unsealing also undoes the deny flags sealing set): nothing of this plan gets applied.
    expect(plan.reasons.join('\n')).toContain(reason);
    expect(
      plan.reasons.every((r) => r.includes('cannot be changed in place') && r.endsWith('revert the spec or delete and recreate by hand')),
    ).toBe(true);
    expect(plan.changes.map((c) => c.field)).toContain('max_age');
  });

  const invalid: [string, Partial<StreamSpec>, string][] = [
    ['name with a dot', { name: 'OR.DERS' }, 'spec.name'],
    ['no subjects', { subjects: [] }, 'spec.subjects must list at least one subject'],
    ['bad subject', { subjects: ['orders.>.x'] }, 'spec.subjects[0]'],
    ['storage enum', { storage: 'disk' as 'file' }, 'spec.storage must be one of file, memory'],
    ['retention enum', { retention: 'forever' as 'limits' }, 'spec.retention'],
    ['replicas range', { replicas: 7 }, 'spec.replicas must be an integer in 1..5'],
    ['duration', { maxAge: '7 days' }, 'spec.maxAge invalid duration "7 days"'],
    ['dup window > maxAge', { maxAge: '1m', duplicateWindow: '2m' }, 'spec.duplicateWindow may not exceed maxAge'],
    ['maxBytes', { maxBytes: -5 }, 'spec.maxBytes'],
    ['mirror with subjects', { mirror: { name: 'A' } }, 'spec.subjects must be empty for a mirror'],
    ['mirror with sources', { subjects: [], mirror: { name: 'A' }, sources: [{ name: 'B' }] }, 'spec.sources a mirror has no sources'],
    ['mirrorDirect without mirror', { mirrorDirect: true }, 'spec.mirrorDirect needs a mirror'],
    [
      'discardPerSubject without discard new',
      { discardPerSubject: true, maxMsgsPerSubject: 3 },
      'spec.discardPerSubject needs discard: new and maxMsgsPerSubject > 0',
    ],
    ['discardPerSubject without maxMsgsPerSubject', { discardPerSubject: true, discard: 'new' }, 'spec.discardPerSubject needs'],
    ['subjectDeleteMarkerTtl under 1s', { subjectDeleteMarkerTtl: '500ms' }, 'spec.subjectDeleteMarkerTtl must be at least 1s'],
    ['reserved metadata key', { metadata: { '_nats.ver': '1' } }, 'spec.metadata._nats.ver keys starting with _nats belong to the server'],
    ['source start time', { sources: [{ name: 'A', optStartTime: 'yesterday' }] }, 'spec.sources[0].optStartTime must be an RFC 3339 time'],
    ['compression enum', { compression: 'zstd' as 's2' }, 'spec.compression must be one of s2, none, ""'],
    ['republish destination', { republish: { source: 'orders.>', destination: 'a b' } }, 'spec.republish.destination'],
  ];
  it.each(invalid)('invalid spec (%s) → refuse with reason, no config', (_name, change, reason) => {
    for (const actual of [undefined, serverStream({})]) {
      const plan = planStream({ ...stream, ...change }, actual, CURRENT);
      expect(plan.action).toBe('refuse');
      expect(plan.reasons.join('\n')).toContain(reason);
      expect(plan.config).toBeUndefined();
    }
  });

  // Each field the connected server does not know is refused with the version it needs.
  const newer: [Partial<StreamSpec>, string, string][] = [
    [{ subjectTransform: { source: 'orders.>', dest: 'o.>' } }, 'spec.subjectTransform', '2.10.0'],
    [{ sources: [{ name: 'A', subjectTransforms: [{ source: '>', dest: 'a.>' }] }] }, 'spec.sources[].subjectTransforms', '2.10.0'],
    [{ compression: 's2' }, 'spec.compression', '2.10.0'],
    [{ firstSequence: 10 }, 'spec.firstSequence', '2.10.0'],
    [{ metadata: { a: 'b' } }, 'spec.metadata', '2.10.0'],
    [{ consumerLimits: { maxAckPending: 5 } }, 'spec.consumerLimits', '2.10.0'],
    [{ allowMsgTtl: true }, 'spec.allowMsgTtl', '2.11.0'],
    [{ subjectDeleteMarkerTtl: '1m' }, 'spec.subjectDeleteMarkerTtl', '2.11.0'],
    [{ allowAtomicPublish: true }, 'spec.allowAtomicPublish', '2.12.0'],
    [{ allowMsgCounter: true }, 'spec.allowMsgCounter', '2.12.0'],
    [{ allowMsgSchedules: true }, 'spec.allowMsgSchedules', '2.12.0'],
    [{ persistMode: 'async' }, 'spec.persistMode', '2.12.0'],
  ];
  it.each(newer)('%o on 2.9.10 → refused: %s needs nats-server %s', (change, path, since) => {
    const plan = planStream({ ...stream, ...change }, undefined, DEBIAN);
    expect(plan.action).toBe('refuse');
    expect(plan.reasons).toContain(`${path} needs nats-server ${since} or newer (the connected server is 2.9.10)`);
    expect(planStream({ ...stream, ...change }, undefined, CURRENT).action).toBe('create');
  });

  it('defaults of newer fields are no use of them: accepted on 2.9.10', () => {
    const plan = planStream(
      { ...stream, compression: 'none', allowMsgTtl: false, metadata: {}, persistMode: 'default', firstSequence: 0 },
      undefined,
      DEBIAN,
    );
    expect(plan.action).toBe('create');
  });
});

describe('planConsumer', () => {
  it('create when absent, noop when equal (ack_wait replaced by backoff[0] on the server)', () => {
    expect(planConsumer(consumer, undefined, CURRENT).action).toBe('create');
    expect(planConsumer(consumer, serverConsumer({}), CURRENT)).toMatchObject({ action: 'noop', reasons: [] });
    const noBackoff = { ...consumer, backoff: undefined };
    expect(planConsumer(noBackoff, serverConsumer({}, noBackoff), CURRENT).action).toBe('noop');
  });

  const base: ConsumerSpec = { streamName: 'ORDERS', durableName: 'c' };
  const limits: PlanContext = { ...CURRENT, stream: { consumer_limits: { max_ack_pending: 50, inactive_threshold: 3600e9 } } };
  // Each: a spec, what the server reports for it, the context: never an update.
  const normalised: [string, ConsumerSpec, Record<string, unknown>, PlanContext][] = [
    ['maxAckPending 0 → 1000', { ...base, maxAckPending: 0 }, { max_ack_pending: 1000 }, CURRENT],
    ['maxAckPending unset → 1000', base, { max_ack_pending: 1000 }, CURRENT],
    ["maxAckPending unset → the stream's consumer limit", base, { max_ack_pending: 50, inactive_threshold: 3600e9 }, limits],
    ['maxWaiting 0 → 512 on a pull consumer', { ...base, maxWaiting: 0 }, { max_waiting: 512 }, CURRENT],
    ['maxWaiting left out on a push consumer', { ...base, deliverSubject: 'p' }, { max_waiting: undefined, deliver_subject: 'p' }, CURRENT],
    ['maxDeliver unset → -1', base, { max_deliver: -1 }, CURRENT],
    ['ackWait unset → 30s', base, { ack_wait: 30e9 }, CURRENT],
    [
      'ack none: no ack wait, no max ack pending',
      { ...base, ackPolicy: 'none' },
      { ack_policy: 'none', ack_wait: undefined, max_ack_pending: undefined },
      CURRENT,
    ],
    ['backoff replaces ackWait', { ...base, ackWait: '45s', maxDeliver: 5, backoff: ['2s'] }, { ack_wait: 2e9, backoff: [2e9] }, CURRENT],
    ['replicas 0 (inherit) stays 0', { ...base, replicas: 0 }, { num_replicas: 0 }, CURRENT],
    [
      'pinned_client without pinnedTtl → 2m',
      { ...base, priorityPolicy: 'pinned_client', priorityGroups: ['g'] },
      { priority_policy: 'pinned_client', priority_groups: ['g'], priority_timeout: 120e9 },
      CURRENT,
    ],
    [
      'metadata: the server adds _nats.*',
      { ...base, metadata: { owner: 'x' } },
      { metadata: { owner: 'x', '_nats.ver': '2.15.2' } },
      CURRENT,
    ],
    [
      'optStartTime rewritten',
      { ...base, deliverPolicy: 'byStartTime', optStartTime: '2024-01-01T01:00:00.000+01:00' },
      { deliver_policy: 'by_start_time', opt_start_time: '2024-01-01T00:00:00Z' },
      CURRENT,
    ],
    ['a pauseUntil in the past is no pause', { ...base, pauseUntil: '2020-01-01T00:00:00Z' }, { pause_until: undefined }, CURRENT],
    ['one filterSubjects entry held as filter_subject', { ...base, filterSubjects: ['a'] }, { filter_subject: 'a' }, CURRENT],
    [
      'filterSubjects in another order',
      { ...base, filterSubjects: ['a', 'b'] },
      { filter_subject: undefined, filter_subjects: ['b', 'a'] },
      CURRENT,
    ],
    ['sampleFreq kept as written', { ...base, sampleFreq: '50%' }, { sample_freq: '50%' }, CURRENT],
  ];
  it.each(normalised)('%s: noop', (_name, spec, reported, ctx) => {
    const plan = planConsumer(spec, serverConsumer(reported, spec), ctx);
    expect(plan.reasons).toEqual([]);
    expect(plan.action).toBe('noop');
  });

  const mutable: [string, Partial<ConsumerSpec>, string][] = [
    ['maxDeliver', { maxDeliver: 8 }, 'max_deliver: 5 → 8'],
    ['backoff', { backoff: ['2s', '10s'] }, 'backoff: [1s, 5s] → [2s, 10s]'],
    ['backoff removed', { backoff: [] }, 'backoff: [1s, 5s] → []'],
    ['ackWait without backoff', { backoff: [], ackWait: '10s' }, 'ack_wait: 1s → 10s'],
    ['maxAckPending', { maxAckPending: 50 }, 'max_ack_pending: 1000 → 50'],
    ['filterSubject', { filterSubject: 'orders.created' }, 'filter_subject: "orders.>" → "orders.created"'],
    ['filterSubject removed', { filterSubject: undefined }, 'filter_subject: "orders.>" → ""'],
    [
      'filterSubjects',
      { filterSubject: undefined, filterSubjects: ['orders.a', 'orders.b'] },
      'filter_subject: "orders.>" → ["orders.a","orders.b"]',
    ],
    ['description', { description: 'x' }, 'description: "" → "x"'],
    ['sampleFreq', { sampleFreq: '10' }, 'sample_freq: "" → "10"'],
    ['headersOnly', { headersOnly: true }, 'headers_only: false → true'],
    ['maxRequestBatch', { maxRequestBatch: 5 }, 'max_batch: 0 → 5'],
    ['maxRequestExpires', { maxRequestExpires: '30s' }, 'max_expires: 0s → 30s'],
    ['maxRequestMaxBytes', { maxRequestMaxBytes: 1024 }, 'max_bytes: 0 → 1024'],
    ['inactiveThreshold', { inactiveThreshold: '1h' }, 'inactive_threshold: 0s → 1h'],
    ['replicas', { replicas: 1 }, 'num_replicas: 0 → 1'],
    ['metadata', { metadata: { a: 'b' } }, 'metadata: {} → {"a":"b"}'],
    ['pauseUntil', { pauseUntil: '2999-01-01T00:00:00Z' }, 'pause_until: unset → 2999-01-01T00:00:00.000Z'],
    ['priorityPolicy', { priorityPolicy: 'overflow', priorityGroups: ['g'] }, 'priority_policy: "none" → "overflow"'],
  ];
  it.each(mutable)('%s change → update', (_name, change, reason) => {
    const plan = planConsumer({ ...consumer, ...change }, serverConsumer({}), CURRENT);
    expect(plan.action).toBe('update');
    expect(plan.reasons.join('\n')).toContain(reason);
  });

  it('ackWait change is invisible while a backoff list decides the wait', () => {
    expect(planConsumer({ ...consumer, ackWait: '10s' }, serverConsumer({}), CURRENT).action).toBe('noop');
  });

  it('deadLetter is not a JetStream field: changing it is a noop for the planner', () => {
    expect(planConsumer({ ...consumer, deadLetter: { subject: 'dlq.x.y' } }, serverConsumer({}), CURRENT).action).toBe('noop');
  });

  const fixed: [string, Partial<ConsumerSpec>, Record<string, unknown>, string][] = [
    ['ackPolicy', { ackPolicy: 'all' }, {}, 'ack_policy: "explicit" → "all" cannot be changed in place'],
    ['deliverPolicy', { deliverPolicy: 'new' }, {}, 'deliver_policy: "all" → "new" cannot be changed in place'],
    [
      'optStartSeq',
      { deliverPolicy: 'byStartSequence', optStartSeq: 7 },
      { deliver_policy: 'by_start_sequence', opt_start_seq: 6 },
      'opt_start_seq: 6 → 7',
    ],
    [
      'optStartTime',
      { deliverPolicy: 'byStartTime', optStartTime: '2024-01-02T00:00:00Z' },
      { deliver_policy: 'by_start_time', opt_start_time: '2024-01-01T00:00:00Z' },
      'opt_start_time: 2024-01-01T00:00:00.000Z → 2024-01-02T00:00:00.000Z',
    ],
    ['replayPolicy', { replayPolicy: 'original' }, {}, 'replay_policy: "instant" → "original"'],
    ['maxWaiting', { maxWaiting: 10 }, {}, 'max_waiting: 512 → 10'],
    ['memStorage', { memStorage: true }, {}, 'mem_storage: false → true'],
    [
      'pull → push',
      { deliverSubject: 'p' },
      {},
      'deliver_subject: "" → "p" cannot be changed in place (a push consumer cannot become a pull consumer, nor the other way)',
    ],
    ['push → pull', {}, { deliver_subject: 'p', max_waiting: undefined }, 'deliver_subject: "p" → ""'],
    [
      'heartbeatInterval',
      { deliverSubject: 'p', heartbeatInterval: '10s', backoff: [], maxDeliver: 5 },
      { deliver_subject: 'p', max_waiting: undefined, idle_heartbeat: 5e9 },
      'idle_heartbeat: 5s → 10s',
    ],
    [
      'flowControl',
      { deliverSubject: 'p', heartbeatInterval: '5s', flowControl: true },
      { deliver_subject: 'p', max_waiting: undefined, idle_heartbeat: 5e9 },
      'flow_control: false → true',
    ],
  ];
  it.each(fixed)('%s change → recreate-needed naming the field', (_name, change, reported, reason) => {
    const plan = planConsumer({ ...consumer, ...change }, serverConsumer(reported), CURRENT);
    expect(plan.action).toBe('recreate-needed');
    expect(plan.reasons.join('\n')).toContain(reason);
    expect(plan.reasons.every((r) => r.includes('cannot be changed in place'))).toBe(true);
  });

  const invalid: [string, Partial<ConsumerSpec>, string][] = [
    ['backoff longer than maxDeliver', { maxDeliver: 1 }, 'spec.backoff has 2 entries but maxDeliver is 1'],
    ['durable with a dot', { durableName: 'a.b' }, 'spec.durableName'],
    ['ackPolicy enum', { ackPolicy: 'sometimes' as 'all' }, 'spec.ackPolicy'],
    ['bad ackWait', { ackWait: '30' }, 'spec.ackWait invalid duration'],
    ['bad backoff entry', { backoff: ['1s', 'soon'] }, 'spec.backoff[1]'],
    ['maxDeliver 0', { maxDeliver: 0 }, 'spec.maxDeliver'],
    ['wildcard dead letter subject', { deadLetter: { subject: 'dlq.>' } }, 'spec.deadLetter.subject'],
    ['dead letters without acks', { ackPolicy: 'none', backoff: [] }, 'spec.deadLetter needs acknowledgements'],
    ['optStartSeq without byStartSequence', { optStartSeq: 3 }, 'spec.optStartSeq needs deliverPolicy byStartSequence'],
    ['byStartSequence without optStartSeq', { deliverPolicy: 'byStartSequence' }, 'spec.deliverPolicy byStartSequence needs optStartSeq'],
    ['optStartTime without byStartTime', { optStartTime: '2024-01-01T00:00:00Z' }, 'spec.optStartTime needs deliverPolicy byStartTime'],
    ['byStartTime without optStartTime', { deliverPolicy: 'by_start_time' }, 'spec.deliverPolicy byStartTime needs optStartTime'],
    ['optStartTime not RFC 3339', { deliverPolicy: 'byStartTime', optStartTime: 'Jan 1st' }, 'spec.optStartTime must be an RFC 3339 time'],
    [
      'lastPerSubject without a filter',
      { deliverPolicy: 'lastPerSubject', filterSubject: undefined },
      'spec.deliverPolicy lastPerSubject needs filterSubject or filterSubjects',
    ],
    [
      'filterSubject and filterSubjects',
      { filterSubjects: ['orders.a', 'orders.b'] },
      'spec.filterSubjects and filterSubject are exclusive',
    ],
    ['push-only field on a pull consumer', { deliverGroup: 'g' }, 'spec.deliverGroup is for push consumers only'],
    ['rateLimitBps on a pull consumer', { rateLimitBps: 100 }, 'spec.rateLimitBps is for push consumers only'],
    ['pull-only field on a push consumer', { deliverSubject: 'p', maxWaiting: 5 }, 'spec.maxWaiting is for pull consumers only'],
    [
      'priority groups on a push consumer',
      { deliverSubject: 'p', priorityPolicy: 'overflow', priorityGroups: ['g'] },
      'spec.priorityPolicy is for pull consumers only',
    ],
    ['flowControl without heartbeats', { deliverSubject: 'p', flowControl: true }, 'spec.flowControl needs heartbeatInterval'],
    [
      'a queue group with heartbeats',
      { deliverSubject: 'p', deliverGroup: 'g', heartbeatInterval: '5s' },
      'spec.deliverGroup excludes flowControl and heartbeatInterval',
    ],
    ['priority policy without groups', { priorityPolicy: 'overflow' }, 'spec.priorityGroups must name at least one group'],
    ['priority groups without policy', { priorityGroups: ['g'] }, 'spec.priorityGroups needs a priorityPolicy other than none'],
    [
      'priority group name too long',
      { priorityPolicy: 'overflow', priorityGroups: ['a-very-long-group-name'] },
      'spec.priorityGroups[0] must match',
    ],
    [
      'pinnedTtl without pinned_client',
      { priorityPolicy: 'overflow', priorityGroups: ['g'], pinnedTtl: '1m' },
      'spec.pinnedTtl needs priorityPolicy pinned_client',
    ],
    ['sampleFreq', { sampleFreq: '150%' }, 'spec.sampleFreq must be a percentage'],
    ['deliverSubject with a wildcard', { deliverSubject: 'p.*' }, 'spec.deliverSubject "p.*" is not a valid subject (no wildcards)'],
  ];
  it.each(invalid)('invalid spec (%s) → refuse', (_name, change, reason) => {
    const plan = planConsumer({ ...consumer, ...change }, serverConsumer({}), CURRENT);
    expect(plan.action).toBe('refuse');
    expect(plan.reasons.join('\n')).toContain(reason);
    expect(plan.config).toBeUndefined();
  });

  const newer: [Partial<ConsumerSpec>, string, string, string][] = [
    [{ filterSubject: undefined, filterSubjects: ['orders.a', 'orders.b'] }, 'spec.filterSubjects', '2.10.0', '2.9.10'],
    [{ metadata: { a: 'b' } }, 'spec.metadata', '2.10.0', '2.9.10'],
    [{ pauseUntil: '2999-01-01T00:00:00Z' }, 'spec.pauseUntil', '2.11.0', '2.10.29'],
    [{ priorityPolicy: 'overflow', priorityGroups: ['g'] }, 'spec.priorityPolicy', '2.11.0', '2.10.29'],
    [{ priorityPolicy: 'pinned_client', priorityGroups: ['g'], pinnedTtl: '1m' }, 'spec.pinnedTtl', '2.11.0', '2.9.10'],
    [{ priorityPolicy: 'prioritized', priorityGroups: ['g'] }, 'spec.priorityPolicy', '2.12.0', '2.11.4'],
  ];
  it.each(newer)('%o → refused: %s needs nats-server %s (on %s)', (change, path, since, version) => {
    const plan = planConsumer({ ...consumer, ...change }, undefined, { serverVersion: version });
    expect(plan.action).toBe('refuse');
    expect(plan.reasons).toContain(`${path} needs nats-server ${since} or newer (the connected server is ${version})`);
    expect(planConsumer({ ...consumer, ...change }, undefined, CURRENT).action).toBe('create');
  });

  it("backoff against maxDeliver follows the connected server's rule", () => {
    const spec = (maxDeliver: number): ConsumerSpec => ({ ...base, maxDeliver, backoff: ['1s', '2s'] });
    const action = (maxDeliver: number, serverVersion: string) => planConsumer(spec(maxDeliver), undefined, { serverVersion });
    expect(action(2, '2.10.23').action).toBe('create');
    expect(action(-1, '2.10.14').action).toBe('create');
    expect(action(3, '2.9.10').action).toBe('create');
    expect(action(2, '2.10.22').reasons).toEqual([
      'spec.backoff has 2 entries but maxDeliver is 2; ' +
        "nats-server 2.10.22 needs maxDeliver greater than the list's length (2.10.23 allows equal)",
    ]);
    expect(action(-1, '2.9.10').reasons).toEqual([
      'spec.backoff needs a maxDeliver greater than its 2 entries on nats-server 2.9.10 (unlimited is allowed from 2.10.14)',
    ]);
  });
});

describe('helpers', () => {
  it('subjectMatches', () => {
    expect(subjectMatches('dlq.>', 'dlq.ORDERS.c')).toBe(true);
    expect(subjectMatches('dlq.>', 'dlq')).toBe(false);
    expect(subjectMatches('dlq.*.c', 'dlq.ORDERS.c')).toBe(true);
    expect(subjectMatches('dlq.*', 'dlq.ORDERS.c')).toBe(false);
    expect(subjectMatches('orders.created', 'orders.created')).toBe(true);
  });
  it('deadLetterStreamSpec follows Names', () => {
    expect(deadLetterStreamSpec('t_ab.dlq.T_AB_ORDERS.c')).toMatchObject({ name: 'T_AB_DLQ', subjects: ['t_ab.dlq.>'] });
    expect(deadLetterStreamSpec('dlq.ORDERS.c')).toMatchObject({ name: 'DLQ', subjects: ['dlq.>'] });
    expect(deadLetterStreamSpec('errors.x')).toHaveProperty('error');
  });
});
