import '@orderflow/kit/otel'; // first: tracing must start before pg and http are loaded
/**
 * Operator entry (`npm start -w operator`). Env: PORT (3010), NATS_URL, WATCH_NAMESPACE (all when
 * unset), POD_NAME / POD_NAMESPACE (lease identity and namespace, from the downward API),
 * LEASE_NAME, RESYNC_SECONDS, LOG_LEVEL. Kubernetes credentials: in-cluster service account, or
 * KUBECONFIG / ~/.kube/config outside a cluster.
 */
import { hostname } from 'node:os';
import { serve } from '@hono/node-server';
import { KubeConfig } from '@kubernetes/client-node';
import { baseConfig, createLogger, exitOnSignals, intSetting, NatsManager, opsApp, readSetting } from '@orderflow/kit';
import { createKubeApi } from './kube-api.js';
import { createMetrics } from './metrics.js';
import { createOperator } from './operator.js';

const log = createLogger('operator');
const config = baseConfig('operator', 3010);

const kc = new KubeConfig();
kc.loadFromDefault();
// The kit's connection manager: jittered backoff for the first connect too, reconnect forever
// (JetStream being away is a reason to retry, not to exit), credentials / TLS from env or files.
const nats = new NatsManager(
  { servers: config.natsServers, name: 'orderflow-operator', user: config.natsUser, password: config.natsPassword, credsFile: config.natsCredsFile, tls: config.natsTls },
  log,
);
nats.start();
const { nc, js, jsm } = await nats.ready();
const metrics = createMetrics({ defaultMetrics: true });
const operator = createOperator({
  kc,
  api: createKubeApi(kc),
  nc,
  js,
  jsm,
  log,
  metrics,
  identity: readSetting('POD_NAME') ?? `${hostname()}-${process.pid}`,
  namespace: readSetting('WATCH_NAMESPACE'),
  lease: { namespace: readSetting('POD_NAMESPACE') ?? 'default', name: readSetting('LEASE_NAME') ?? 'orderflow-operator' },
  resyncMs: intSetting('RESYNC_SECONDS', 30) * 1000,
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
const server = serve({ fetch: app.fetch, port: config.port }, () => log.info({ port: config.port }, 'operator listening'));
operator.start();

exitOnSignals(
  async () => {
    accepting = false;
    // Release the lease first so a standby takes over without waiting for it to expire.
    await operator.stop();
    await nats.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  },
  { log, timeoutMs: intSetting('SHUTDOWN_TIMEOUT_MS', 20_000) },
);
