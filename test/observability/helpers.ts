import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/nats-core';
import { Names } from '@orderflow/kit';
import {
  freePort,
  httpReady,
  launchProcess,
  removeTestNamespace,
  TEST_DATABASE_URL,
  TEST_NATS_URL,
  testNamespace,
  type LaunchedProcess,
} from '@orderflow/kit/testing';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Child extends LaunchedProcess {
  url: string;
}

/** Runs `node services/<name>/dist/main.js` (or another entry) and waits for /health or /ready. */
export async function startChild(
  name: string,
  entry: string,
  port: number,
  env: Record<string, string>,
  readyPath = '/ready',
): Promise<Child> {
  const url = `http://127.0.0.1:${port}`;
  const p = await launchProcess({
    name,
    args: [entry],
    cwd: ROOT,
    env: { ...env, PORT: String(port) },
    // The parent's OTEL_* must not leak into a child that is meant to run without them.
    inheritEnv: (k) => !k.startsWith('OTEL_'),
    ready: httpReady(`${url}${readyPath}`),
    readyTimeoutMs: 45_000,
  });
  return Object.assign(p, { url });
}

/** The sandbox gateway from its dist, answering at once (no simulated latency); `env` added. */
export const startGatewayChild = async (env: Record<string, string>): Promise<Child> =>
  startChild('sandbox-gateway', 'services/sandbox-gateway/dist/main.js', await freePort(), { SANDBOX_LATENCY_MS: '0', ...env }, '/health');

/** Env that sends a child's traces to `otlpHttpUrl` (a Jaeger), batched every 100 ms. */
export const otlpEnv = (otlpHttpUrl: string): Record<string, string> => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpHttpUrl,
  OTEL_BSP_SCHEDULE_DELAY: '100',
});

export const SAGA_SERVICES = ['inventory-service', 'payment-service', 'order-service'] as const;
export type SagaService = (typeof SAGA_SERVICES)[number];

/** Each saga service's own Postgres schema in the namespace. */
export const sagaSchemas = (namespace: string): Record<SagaService, string> =>
  Object.fromEntries(SAGA_SERVICES.map((s) => [s, `${namespace}_${s.split('-')[0]}`])) as Record<SagaService, string>;

/**
 * The saga services from their dist, all at once, on the shared NATS and Postgres in `namespace`,
 * each on its schema, with `env` added. Each is put in `children` as soon as it is up, so the
 * test's afterAll stops the ones that started even when another did not.
 */
export async function startSagaServices(
  children: Partial<Record<SagaService, Child>>,
  namespace: string,
  env: Record<string, string>,
): Promise<void> {
  const schemas = sagaSchemas(namespace);
  await Promise.all(
    SAGA_SERVICES.map(async (name) => {
      children[name] = await startChild(name, `services/${name}/dist/main.js`, await freePort(), {
        NATS_URL: TEST_NATS_URL,
        ORDERFLOW_NAMESPACE: namespace,
        DATABASE_URL: TEST_DATABASE_URL,
        DATABASE_SCHEMA: schemas[name],
        SEED_PRODUCTS: '[]',
        ...env,
      });
    }),
  );
}

/** A saga service, the sandbox gateway, or one more child a test starts (`Extra`). */
export type SagaChildName<Extra extends string = never> = SagaService | 'sandbox-gateway' | Extra;

export interface SagaChildren<Extra extends string = never> {
  /** The test's namespace (subjects, streams, schema prefix). */
  ns: string;
  names: Names;
  schemas: Record<SagaService, string>;
  /** Filled as the test starts them (startGatewayChild, startSagaServices, startChild). */
  children: Partial<Record<SagaChildName<Extra>, Child>>;
  /** A started child by name; throws naming it when it did not start. */
  svc(name: SagaChildName<Extra>): Child;
  /** Stops every child that started. */
  stopChildren(): Promise<void>;
  /** Removes the namespace's streams and the services' schemas. */
  removeNamespace(nc: NatsConnection | undefined): Promise<void>;
}

/** The declarations a test running the saga on child processes starts from, in a namespace of its own (`label`). */
export function sagaChildren<Extra extends string = never>(label: string): SagaChildren<Extra> {
  const ns = testNamespace(label);
  const schemas = sagaSchemas(ns);
  const children: Partial<Record<SagaChildName<Extra>, Child>> = {};
  return {
    ns,
    names: new Names(ns),
    schemas,
    children,
    svc: (name) => {
      const c = children[name];
      if (!c) throw new Error(`${name} not started`);
      return c;
    },
    stopChildren: async () => {
      await Promise.all(Object.values<Child | undefined>(children).map((c) => c?.stop()));
    },
    removeNamespace: (nc) => removeTestNamespace(nc, ns, Object.values(schemas)),
  };
}

// The one Prometheus text reader lives in the kit; re-exported for the saga trace test, whose
// import moves to '@orderflow/kit/testing' with the change another engineer has in progress there.
export { parseMetrics } from '@orderflow/kit/testing';
