import '@orderflow/kit/otel'; // first: tracing must start before pg and http are loaded
/**
 * Operator entry (`npm start -w operator`). Env: PORT (3010), NATS_URL, WATCH_NAMESPACE (all when
 * unset), POD_NAME / POD_NAMESPACE (lease identity and namespace, from the downward API),
 * LEASE_NAME, LEASE_DURATION_MS (15000), LEASE_RENEW_DEADLINE_MS (10000), LEASE_RETRY_PERIOD_MS
 * (2000), RESYNC_SECONDS, LOG_LEVEL, OPERATOR_MODE (`manage`, or `observe`: read JetStream and report
 * in the status, never write to it), ADVISORY_STREAM (ORDERFLOW_ADVISORIES: where dead-letter
 * advisories are captured), STREAM_REPLICAS (that stream's replicas when the operator creates it).
 * Kubernetes credentials: in-cluster service account, or KUBECONFIG / ~/.kube/config outside a cluster.
 *
 * Probes first, as controller-runtime does: /health answers from the start and /ready says what
 * is missing (NATS, the informer caches) until the operator has it, so a NATS that is away at
 * start is waited out instead of failing the liveness probe. The operator itself starts at once
 * too: leader election, informers and reconciles run without NATS, and a resource whose
 * connection is away says so in its status (Ready=False/ConnectionUnavailable) until it connects.
 */
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { baseConfig, createLogger, exitOnSignals, intSetting, NatsManager, opsApp, readSetting, serveHttp } from '@orderflow/kit';
import { createKubeApi } from './kube-api.js';
import { createMetrics } from './metrics.js';
import { createOperator, type Operator } from './operator.js';
import type { OperatorMode } from './reconciler.js';

const log = createLogger('operator');
const config = baseConfig('operator', 3010);
const MODES: readonly OperatorMode[] = ['manage', 'observe'];
const mode = (readSetting('OPERATOR_MODE') ?? 'manage') as OperatorMode;
if (!MODES.includes(mode)) {
  log.fatal({ OPERATOR_MODE: mode }, `OPERATOR_MODE must be one of ${MODES.join(', ')}`);
  process.exit(2);
}
if (mode === 'observe') log.info('observe mode: JetStream is read and reported on, never written');

const kc = new KubeConfig();
kc.loadFromDefault();
// The default connection (resources without spec.connection, the advisory capture), through the
// kit's connection manager: jittered backoff for the first connect too, reconnect forever
// (JetStream being away is a reason to retry, not to exit), credentials / TLS from env or files. A
// connection nats.js closed for good is rebuilt; if that fails for NATS_REBUILD_TIMEOUT_MS the
// process exits non-zero so Kubernetes restarts it. NatsConnection resources have their own.
const nats = new NatsManager(
  {
    ...config.nats,
    name: 'orderflow-operator',
    rebuildTimeoutMs: config.natsRebuildTimeoutMs,
  },
  log,
  undefined,
  (err) => {
    log.fatal({ err }, 'operator.unrecoverable_exiting');
    void Promise.resolve(operator.stop()).finally(() => process.exit(1));
  },
);
const metrics = createMetrics({ defaultMetrics: true });
// One operator for the process, started now whatever NATS is doing: it takes each new default
// connection from the manager (the advisory capture moves to it) and resolves every resource's
// connection at each reconcile.
const operator: Operator = createOperator({
  kc,
  api: createKubeApi(kc),
  nats,
  natsServers: config.nats.servers,
  log,
  metrics,
  identity: readSetting('POD_NAME') ?? `${hostname()}-${process.pid}`,
  namespace: readSetting('WATCH_NAMESPACE'),
  lease: {
    namespace: readSetting('POD_NAMESPACE') ?? 'default',
    name: readSetting('LEASE_NAME') ?? 'orderflow-operator',
    durationMs: intSetting('LEASE_DURATION_MS', 15_000),
    renewDeadlineMs: intSetting('LEASE_RENEW_DEADLINE_MS', 10_000),
    retryPeriodMs: intSetting('LEASE_RETRY_PERIOD_MS', 2_000),
  },
  resyncMs: intSetting('RESYNC_SECONDS', 30) * 1000,
  mode,
  advisories: { stream: readSetting('ADVISORY_STREAM'), replicas: config.streamReplicas },
});

let accepting = true;
const app = opsApp({
  registry: metrics.registry,
  accepting: () => accepting,
  checks: [
    { name: 'nats', check: () => nats.isConnected() || 'not connected' },
    { name: 'caches', check: () => operator.ready() || 'informer caches not synced' },
  ],
  details: () => ({ leader: operator.isLeader() }),
});
const http = await serveHttp(app, { port: config.port });
log.info({ port: http.port }, 'operator listening');

operator.start();

exitOnSignals(
  async () => {
    accepting = false;
    // Release the lease first so a standby takes over without waiting for it to expire.
    await operator.stop();
    await nats.stop();
    await http.close();
  },
  { log, timeoutMs: intSetting('SHUTDOWN_TIMEOUT_MS', 20_000) },
);
nats.start();
