/**
 * Every Consumer spec field, reconciled into the real nats-server this project runs the file
 * against (the current one for `nats-current`, Debian's 2.9.10 for `nats-2.9`): created with the
 * field, read back, reconciled again with no create/update call (the server's normalised values
 * included), changed in place or refused naming the field the server fixes; a field the server
 * is too old for is refused before anything is created, with the version it needs.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  atLeast,
  deleteConsumer,
  parseVersion,
  readConsumer,
  reconcileConsumer,
  reconcileStream,
  type Version,
} from '../../src/reconcile/index.js';
import { Names, type ConsumerSpec } from '../../src/topology.js';
import { deleteNamespaceStreams, testNamespace, testNats } from '@orderflow/kit/testing';
import { fieldCaseTests, oneField, type FieldCase } from './field-cases.js';
import { withoutCalls } from './support.js';

let nc: NatsConnection;
let jsm: JetStreamManager;
let server: Version;
const ns = testNamespace('cf');
const names = new Names(ns);
const stream = names.stream('CF');
const limited = names.stream('CF_LIMITED');

beforeAll(async () => {
  nc = await testNats();
  jsm = await jetstreamManager(nc);
  server = parseVersion(nc.info?.version)!;
  expect((await reconcileStream(jsm, { name: stream, subjects: [names.subject('cf.>')] })).outcome).toBe('created');
});
afterAll(async () => {
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});

/** Fails the test if a reconcile makes any create, update or pause call. */
const withoutWrites = <T>(fn: () => Promise<T>): Promise<T> =>
  withoutCalls(
    [
      vi.spyOn(jsm.consumers, 'add'),
      vi.spyOn(jsm.consumers, 'update'),
      vi.spyOn(jsm.consumers, 'pause'),
      vi.spyOn(jsm.consumers, 'resume'),
    ],
    fn,
  );

const subj = (s: string): string => names.subject(`cf.${s}`);
const push = (i: number): string => names.subject(`cfpush.${i}`);
const inAYear = new Date(Date.now() + 365 * 86400e3);
const inTwoYears = new Date(Date.now() + 730 * 86400e3);
// Go prints times without trailing zeros in the fraction; whole seconds keep it comparable.
inAYear.setUTCMilliseconds(0);
inTwoYears.setUTCMilliseconds(0);
const rfc = (d: Date): string => d.toISOString().replace('.000Z', 'Z');

const cases: FieldCase<ConsumerSpec>[] = [
  oneField('description', 'description', ['reserves stock'], ['x']),
  oneField('deliverPolicy', 'deliver_policy', ['last'], ['new'], { name: 'deliverPolicy last', fixed: true }),
  {
    name: 'deliverPolicy lastPerSubject',
    spec: { deliverPolicy: 'lastPerSubject', filterSubject: subj('>') },
    holds: { deliver_policy: 'last_per_subject' },
  },
  {
    name: 'optStartSeq',
    spec: { deliverPolicy: 'byStartSequence', optStartSeq: 5 },
    holds: { deliver_policy: 'by_start_sequence', opt_start_seq: 5 },
    change: { deliverPolicy: 'byStartSequence', optStartSeq: 6 },
    fixed: 'opt_start_seq',
  },
  {
    name: 'optStartTime',
    spec: { deliverPolicy: 'by_start_time', optStartTime: '2024-01-01T01:00:00.000+01:00' },
    holds: { deliver_policy: 'by_start_time' },
    change: { deliverPolicy: 'byStartTime', optStartTime: '2024-01-02T00:00:00Z' },
    fixed: 'opt_start_time',
  },
  oneField('ackPolicy', 'ack_policy', ['all'], ['explicit'], { name: 'ackPolicy all', fixed: true }),
  { name: 'ackPolicy none', spec: { ackPolicy: 'none' }, holds: { ack_policy: 'none' } },
  oneField('ackWait', 'ack_wait', ['10s', 10e9], ['1m30s', 90e9]),
  oneField('maxDeliver', 'max_deliver', [5], [6]),
  {
    name: 'backoff',
    spec: { maxDeliver: 3, backoff: ['1s', '2s'] },
    holds: { backoff: [1e9, 2e9], ack_wait: 1e9 },
    change: { maxDeliver: 4, backoff: ['500ms', '1s', '3s'] },
    changed: { backoff: [500e6, 1e9, 3e9] },
  },
  oneField('filterSubject', 'filter_subject', [subj('a')], [subj('b')]),
  {
    name: 'filterSubjects',
    since: '2.10.0',
    spec: { filterSubjects: [subj('a'), subj('b')] },
    holds: { filter_subjects: [subj('a'), subj('b')] },
    change: { filterSubject: subj('c') },
    changed: { filter_subject: subj('c') },
  },
  oneField('replayPolicy', 'replay_policy', ['original'], ['instant'], { fixed: true }),
  oneField('sampleFreq', 'sample_freq', ['50'], ['60%']),
  oneField('maxWaiting', 'max_waiting', [10], [20], { fixed: true }),
  oneField('maxAckPending', 'max_ack_pending', [50], [60]),
  { name: 'headersOnly', spec: { headersOnly: true }, holds: { headers_only: true }, change: { headersOnly: false }, changed: {} },
  {
    name: 'maxRequestBatch/Expires/MaxBytes',
    spec: { maxRequestBatch: 10, maxRequestExpires: '5s', maxRequestMaxBytes: 1024 },
    holds: { max_batch: 10, max_expires: 5e9, max_bytes: 1024 },
    change: { maxRequestBatch: 20, maxRequestExpires: '10s', maxRequestMaxBytes: 2048 },
    changed: { max_batch: 20, max_expires: 10e9, max_bytes: 2048 },
  },
  oneField('inactiveThreshold', 'inactive_threshold', ['1h', 3600e9], ['2h', 7200e9]),
  { name: 'replicas', spec: { replicas: 1 }, holds: { num_replicas: 1 } },
  oneField('memStorage', 'mem_storage', [true], [false], { fixed: true }),
  oneField('metadata', 'metadata', [{ owner: 'inventory' }], [{ owner: 'payment' }], { since: '2.10.0' }),
  { name: 'pull → push', spec: {}, holds: {}, change: { deliverSubject: 'PUSH' }, fixed: 'deliver_subject' },
  oneField('deliverSubject', 'deliver_subject', ['PUSH'], ['PUSH2']),
  {
    name: 'deliverGroup',
    spec: { deliverSubject: 'PUSH', deliverGroup: 'workers' },
    holds: { deliver_group: 'workers' },
    change: { deliverSubject: 'PUSH', deliverGroup: 'others' },
    changed: { deliver_group: 'others' },
  },
  { name: 'push → pull', spec: { deliverSubject: 'PUSH' }, holds: {}, change: {}, fixed: 'deliver_subject' },
  {
    name: 'flowControl/heartbeatInterval',
    spec: { deliverSubject: 'PUSH', flowControl: true, heartbeatInterval: '5s' },
    holds: { flow_control: true, idle_heartbeat: 5e9 },
    change: { deliverSubject: 'PUSH', flowControl: true, heartbeatInterval: '10s' },
    fixed: 'idle_heartbeat',
  },
  {
    name: 'rateLimitBps',
    spec: { deliverSubject: 'PUSH', rateLimitBps: 8000 },
    holds: { rate_limit_bps: 8000 },
    change: { deliverSubject: 'PUSH', rateLimitBps: 16000 },
    changed: { rate_limit_bps: 16000 },
  },
  oneField('pauseUntil', 'pause_until', [rfc(inAYear)], [rfc(inTwoYears)], { since: '2.11.0' }),
  {
    name: 'priorityPolicy overflow',
    since: '2.11.0',
    spec: { priorityPolicy: 'overflow', priorityGroups: ['hot'] },
    holds: { priority_policy: 'overflow', priority_groups: ['hot'] },
    change: { priorityPolicy: 'pinned_client', priorityGroups: ['hot'], pinnedTtl: '30s' },
    changed: { priority_policy: 'pinned_client', priority_timeout: 30e9 },
  },
  {
    name: 'priorityPolicy pinned_client (default pinnedTtl)',
    since: '2.11.0',
    spec: { priorityPolicy: 'pinned_client', priorityGroups: ['hot'] },
    holds: { priority_policy: 'pinned_client', priority_timeout: 120e9 },
  },
  {
    name: 'priorityPolicy prioritized',
    since: '2.12.0',
    spec: { priorityPolicy: 'prioritized', priorityGroups: ['hot'] },
    holds: { priority_policy: 'prioritized' },
  },
];

describe.each(cases.map((c, i) => [c.name, c, i] as const))('Consumer %s', (_name, c, i) => {
  const durable = `cf${i}`;
  const localise = (s: Partial<ConsumerSpec>): Partial<ConsumerSpec> =>
    s.deliverSubject ? { ...s, deliverSubject: push(i) + (s.deliverSubject === 'PUSH2' ? '.2' : '') } : s;
  const spec = (extra: Partial<ConsumerSpec>): ConsumerSpec => ({ streamName: stream, durableName: durable, ...localise(extra) });
  const holds = (h: Record<string, unknown>): Record<string, unknown> =>
    h.deliver_subject ? { ...h, deliver_subject: push(i) + (h.deliver_subject === 'PUSH2' ? '.2' : '') } : h;

  afterAll(async () => {
    await deleteConsumer(jsm, stream, durable);
  });

  fieldCaseTests(c, {
    server: () => server,
    spec,
    reconcile: (s) => reconcileConsumer(jsm, s),
    read: () => readConsumer(jsm, stream, durable),
    holds,
    withoutWrites,
  });
});

describe('Consumer backoff against maxDeliver', () => {
  it(
    'as many delays as deliveries, or unlimited deliveries: accepted where the server does, refused before ' + 'naming the version',
    async () => {
      for (const [durable, maxDeliver, since] of [
        ['cf-bo-eq', 2, [2, 10, 23]],
        ['cf-bo-unl', -1, [2, 10, 14]],
      ] as const) {
        const r = await reconcileConsumer(jsm, { streamName: stream, durableName: durable, maxDeliver, backoff: ['1s', '2s'] });
        if (atLeast(server, since)) {
          expect(r.outcome, r.reasons.join('; ')).toBe('created');
          await deleteConsumer(jsm, stream, durable);
        } else {
          expect(r).toMatchObject({ action: 'refuse', outcome: 'refused' });
          expect(r.reasons[0]).toContain(`nats-server ${server.join('.')}`);
          expect(await readConsumer(jsm, stream, durable)).toBeUndefined();
        }
      }
    },
  );
});

describe('Consumer pauseUntil removed', () => {
  it('resumes the consumer (pause API), and a past pauseUntil is no pause', async () => {
    if (!atLeast(server, [2, 11, 0])) return;
    const spec: ConsumerSpec = { streamName: stream, durableName: 'cf-pause', pauseUntil: rfc(inAYear) };
    expect((await reconcileConsumer(jsm, spec)).outcome).toBe('created');
    expect((await readConsumer(jsm, stream, 'cf-pause'))?.paused).toBe(true);
    const r = await reconcileConsumer(jsm, { ...spec, pauseUntil: undefined });
    expect(r.outcome, r.reasons.join('; ')).toBe('updated');
    expect((await readConsumer(jsm, stream, 'cf-pause'))?.paused).toBeFalsy();
    const past = await withoutWrites(() => reconcileConsumer(jsm, { ...spec, pauseUntil: '2020-01-01T00:00:00Z' }));
    expect(past.action).toBe('noop');
    await deleteConsumer(jsm, stream, 'cf-pause');
  });
});

describe('values the server normalises', () => {
  it('unset or zero maxAckPending, maxWaiting, ackWait, replicas, and backoff replacing ackWait: no update on resync', async () => {
    const spec: ConsumerSpec = {
      streamName: stream,
      durableName: 'cf-norm',
      maxAckPending: 0,
      maxWaiting: 0,
      replicas: 0,
      maxDeliver: 5,
      ackWait: '45s',
      backoff: ['2s'],
    };
    expect((await reconcileConsumer(jsm, spec)).outcome).toBe('created');
    expect((await readConsumer(jsm, stream, 'cf-norm'))?.config).toMatchObject({ max_ack_pending: 1000, max_waiting: 512, ack_wait: 2e9 });
    const again = await withoutWrites(() => reconcileConsumer(jsm, spec));
    expect(again, again.reasons.join('; ')).toMatchObject({ action: 'noop', outcome: 'unchanged' });
    await deleteConsumer(jsm, stream, 'cf-norm');
  });

  it("a stream's consumerLimits fill an unset maxAckPending and inactiveThreshold (2.10+): no update on resync", async () => {
    if (!atLeast(server, [2, 10, 0])) return;
    const s = await reconcileStream(jsm, {
      name: limited,
      subjects: [names.subject('cflim.>')],
      consumerLimits: { maxAckPending: 50, inactiveThreshold: '1h' },
    });
    expect(s.outcome).toBe('created');
    const spec: ConsumerSpec = { streamName: limited, durableName: 'under-limits' };
    expect((await reconcileConsumer(jsm, spec)).outcome).toBe('created');
    expect((await readConsumer(jsm, limited, 'under-limits'))?.config).toMatchObject({ max_ack_pending: 50, inactive_threshold: 3600e9 });
    const again = await withoutWrites(() => reconcileConsumer(jsm, spec));
    expect(again, again.reasons.join('; ')).toMatchObject({ action: 'noop', outcome: 'unchanged' });
  });
});
