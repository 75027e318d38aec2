/**
 * The operator, composed: leader election gates everything else. While leading it runs the
 * informers (list+watch of Stream, Consumer and NatsConnection resources), the work queue, a
 * periodic resync that re-reconciles every resource (repairing drift made behind Kubernetes'
 * back, e.g. a stream deleted by hand) and the dead-letter copier reading captured advisories. A standby does nothing
 * but campaign. In observe mode nothing is written to JetStream: resources get a status saying how
 * JetStream differs from them, and no dead letters are copied.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { RetryDelays, type BackoffSettings, type Connected } from '@orderflow/kit';
import type { Logger } from 'pino';
import {
  createAdvisoryStreamCopier,
  DEFAULT_ADVISORY_STREAM,
  durableName,
  removeCapture,
  type AdvisoryStreamCopier,
} from './advisory-stream.js';
import { createConnectionAdvisories } from './connection-advisories.js';
import { ConnectionPool } from './connection-pool.js';
import { createConnectionReconciler } from './connection-reconciler.js';
import { connectionName, type NatsConnectionResource } from './connection-spec.js';
import { connectionKey, createConnectionResolver, type DefaultConnection } from './connections.js';
import { createEventRecorder, type EventRecorder } from './events.js';
import { createInformer, type ResourceInformer } from './informers.js';
import { apiError, type KubeApi } from './kube-api.js';
import { createLeaderElector, type LeaderElector } from './leader-election.js';
import type { OperatorMetrics } from './metrics.js';
import { ADOPT_ANNOTATION } from './ownership.js';
import { createBucketReconciler } from './bucket-reconciler.js';
import { BUCKET_KINDS, isBucketKind, type BucketResource } from './bucket-resources.js';
import { createReconciler, type OperatorMode } from './reconciler.js';
import { FINALIZER, GROUP, keyOf, parseKey, PLURAL, type ConsumerResource, type Kind, type Resource } from './resources.js';
import { createSecretReader, type SecretReader } from './secrets.js';
import { createWorkQueue, type WorkQueue } from './work-queue.js';

export interface OperatorOptions {
  kc: KubeConfig;
  api: KubeApi;
  /**
   * The default NATS connection (resources without `spec.connection`, the advisory capture). The
   * operator runs without it: such resources are Ready=False/ConnectionUnavailable until it connects.
   */
  nats: DefaultConnection;
  /** Where the default connection points (NATS_URL), for status messages. */
  natsServers?: string[];
  /** Secrets of NatsConnection resources; read through `kc` by default. */
  secrets?: SecretReader;
  /** Backoff of the NatsConnection resources' connects and reconnects (the kit's default otherwise). */
  connectionBackoff?: BackoffSettings;
  log: Logger;
  metrics: OperatorMetrics;
  identity: string;
  /** Watch one namespace; all namespaces when unset. */
  namespace?: string;
  lease: { namespace: string; name: string; durationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  resyncMs?: number;
  workers?: number;
  requeue?: { baseDelayMs?: number; maxDelayMs?: number };
  /** `manage` (default) or `observe`: read JetStream and report, never write to it. */
  mode?: OperatorMode;
  /** The stream that captures dead-letter advisories (default ORDERFLOW_ADVISORIES) and its replicas when created here. */
  advisories?: { stream?: string; replicas?: number };
  /** Kubernetes Events; by default written through `kc` as this instance. */
  events?: EventRecorder;
}

export interface Operator {
  start(): void;
  stop(): Promise<void>;
  isLeader(): boolean;
  /** Leading with caches synced, or standing by. */
  ready(): boolean;
}

const KINDS: Kind[] = ['Stream', 'Consumer', 'NatsConnection', ...BUCKET_KINDS];

export function createOperator(o: OperatorOptions): Operator {
  const log = o.log;
  let informers = new Map<Kind, ResourceInformer>();
  let queue: WorkQueue | undefined;
  let copier: AdvisoryStreamCopier | undefined;
  const mode = o.mode ?? 'manage';
  const events = o.events ?? createEventRecorder(o.kc, o.identity, log);
  let resync: NodeJS.Timeout | undefined;
  let started = false;
  let leading = false;
  // Serialises leadership transitions: a quick lose/win must not interleave start and stop.
  let transition: Promise<void> = Promise.resolve();

  const get = (kind: Kind, namespace: string, name: string): Resource | undefined =>
    informers.get(kind)?.get(name, namespace) as Resource | undefined;

  /**
   * Enqueue only what needs work; status-only updates (our own patches) are left to resync. An
   * adopt annotation on a resource refused for ownership does not bump its generation, so it
   * counts too.
   */
  function needsWork(obj: Resource): boolean {
    const m = obj.metadata;
    const reason = obj.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
    const adoptAsked = m?.annotations?.[ADOPT_ANNOTATION] === 'true' && (reason === 'NotOwned' || reason === 'OwnedElsewhere');
    return (
      (Boolean(m?.deletionTimestamp) && (m?.finalizers ?? []).includes(FINALIZER)) ||
      obj.status?.observedGeneration !== m?.generation ||
      adoptAsked
    );
  }

  const synced = (): boolean => started && [...informers.values()].every((i) => i.latestResourceVersion() !== '');
  const list = (kind: Kind): Resource[] => (informers.get(kind)?.list() ?? []) as Resource[];

  function enqueueAll(): void {
    for (const [kind, inf] of informers) for (const obj of inf.list()) queue?.add(keyOf(kind, obj));
  }

  // Connections: the pool of NatsConnection resources' connections (only while leading) and the
  // one resolver every kind's reconcile gets its JetStream handle from. A connection made or
  // remade is a reason to look at everything again (resources waiting for it turn Ready).
  const clientName = `orderflow-operator-${o.identity}`;
  const pool = new ConnectionPool({
    log,
    clientName,
    backoff: o.connectionBackoff,
    onConnection: () => {
      enqueueAll();
      void advisories.sync();
    },
  });
  const secrets = o.secrets ?? createSecretReader(o.kc);
  const getConnection = (namespace: string, name: string): NatsConnectionResource | undefined =>
    informers.get('NatsConnection')?.get(name, namespace) as NatsConnectionResource | undefined;
  const connections = createConnectionResolver({
    defaultConnection: o.nats,
    defaultServers: o.natsServers ?? ['the default'],
    getConnection,
    secrets,
    pool,
  });
  /** Resources of every other kind (KeyValue, ObjectStore included) that name this connection. */
  function users(namespace: string, name: string): { kind: Kind; obj: Resource }[] {
    const found: { kind: Kind; obj: Resource }[] = [];
    for (const [kind, inf] of informers) {
      if (kind === 'NatsConnection') continue;
      for (const obj of inf.list())
        if (obj.metadata?.namespace === namespace && connectionName(obj) === name) found.push({ kind, obj: obj as Resource });
    }
    return found;
  }

  /** The capture durable of this deployment (per Lease) plus `suffix` (a NatsConnection's, or none for the default one). */
  const captureDurable = (suffix: string): string => durableName(`orderflow-operator_${o.lease.namespace}_${o.lease.name}${suffix}`);
  const connectionSuffix = (key: string): string => `_${key.replace('/', '_')}`;

  /**
   * A dead-letter advisory capture on one connection (advisories are per account): its durable is
   * captureDurable(suffix), and it copies the dead letters of the Consumers `served` picks, those
   * reached through that connection.
   */
  function captureOn(conn: Connected, suffix: string, logger: Logger, served: (c: ConsumerResource) => boolean): AdvisoryStreamCopier {
    const capture = createAdvisoryStreamCopier({
      nc: conn.nc,
      js: conn.js,
      jsm: conn.jsm,
      log: logger,
      stream: o.advisories?.stream,
      replicas: o.advisories?.replicas,
      durable: captureDurable(suffix),
      ready: () => leading && synced(),
      lookup: (stream, consumer) =>
        (list('Consumer') as ConsumerResource[]).find((x) => x.spec.streamName === stream && x.spec.durableName === consumer && served(x))
          ?.spec.deadLetter?.subject,
    });
    capture.start();
    return capture;
  }

  /** The advisory capture runs on the default connection, restarted on each new one. */
  let copierConn: Connected | undefined;
  function startCopier(conn: Connected | undefined): void {
    if (mode !== 'manage' || !leading || !started || !conn || copier) return;
    copierConn = conn;
    copier = captureOn(conn, '', log, (c) => connectionName(c) === undefined);
  }
  const connectionExists = (key: string): boolean => {
    const [namespace = '', name = ''] = key.split('/');
    return getConnection(namespace, name) !== undefined;
  };
  /** The NatsConnections (`<namespace>/<name>`) a Consumer with deadLetter names: a capture runs, or will, in each one's account. */
  function capturedConnections(): Set<string> {
    const keys = new Set<string>();
    if (mode !== 'manage') return keys;
    for (const c of list('Consumer') as ConsumerResource[]) {
      const via = connectionName(c);
      if (via && c.spec.deadLetter?.subject) keys.add(connectionKey(c.metadata?.namespace ?? '', via));
    }
    return keys;
  }
  // The same capture on each NatsConnection a Consumer with deadLetter names (its own account).
  const advisories = createConnectionAdvisories({
    connection: (key) => pool.connection(key),
    wanted() {
      if (!leading || !started) return undefined;
      // A NatsConnection being deleted keeps its capture while resources still delete through it:
      // its finalizer ends the capture (retireCapture) when it comes off. One gone has none.
      return new Set([...capturedConnections()].filter(connectionExists));
    },
    exists: connectionExists,
    start(key, conn) {
      const [namespace = '', name = ''] = key.split('/');
      return captureOn(
        conn,
        connectionSuffix(key),
        log.child({ connection: key }),
        (c) => c.metadata?.namespace === namespace && connectionName(c) === name,
      );
    },
    remove: (key, conn) => removeCapture(conn.jsm, { stream: o.advisories?.stream, durable: captureDurable(connectionSuffix(key)) }),
    log,
  });
  /** A capture runs on it, or the durable of one that ended is left there to remove: it keeps our finalizer. */
  const captured = (namespace: string, name: string): boolean => {
    const key = connectionKey(namespace, name);
    return capturedConnections().has(key) || advisories.leftover(key);
  };
  async function retireCapture(namespace: string, name: string): Promise<string | undefined> {
    if (mode !== 'manage') return undefined;
    const key = connectionKey(namespace, name);
    const why = await advisories.retire(key, captured(namespace, name));
    if (!why) return undefined;
    const durable = captureDurable(connectionSuffix(key));
    const stream = o.advisories?.stream ?? DEFAULT_ADVISORY_STREAM;
    return (
      `dead-letter advisory capture left in the account of NatsConnection ${name} (${why}): ` +
      `delete it by hand with nats consumer rm ${stream} ${durable}`
    );
  }

  o.nats.onConnection((conn) => {
    transition = transition.then(async () => {
      if (!leading || !started || copierConn === conn) return;
      await copier?.stop();
      copier = undefined;
      startCopier(conn);
    });
    enqueueAll();
  });

  async function startLeading(): Promise<void> {
    leading = true;
    o.metrics.leader.set(1);
    // Streams/Consumers and buckets go through one reconcile (object-reconciler.ts) with the same deps.
    const shared = {
      connections,
      api: o.api,
      watchNamespace: o.namespace,
      mode,
      events,
      leading: () => elector.isLeader(),
      metrics: o.metrics,
      log,
    };
    const reconcileResource = createReconciler({ ...shared, get, list });
    const reconcileBucket = createBucketReconciler({
      ...shared,
      get: (kind, namespace, name) => get(kind, namespace, name) as BucketResource | undefined,
    });
    const reconcileConnection = createConnectionReconciler({
      get: getConnection,
      // A durable left in its account is removed through the pool's connection: kept open for it.
      referenced: (namespace, name) => users(namespace, name).length > 0 || advisories.leftover(connectionKey(namespace, name)),
      needed: (namespace, name) => users(namespace, name).some((u) => (u.obj.metadata?.finalizers ?? []).includes(FINALIZER)),
      captured,
      retireCapture,
      events,
      setFinalizer: async (obj, want) => {
        const meta = obj.metadata!;
        if ((meta.finalizers ?? []).includes(FINALIZER) === want) return undefined;
        const rest = (meta.finalizers ?? []).filter((f) => f !== FINALIZER);
        return o.api.setFinalizers(
          'NatsConnection',
          meta.namespace!,
          meta.name!,
          want ? [...rest, FINALIZER] : rest,
          meta.resourceVersion!,
        );
      },
      resolver: connections,
      secrets,
      pool,
      patchStatus: (namespace, name, status, rv) =>
        o.api.patchStatus('NatsConnection', namespace, name, status as never, rv).then(() => undefined),
      clientName,
      leading: () => elector.isLeader(),
      metrics: o.metrics,
      log,
    });
    queue = createWorkQueue(
      (key) => {
        const { kind, namespace, name } = parseKey(key);
        if (kind === 'NatsConnection') return reconcileConnection(namespace, name);
        return isBucketKind(kind) ? reconcileBucket(key) : reconcileResource(key);
      },
      {
        workers: o.workers ?? 2,
        ...o.requeue,
        onDepth: (d) => o.metrics.queueDepth.set(d),
      },
    );
    const q = queue;
    informers = new Map(KINDS.map((k) => [k, createInformer(o.kc, o.api, k, o.namespace)]));
    for (const [kind, inf] of informers) {
      const onChange = (obj: Resource): void => {
        if (needsWork(obj)) q.add(keyOf(kind, obj));
      };
      inf.on('add', onChange);
      inf.on('update', onChange);
      // A Consumer with deadLetter naming a NatsConnection (or its last one gone): the capture there.
      if (kind === 'Consumer') for (const e of ['add', 'update', 'delete'] as const) inf.on(e, () => void advisories.sync());
      if (kind === 'NatsConnection')
        inf.on('delete', (obj) => {
          const { namespace = '', name = '' } = obj.metadata ?? {};
          pool.release(connectionKey(namespace, name));
          for (const u of users(namespace, name)) q.add(keyOf(u.kind, u.obj));
        });
      // A resource gone may have been the last to need its NatsConnection (its finalizer).
      else
        inf.on('delete', (obj) => {
          const via = connectionName(obj);
          if (via) q.add(`NatsConnection/${obj.metadata?.namespace ?? ''}/${via}`);
        });
      // ListWatch stops on any error but 410 Gone (an API server restarting, a dropped
      // connection, RBAC): restart it while we lead, from its last resourceVersion, on cockatiel's
      // backoff. A watch that ran a minute without error starts the curve again.
      const delays = new RetryDelays({ initialMs: 200, maxMs: 5000 });
      let lastError = 0;
      inf.on('error', (err: unknown) => {
        if (Date.now() - lastError > 60_000) delays.reset();
        lastError = Date.now();
        const delayMs = delays.next();
        const e = apiError(err);
        const resource = `${PLURAL[kind]}.${GROUP}`;
        if (e.status === 403 || e.status === 401) {
          log.error(
            { kind, status: e.status, err: e.message, delayMs },
            `list/watch of ${resource}${o.namespace ? ` in namespace ${o.namespace}` : ''} refused (${e.status}): ` +
              `grant the operator get, list and watch on ${resource}`,
          );
        } else {
          log.warn(
            { kind, status: e.status, err: e.message, delayMs, attempt: delays.attempts },
            `list/watch of ${resource} failed; restarting`,
          );
        }
        setTimeout(() => {
          if (leading && informers.get(kind) === inf)
            void inf.start().catch((startErr: unknown) => log.warn({ kind, err: apiError(startErr).message }, 'watch restart failed'));
        }, delayMs).unref();
      });
    }
    // A failed first list is reported through the 'error' handler above, which retries it.
    await Promise.all(
      [...informers.values()].map((i) =>
        i.start().catch((err: unknown) => log.warn({ err: apiError(err).message }, 'initial list failed')),
      ),
    );
    // Lost the Lease while listing: stopLeading (queued behind this) cleans up; start nothing.
    if (!elector.isLeader()) return;
    started = true;
    q.start();
    startCopier(o.nats.connection());
    void advisories.sync();
    const every = o.resyncMs ?? 30_000;
    resync = setInterval(() => {
      // A connection whose NatsConnection is gone (a delete event missed, a race with a resolve) is closed.
      for (const key of pool.keys()) {
        const [namespace = '', name = ''] = key.split('/');
        if (!getConnection(namespace, name)) pool.release(key);
      }
      enqueueAll();
      // A connection closed or rebuilt without an event here: its capture is moved or stopped.
      void advisories.sync();
    }, every);
    resync.unref();
  }

  async function stopLeading(): Promise<void> {
    leading = false;
    started = false;
    o.metrics.leader.set(0);
    clearInterval(resync);
    resync = undefined;
    await Promise.all([...informers.values()].map((i) => i.stop()));
    await queue?.stop();
    await copier?.stop();
    // Not leading: nothing is wanted, every capture on a NatsConnection stops.
    await advisories.sync();
    // A standby holds no connections of NatsConnection resources.
    await pool.stop();
    await events.flush();
    queue = undefined;
    copier = undefined;
    copierConn = undefined;
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
    // Synced = every informer has listed (ListWatch keeps the list's resourceVersion; a failed or
    // forbidden list leaves it empty), so a leader that cannot read its resources is not ready.
    ready: () => !elector.isLeader() || synced(),
  };
}
