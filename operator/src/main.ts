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
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createLogger, exitOnSignals, intSetting, opsApp, readSetting } from '@orderflow/kit';
import { createKubeApi } from './kube-api.js';
import { createMetrics } from './metrics.js';
import { createOperator } from './operator.js';

const log = createLogger('operator');
const port = intSetting('PORT', 3010);
const servers = (readSetting('NATS_URL') ?? 'nats://127.0.0.1:4222').split(',').map((s) => s.trim());

const kc = new KubeConfig();
kc.loadFromDefault();
// Reconnect forever: JetStream being away is a reason to retry, not to exit.
const nc = await connect({ servers, name: 'orderflow-operator', maxReconnectAttempts: -1, user: readSetting('NATS_USER'), pass: readSetting('NATS_PASSWORD') });
const jsm = await jetstreamManager(nc);
const metrics = createMetrics({ defaultMetrics: true });
const operator = createOperator({
  kc,
  api: createKubeApi(kc),
  nc,
  js: jetstream(nc),
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
    { name: 'nats', check: () => (nc.isClosed() ? 'closed' : true) },
    { name: 'caches', check: () => operator.ready() || 'informer caches not synced' },
  ],
  details: () => ({ leader: operator.isLeader() }),
});
const server = serve({ fetch: app.fetch, port }, () => log.info({ port }, 'operator listening'));
operator.start();

exitOnSignals(
  async () => {
    accepting = false;
    // Release the lease first so a standby takes over without waiting for it to expire.
    await operator.stop();
    await nc.drain().catch(() => undefined);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  },
  { log, timeoutMs: intSetting('SHUTDOWN_TIMEOUT_MS', 20_000) },
);
