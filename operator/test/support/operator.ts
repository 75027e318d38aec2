/**
 * An operator in-process for the tests: its own metrics, the status writes it makes counted, and
 * helpers to read what it wrote (reconcile counts by outcome, Events about a resource).
 */
import { EventsV1Api, type KubeConfig, type EventsV1Event } from '@kubernetes/client-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Connected } from '@orderflow/kit';
import type { DefaultConnection } from '../../src/connections.js';
import { createKubeApi, type KubeApi } from '../../src/kube-api.js';
import { createMetrics, type OperatorMetrics } from '../../src/metrics.js';
import { createOperator, type Operator, type OperatorOptions } from '../../src/operator.js';

export interface TestOperator {
  op: Operator;
  metrics: OperatorMetrics;
  statusWrites(): number;
  /** Reconciles counted by the operator, optionally of one outcome label. */
  reconciles(kind: 'Stream' | 'Consumer' | 'NatsConnection', outcome?: string): Promise<number>;
}

/** A fixed connection as the operator's default one (what the kit's NatsManager gives in main.ts). */
export async function fixedConnection(nc: NatsConnection): Promise<DefaultConnection> {
  const conn: Connected = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  return { connection: () => conn, onConnection: (fn) => void fn(conn) };
}

export async function startTestOperator(
  o: {
    kc: KubeConfig;
    /** The default connection: a fixed one, or any DefaultConnection (e.g. a NatsManager). */
    nc?: NatsConnection;
    nats?: DefaultConnection;
    namespace: string;
    log: Logger;
    identity?: string;
    leaseName?: string;
    /** The operator's API calls through this (still to the real API server), e.g. to meet a write in between. */
    wrapApi?: (api: KubeApi) => KubeApi;
  } & Partial<Pick<OperatorOptions, 'mode' | 'resyncMs' | 'advisories' | 'lease' | 'natsServers' | 'connectionBackoff'>>,
): Promise<TestOperator> {
  const metrics = createMetrics();
  const real = createKubeApi(o.kc);
  const api = o.wrapApi ? o.wrapApi(real) : real;
  let writes = 0;
  const op = createOperator({
    kc: o.kc,
    api: {
      ...api,
      patchStatus: (...args) => {
        writes++;
        return api.patchStatus(...args);
      },
    },
    nats: o.nats ?? (await fixedConnection(o.nc!)),
    natsServers: o.natsServers,
    connectionBackoff: o.connectionBackoff ?? { initialMs: 100, maxMs: 1000 },
    log: o.log,
    metrics,
    identity: o.identity ?? 'op-a',
    namespace: o.namespace,
    lease: o.lease ?? {
      namespace: o.namespace,
      name: o.leaseName ?? 'orderflow-operator',
      durationMs: 6000,
      renewDeadlineMs: 4000,
      retryPeriodMs: 300,
    },
    resyncMs: o.resyncMs ?? 300,
    requeue: { baseDelayMs: 50, maxDelayMs: 1000 },
    mode: o.mode,
    advisories: o.advisories,
  });
  op.start();
  return {
    op,
    metrics,
    statusWrites: () => writes,
    reconciles: async (kind, outcome) =>
      (await metrics.reconciles.get()).values
        .filter((v) => v.labels.kind === kind && (outcome === undefined || v.labels.outcome === outcome))
        .reduce((a, v) => a + v.value, 0),
  };
}

/** Events (events.k8s.io/v1) about one resource, oldest first. */
export async function eventsFor(kc: KubeConfig, namespace: string, kind: string, name: string): Promise<EventsV1Event[]> {
  const list = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace });
  return list.items
    .filter((e) => e.regarding?.kind === kind && e.regarding.name === name)
    .sort((a, b) => new Date(a.eventTime as unknown as string).getTime() - new Date(b.eventTime as unknown as string).getTime());
}
