/**
 * The operator, composed: leader election gates everything else. While leading it runs the
 * informers (list+watch of Stream and Consumer resources), the work queue, a periodic resync that
 * re-reconciles every resource (repairing drift made behind Kubernetes' back, e.g. a stream
 * deleted by hand) and the dead-letter advisory copier. A standby does nothing but campaign.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { NatsConnection } from '@nats-io/nats-core';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { createAdvisoryCopier, type AdvisoryCopier } from '@orderflow/kit';
import type { Logger } from 'pino';
import { createInformer, type ResourceInformer } from './informers.js';
import type { KubeApi } from './kube-api.js';
import { createLeaderElector, type LeaderElector } from './leader-election.js';
import type { OperatorMetrics } from './metrics.js';
import { createReconciler } from './reconciler.js';
import { FINALIZER, keyOf, type ConsumerResource, type Kind, type Resource } from './resources.js';
import { createWorkQueue, type WorkQueue } from './work-queue.js';

export interface OperatorOptions {
  kc: KubeConfig;
  api: KubeApi;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  log: Logger;
  metrics: OperatorMetrics;
  identity: string;
  /** Watch one namespace; all namespaces when unset. */
  namespace?: string;
  lease: { namespace: string; name: string; durationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  resyncMs?: number;
  workers?: number;
  requeue?: { baseDelayMs?: number; maxDelayMs?: number };
}

export interface Operator {
  start(): void;
  stop(): Promise<void>;
  isLeader(): boolean;
  /** Leading with caches synced, or standing by. */
  ready(): boolean;
}

const KINDS: Kind[] = ['Stream', 'Consumer'];

export function createOperator(o: OperatorOptions): Operator {
  const log = o.log;
  let informers = new Map<Kind, ResourceInformer>();
  let queue: WorkQueue | undefined;
  let copier: AdvisoryCopier | undefined;
  let resync: NodeJS.Timeout | undefined;
  let synced = false;
  let leading = false;
  // Serialises leadership transitions: a quick lose/win must not interleave start and stop.
  let transition: Promise<void> = Promise.resolve();

  const get = (kind: Kind, namespace: string, name: string): Resource | undefined => informers.get(kind)?.get(name, namespace) as Resource | undefined;

  /** Enqueue only what needs work; status-only updates (our own patches) are left to resync. */
  function needsWork(obj: Resource): boolean {
    const m = obj.metadata;
    return Boolean(m?.deletionTimestamp) || !(m?.finalizers ?? []).includes(FINALIZER) || obj.status?.observedGeneration !== m?.generation;
  }

  function enqueueAll(): void {
    for (const [kind, inf] of informers) for (const obj of inf.list()) queue?.add(keyOf(kind, obj));
  }

  async function startLeading(): Promise<void> {
    leading = true;
    o.metrics.leader.set(1);
    queue = createWorkQueue(createReconciler({ jsm: o.jsm, api: o.api, get, metrics: o.metrics, log }), {
      workers: o.workers ?? 2,
      ...o.requeue,
      onDepth: (d) => o.metrics.queueDepth.set(d),
    });
    const q = queue;
    informers = new Map(KINDS.map((k) => [k, createInformer(o.kc, o.api, k, o.namespace)]));
    for (const [kind, inf] of informers) {
      const onChange = (obj: Resource): void => {
        if (needsWork(obj)) q.add(keyOf(kind, obj));
      };
      inf.on('add', onChange);
      inf.on('update', onChange);
      inf.on('error', (err: unknown) => {
        // ListWatch stops on errors other than 410 / timeouts; restart it while we lead.
        log.warn({ kind, err: (err as Error)?.message }, 'watch failed; restarting in 1s');
        setTimeout(() => {
          if (leading && informers.get(kind) === inf) void inf.start().catch(() => undefined);
        }, 1000).unref();
      });
    }
    await Promise.all([...informers.values()].map((i) => i.start().catch((err: unknown) => log.warn({ err }, 'initial list failed'))));
    synced = true;
    q.start();
    copier = createAdvisoryCopier({
      nc: o.nc,
      js: o.js,
      jsm: o.jsm,
      log,
      lookup: (stream, consumer) => {
        const c = (informers.get('Consumer')?.list() ?? []).find((x) => (x as ConsumerResource).spec.streamName === stream && (x as ConsumerResource).spec.durableName === consumer);
        return (c as ConsumerResource | undefined)?.spec.deadLetter?.subject;
      },
    });
    copier.start();
    const every = o.resyncMs ?? 30_000;
    resync = setInterval(enqueueAll, every);
    resync.unref();
  }

  async function stopLeading(): Promise<void> {
    leading = false;
    synced = false;
    o.metrics.leader.set(0);
    clearInterval(resync);
    resync = undefined;
    await Promise.all([...informers.values()].map((i) => i.stop()));
    await queue?.stop();
    await copier?.stop();
    queue = undefined;
    copier = undefined;
    informers = new Map();
  }

  const elector: LeaderElector = createLeaderElector({
    kc: o.kc,
    namespace: o.lease.namespace,
    name: o.lease.name,
    identity: o.identity,
    leaseDurationMs: o.lease.durationMs,
    renewDeadlineMs: o.lease.renewDeadlineMs,
    retryPeriodMs: o.lease.retryPeriodMs,
    log,
    onStartedLeading: () => (transition = transition.then(startLeading)),
    onStoppedLeading: () => (transition = transition.then(stopLeading)),
  });

  return {
    start: () => elector.start(),
    async stop() {
      await elector.stop();
      await transition;
      if (leading) await stopLeading();
    },
    isLeader: () => elector.isLeader(),
    ready: () => !elector.isLeader() || synced,
  };
}
