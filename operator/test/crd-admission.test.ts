/**
 * The CRDs' admission rules, enforced by a REAL kube-apiserver (test/support/control-plane.ts):
 * objects are written with kubectl and the API server itself refuses what the schema and its CEL
 * rules (x-kubernetes-validations) forbid — fields JetStream fixes at creation, one-way flags,
 * and cross-field rules — naming the rule's message. No operator and no NATS: admission only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { testNamespace } from '@orderflow/kit/testing';
import { startControlPlane, type ControlPlane } from '../../test/support/control-plane.js';
import { cr, installCrds, kubeConfigFrom, kubectlApply, kubectlPatch, reader, refusedPatch, type Obj } from './support/kube.js';

const K8S_NS = testNamespace('adm').replace(/_/g, '-');
let cp: ControlPlane;
let get: ReturnType<typeof reader>;

beforeAll(async () => {
  cp = await startControlPlane({ name: 'crd-admission' });
  await installCrds(cp);
  await cp.kubectl(['create', 'namespace', K8S_NS]);
  get = reader(kubeConfigFrom(cp.kubeconfigPath));
}, 180_000);

afterAll(async () => {
  await cp?.stop();
});

/** Applies objects that must all be refused; returns kubectl's error text per object name. */
async function refusedOnCreate(objs: Obj[]): Promise<Map<string, string>> {
  const r = await cp.kubectlResult(['apply', '-n', K8S_NS, '-f', '-'], { input: objs.map((o) => JSON.stringify(o)).join('\n---\n') });
  expect(r.code).not.toBe(0);
  const byName = new Map<string, string>();
  for (const o of objs) {
    const line = r.stderr.split('\n').find((l) => l.includes(`"${o.metadata.name}" is invalid`));
    byName.set(o.metadata.name, line ?? '');
  }
  return byName;
}

describe('valid resources are admitted', () => {
  it("the chart's own Stream/Consumer resources (k8s/platform/jetstream-resources.yaml)", async () => {
    const file = fileURLToPath(new URL('../../k8s/platform/jetstream-resources.yaml', import.meta.url));
    const text = readFileSync(file, 'utf8').replace(/namespace: orderflow/g, `namespace: ${K8S_NS}`);
    await cp.kubectl(['apply', '-n', K8S_NS, '-f', '-'], { input: text });
    expect(await get('Stream', K8S_NS, 'orders')).toBeDefined();
  });

  it('a Stream and Consumers using every field', async () => {
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'full', {
        name: 'FULL',
        description: 'every field',
        subjects: ['full.>'],
        retention: 'limits',
        maxConsumers: 10,
        maxMsgs: 1000,
        maxBytes: 1 << 20,
        maxAge: '1h30m',
        maxMsgsPerSubject: 5,
        maxMsgSize: 1024,
        discard: 'new',
        discardPerSubject: true,
        storage: 'file',
        replicas: 1,
        noAck: false,
        duplicateWindow: '2m',
        placement: { cluster: 'c1', tags: ['ssd'] },
        sources: [
          {
            name: 'OTHER',
            optStartSeq: 1,
            filterSubject: 'o.>',
            externalApiPrefix: '$JS.hub.API',
            externalDeliverPrefix: 'hub.d',
            subjectTransforms: [{ source: 'o.>', dest: 'full.o.>' }],
          },
        ],
        sealed: false,
        denyDelete: false,
        denyPurge: false,
        allowRollup: true,
        allowDirect: true,
        republish: { source: 'full.>', destination: 'rp.>', headersOnly: true },
        subjectTransform: { source: 'full.>', dest: 'full.t.>' },
        compression: 's2',
        firstSequence: 1,
        metadata: { team: 'orders' },
        consumerLimits: { inactiveThreshold: '1h', maxAckPending: 100 },
        allowMsgTtl: true,
        subjectDeleteMarkerTtl: '5s',
        allowAtomicPublish: true,
        allowMsgCounter: false,
        allowMsgSchedules: true,
        persistMode: 'async',
        preventDelete: true,
      }),
      cr('Stream', 'mirror', {
        name: 'MIRROR',
        mirror: { name: 'FULL', optStartTime: '2024-01-01T00:00:00Z', subjectTransforms: [{ source: '>', dest: 'm.>' }] },
        mirrorDirect: true,
      }),
      cr('Consumer', 'pull', {
        streamName: 'FULL',
        durableName: 'pull',
        description: 'pull',
        deliverPolicy: 'byStartSequence',
        optStartSeq: 5,
        ackPolicy: 'explicit',
        ackWait: '30s',
        maxDeliver: 3,
        backoff: ['1s', '5s', '10s'],
        filterSubjects: ['full.a', 'full.b'],
        replayPolicy: 'instant',
        sampleFreq: '50%',
        maxWaiting: 10,
        maxAckPending: 100,
        headersOnly: false,
        maxRequestBatch: 10,
        maxRequestExpires: '5s',
        maxRequestMaxBytes: 1024,
        inactiveThreshold: '1h',
        replicas: 1,
        memStorage: false,
        metadata: { owner: 'x' },
        pauseUntil: '2099-01-01T00:00:00Z',
        priorityPolicy: 'pinned_client',
        priorityGroups: ['hot'],
        pinnedTtl: '30s',
        deadLetter: { subject: 'dlq.FULL.pull' },
      }),
      cr('Consumer', 'push', {
        streamName: 'FULL',
        durableName: 'push',
        deliverPolicy: 'by_start_time',
        optStartTime: '2024-01-01T00:00:00Z',
        deliverSubject: 'push.full',
        flowControl: true,
        heartbeatInterval: '5s',
        rateLimitBps: 8000,
        filterSubject: 'full.>',
      }),
      cr('Consumer', 'queue', { streamName: 'FULL', durableName: 'queue', deliverSubject: 'push.queue', deliverGroup: 'workers' }),
      cr('Consumer', 'last', { streamName: 'FULL', durableName: 'last', deliverPolicy: 'lastPerSubject', filterSubject: 'full.>' }),
    );
    for (const [kind, name] of [
      ['Stream', 'full'],
      ['Stream', 'mirror'],
      ['Consumer', 'pull'],
      ['Consumer', 'push'],
      ['Consumer', 'queue'],
      ['Consumer', 'last'],
    ] as const) {
      expect(await get(kind, K8S_NS, name), `${kind}/${name}`).toBeDefined();
    }
  });
});

describe('cross-field rules refuse an object at creation', () => {
  const s = (name: string, spec: Record<string, unknown>) =>
    cr('Stream', name, { name: name.toUpperCase().replace(/-/g, '_'), subjects: [`${name}.>`], ...spec });
  const c = (name: string, spec: Record<string, unknown>) => cr('Consumer', name, { streamName: 'FULL', durableName: name, ...spec });
  const cases: [Obj, string][] = [
    [s('no-subjects', { subjects: undefined }), 'subjects are required, unless the stream is a mirror or has sources'],
    [s('mirror-subjects', { mirror: { name: 'FULL' } }), 'a mirror takes no subjects'],
    [s('mirror-sources', { subjects: undefined, mirror: { name: 'FULL' }, sources: [{ name: 'X' }] }), 'a mirror has no sources'],
    [s('mirror-direct', { mirrorDirect: true }), 'mirrorDirect needs a mirror'],
    [s('dps', { discardPerSubject: true, maxMsgsPerSubject: 3 }), 'discardPerSubject needs discard: new and maxMsgsPerSubject > 0'],
    [s('dup-window', { maxAge: '1m', duplicateWindow: '2m' }), 'duplicateWindow may not exceed maxAge'],
    [s('sdm-ttl', { subjectDeleteMarkerTtl: '500ms' }), 'subjectDeleteMarkerTtl must be at least 1s'],
    [s('nats-meta', { metadata: { '_nats.ver': '1' } }), 'metadata keys starting with _nats belong to the server'],
    [c('backoff-long', { maxDeliver: 2, backoff: ['1s', '2s', '3s'] }), 'backoff may not have more entries than maxDeliver'],
    [c('backoff-noack', { ackPolicy: 'none', backoff: ['1s'] }), 'backoff needs an ackPolicy other than none'],
    [c('dlq-noack', { ackPolicy: 'none', deadLetter: { subject: 'dlq.x' } }), 'deadLetter needs acknowledgements'],
    [c('seq-without-policy', { optStartSeq: 5 }), 'optStartSeq goes with deliverPolicy byStartSequence'],
    [c('policy-without-seq', { deliverPolicy: 'byStartSequence' }), 'optStartSeq goes with deliverPolicy byStartSequence'],
    [
      c('time-without-policy', { deliverPolicy: 'byStartSequence', optStartSeq: 1, optStartTime: '2024-01-01T00:00:00Z' }),
      'optStartTime goes with deliverPolicy byStartTime',
    ],
    [c('lps-without-filter', { deliverPolicy: 'last_per_subject' }), 'deliverPolicy lastPerSubject needs filterSubject or filterSubjects'],
    [c('two-filters', { filterSubject: 'a', filterSubjects: ['b', 'c'] }), 'filterSubject and filterSubjects are exclusive'],
    [c('push-only-on-pull', { deliverGroup: 'g' }), 'are for push consumers (set deliverSubject)'],
    [c('pull-only-on-push', { deliverSubject: 'p.x', maxWaiting: 5 }), 'are for pull consumers (no deliverSubject)'],
    [c('fc-without-hb', { deliverSubject: 'p.y', flowControl: true }), 'flowControl needs heartbeatInterval'],
    [
      c('group-with-hb', { deliverSubject: 'p.z', deliverGroup: 'g', heartbeatInterval: '5s' }),
      'a deliverGroup (queue group) excludes flowControl and heartbeatInterval',
    ],
    [c('policy-without-groups', { priorityPolicy: 'overflow' }), 'priorityPolicy (other than none) and priorityGroups go together'],
    [c('groups-without-policy', { priorityGroups: ['g'] }), 'priorityPolicy (other than none) and priorityGroups go together'],
    [
      c('pinned-ttl-overflow', { priorityPolicy: 'overflow', priorityGroups: ['g'], pinnedTtl: '1m' }),
      'pinnedTtl needs priorityPolicy pinned_client',
    ],
  ];

  it('each violating object is refused by the API server with its rule, and none is stored', async () => {
    const errors = await refusedOnCreate(cases.map(([o]) => o));
    for (const [o, message] of cases) {
      expect(errors.get(o.metadata.name), `${o.kind}/${o.metadata.name}`).toContain(message);
      expect(await get(o.kind, K8S_NS, o.metadata.name), `${o.kind}/${o.metadata.name} stored`).toBeUndefined();
    }
  });
});

describe('fields JetStream fixes at creation are refused on update', () => {
  beforeAll(async () => {
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'fixed', { name: 'FIXED', subjects: ['fixed.>'], denyDelete: true, allowMsgTtl: true, firstSequence: 10 }),
      cr('Consumer', 'fixed-pull', { streamName: 'FIXED', durableName: 'fixed-pull', deliverPolicy: 'byStartSequence', optStartSeq: 5 }),
      cr('Consumer', 'fixed-push', {
        streamName: 'FIXED',
        durableName: 'fixed-push',
        deliverSubject: 'fixed.push',
        flowControl: true,
        heartbeatInterval: '5s',
      }),
    );
  });

  const streamPatches: [Record<string, unknown>, string][] = [
    [{ name: 'RENAMED' }, 'name is fixed (a JetStream stream cannot be renamed)'],
    [{ storage: 'memory' }, 'storage is fixed when the stream is created'],
    [{ retention: 'workqueue' }, 'retention cannot change to or from workqueue'],
    [{ denyDelete: false }, 'denyDelete cannot be turned off once on'],
    [{ allowMsgTtl: null }, 'allowMsgTtl cannot be turned off once on'],
    [{ firstSequence: 20 }, 'firstSequence applies when the stream is created only'],
    [{ persistMode: 'async' }, 'persistMode is fixed when the stream is created'],
    [{ allowMsgCounter: true }, 'allowMsgCounter is fixed when the stream is created'],
    [{ mirror: { name: 'FULL' }, subjects: null }, 'mirror is fixed when the stream is created'],
  ];
  it.each(streamPatches)('Stream patch %o is refused: %s', async (spec, message) => {
    expect(await refusedPatch(cp, K8S_NS, 'Stream', 'fixed', spec)).toContain(message);
    expect((await get('Stream', K8S_NS, 'fixed'))!.metadata.generation).toBe(1);
  });

  it('what may change is admitted: retention limits → interest, sealing, more limits — and then unsealing is refused', async () => {
    await kubectlPatch(cp, K8S_NS, 'Stream', 'fixed', { spec: { retention: 'interest', sealed: true, maxMsgs: 10 } });
    expect((await get('Stream', K8S_NS, 'fixed'))!.spec).toMatchObject({ retention: 'interest', sealed: true, maxMsgs: 10 });
    expect(await refusedPatch(cp, K8S_NS, 'Stream', 'fixed', { sealed: false })).toContain('a sealed stream cannot be unsealed');
  });

  it("a mirror's origin and mirrorDirect are refused on update", async () => {
    expect(await refusedPatch(cp, K8S_NS, 'Stream', 'mirror', { mirror: { name: 'FULL', filterSubject: 'full.a' } })).toContain(
      'mirror is fixed when the stream is created',
    );
    expect(await refusedPatch(cp, K8S_NS, 'Stream', 'mirror', { mirrorDirect: false })).toContain(
      'mirrorDirect is fixed when the stream is created',
    );
  });

  const consumerPatches: [string, Record<string, unknown>, string][] = [
    ['fixed-pull', { streamName: 'OTHER' }, 'streamName is fixed'],
    ['fixed-pull', { durableName: 'renamed' }, 'durableName is fixed'],
    ['fixed-pull', { ackPolicy: 'all' }, 'ackPolicy is fixed when the consumer is created'],
    ['fixed-pull', { deliverPolicy: 'new', optStartSeq: null }, 'deliverPolicy is fixed when the consumer is created'],
    ['fixed-pull', { optStartSeq: 6 }, 'optStartSeq is fixed when the consumer is created'],
    ['fixed-pull', { replayPolicy: 'original' }, 'replayPolicy is fixed when the consumer is created'],
    ['fixed-pull', { maxWaiting: 10 }, 'maxWaiting is fixed when the consumer is created'],
    ['fixed-pull', { memStorage: true }, 'memStorage is fixed when the consumer is created'],
    ['fixed-pull', { deliverSubject: 'now.push' }, 'a push consumer (deliverSubject) cannot become a pull consumer, nor the other way'],
    [
      'fixed-push',
      { deliverSubject: null, flowControl: null, heartbeatInterval: null },
      'a push consumer (deliverSubject) cannot become a pull consumer',
    ],
    ['fixed-push', { heartbeatInterval: '10s' }, 'heartbeatInterval is fixed when the consumer is created'],
    ['fixed-push', { flowControl: false }, 'flowControl is fixed when the consumer is created'],
  ];
  it.each(consumerPatches)('Consumer %s patch %o is refused: %s', async (name, spec, message) => {
    expect(await refusedPatch(cp, K8S_NS, 'Consumer', name, spec)).toContain(message);
    expect((await get('Consumer', K8S_NS, name))!.metadata.generation).toBe(1);
  });

  it('the same value written another way is no change: deliverPolicy spelling, a duration in other units', async () => {
    await kubectlPatch(cp, K8S_NS, 'Consumer', 'fixed-pull', { spec: { deliverPolicy: 'by_start_sequence', maxDeliver: 9 } });
    await kubectlPatch(cp, K8S_NS, 'Consumer', 'fixed-push', { spec: { heartbeatInterval: '5000ms' } });
    expect((await get('Consumer', K8S_NS, 'fixed-pull'))!.spec).toMatchObject({ deliverPolicy: 'by_start_sequence', maxDeliver: 9 });
    expect((await get('Consumer', K8S_NS, 'fixed-push'))!.spec).toMatchObject({ heartbeatInterval: '5000ms' });
  });
});
