/**
 * charts/orderflow rendered by the real helm (.tools/bin/helm, scripts/tools.sh): `helm lint
 * --strict` and `helm template` for the default, dev and auth values, every rendered document
 * checked against its Kubernetes OpenAPI schema (kubernetes-models) or its CRD, and the invariants
 * a zero-loss rolling deploy needs. The API server's own verdict is in helm-install.test.ts.
 * Without the nats subchart (not downloadable here) helm renders our templates only; see helm.ts.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  lint,
  render,
  renderFailure,
  mergeValues,
  chartDefaults,
  valuesFile,
  sourceChart,
  root,
  NATS_AUTH_PASSWORDS,
  type Dict,
} from './helm.js';
import { validateK8s, knownKind, yamlFiles, loadDocs, crdValidators } from './k8s-validate.js';
import { platformTopology } from '../support/topology.js';

const DB = { database: { url: 'postgres://orderflow:pw@db:5432/orderflow' } };
const GATEWAY = { paymentService: { gatewayUrl: 'https://payments.example.com' } };

/** The value sets CI lints and renders: default, dev and auth (the chart's own overlays), and more. */
const SCENARIOS: Record<string, (Dict | string)[]> = {
  default: [DB, GATEWAY],
  dev: [valuesFile('values-dev.yaml'), DB],
  auth: [valuesFile('values-nats-auth.yaml'), DB, GATEWAY, NATS_AUTH_PASSWORDS],
  externalNatsAuthHpa: [
    DB,
    {
      nats: { enabled: false, url: 'tls://nats-a.example.com:4222,tls://nats-b.example.com:4222' },
      natsAuth: { existingSecret: 'nats-auth', credsSecret: 'nats-creds', tlsSecret: 'nats-tls' },
      database: { url: '', existingSecret: 'pg-app', existingSecretKey: 'uri' },
      subjectNamespace: 'staging',
      otel: { endpoint: 'http://otel-collector.observability:4318' },
      networkPolicy: {
        otlp: { port: 4318, to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }] },
      },
      sandboxGateway: { enabled: true },
      orderService: { autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 8, targetCPUUtilizationPercentage: 60 } },
    },
  ],
  databasePerService: [
    GATEWAY,
    {
      database: {
        services: {
          orderService: { url: 'postgres://o@orders-db:5432/orders' },
          inventoryService: { existingSecret: 'inventory-db', existingSecretKey: 'uri' },
          paymentService: { url: 'postgres://p@payments-db:5432/payments' },
        },
      },
    },
  ],
};

/** values.yaml merged with a scenario's object values (files ignored), to read the effective settings. */
function effective(scenario: (Dict | string)[]): Dict {
  return scenario.reduce<Dict>((acc, v) => (typeof v === 'string' ? acc : mergeValues(acc, v)), chartDefaults());
}

const crdDocs = (dir: string) =>
  yamlFiles(dir)
    .flatMap((f) => loadDocs(f, root))
    .map((d) => d.doc)
    .filter((d) => d.kind === 'CustomResourceDefinition');
const chartCrds = crdDocs(join(sourceChart, 'crds'));
const crValidators = crdValidators(chartCrds);

function validateAny(doc: Dict, where: string): void {
  const av = String(doc.apiVersion);
  const kind = String(doc.kind);
  if (knownKind(doc)) {
    try {
      validateK8s(doc);
    } catch (e) {
      throw new Error(`${where} ${kind}: ${(e as Error).message}`, { cause: e });
    }
    return;
  }
  if (av.startsWith('jetstream.orderflow.dev/')) {
    const v = crValidators.get(`${av}/${kind}`);
    if (!v) throw new Error(`${where}: no CRD in charts/orderflow/crds serves ${av}/${kind}`);
    if (!v(doc)) throw new Error(`${where} ${kind}: ${JSON.stringify(v.errors)}`);
    return;
  }
  throw new Error(`${where}: unknown apiVersion/kind ${av}/${kind}`);
}

type Container = {
  name: string;
  env?: { name: string; value?: string }[];
  securityContext?: Dict;
  livenessProbe?: Dict;
  readinessProbe?: Dict;
  startupProbe?: Dict;
  lifecycle?: Dict;
  resources?: Dict;
};
type PodSpec = {
  containers: Container[];
  securityContext?: Dict;
  terminationGracePeriodSeconds?: number;
  topologySpreadConstraints?: unknown[];
};
const podSpec = (d: Dict) => ((d.spec as Dict).template as Dict).spec as PodSpec;
const podLabels = (d: Dict) => (((d.spec as Dict).template as Dict).metadata as Dict).labels as Record<string, string>;
const matches = (sel: Record<string, string> | undefined, labels: Record<string, string>) =>
  !!sel && Object.entries(sel).every(([k, v]) => labels[k] === v);

describe('helm lint --strict', () => {
  it.each(['default', 'dev', 'auth'])('%s values', (name) => {
    expect(lint(SCENARIOS[name]!)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('fails on values the schema rejects (so the lint tests can fail)', () => {
    expect(() => lint([DB, GATEWAY, { logLevel: 'loud' }])).toThrow(/logLevel/);
  });
});

describe('values.schema.json, as helm applies it', () => {
  it.each([
    [{ logLevel: 'loud' }, /logLevel/],
    [{ orderService: { port: 70000 } }, /port/],
    [{ jetstream: { replicas: 7 } }, /replicas/],
    [{ jetstream: { consumerDefaults: { ackWait: '30 seconds' } } }, /ackWait/],
    [{ nats: { enabled: false, url: '' } }, /url|nats/],
    [{ podSecurityContext: { runAsNonRoot: false } }, /runAsNonRoot/],
    [{ unknownTopLevel: true }, /unknownTopLevel/],
    [{ sandboxGateway: { failureRate: 2 } }, /failureRate/],
    [{ database: { services: { orderService: { url: 'mysql://x' } } } }, /url/],
    [{ database: { services: { shippingService: { url: 'postgres://x' } } } }, /shippingService/],
  ] as [Dict, RegExp][])('rejects %j', (bad, re) => {
    const msg = renderFailure([DB, GATEWAY, bad]);
    expect(msg).toMatch(/schema/i);
    expect(msg).toMatch(re);
  });

  it('values.yaml is documented: every top-level key has a comment above it or its first field', () => {
    const lines = readFileSync(join(sourceChart, 'values.yaml'), 'utf8').split('\n');
    lines.forEach((l, i) => {
      if (!/^[A-Za-z_]\w*:/.test(l)) return;
      const documented = /^\s*#/.test(lines[i - 1] ?? '') || /^\s*#/.test(lines[i + 1] ?? '');
      expect(documented, l).toBe(true);
    });
  });
});

describe('chart static parts', () => {
  it('the bundled NATS values ask for 3 clustered servers on JetStream file storage', () => {
    const nats = chartDefaults().nats as { config: { cluster: Dict; jetstream: { enabled: boolean; fileStore: Dict } } };
    expect(nats.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
    expect(nats.config.jetstream.enabled).toBe(true);
    expect(nats.config.jetstream.fileStore).toMatchObject({ enabled: true });
  });

  it('the CRDs in charts/orderflow/crds (their source; k8s/crds is generated from them) are valid', () => {
    expect(chartCrds.map((c) => String((c.metadata as Dict).name)).sort()).toEqual([
      'consumers.jetstream.orderflow.dev',
      'keyvalues.jetstream.orderflow.dev',
      'natsconnections.jetstream.orderflow.dev',
      'objectstores.jetstream.orderflow.dev',
      'streams.jetstream.orderflow.dev',
    ]);
    for (const crd of chartCrds) validateK8s(crd);
  });

  it('the Grafana dashboard is valid JSON and charts every platform metric', () => {
    const dash = JSON.parse(readFileSync(join(sourceChart, 'dashboards', 'orderflow.json'), 'utf8')) as {
      panels: { targets: { expr: string }[] }[];
    };
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    for (const m of [
      'orderflow_nats_published_total',
      'orderflow_nats_consumed_total',
      'orderflow_nats_failed_total',
      'orderflow_handler_duration_seconds',
      'orderflow_outbox_lag_seconds',
      'orderflow_consumer_pending',
      'orderflow_consumer_ack_pending',
      'orderflow_dlq_depth',
      'orderflow_circuit_breaker_state',
      'orderflow_saga_outcomes_total',
      'orderflow_order_e2e_seconds',
    ]) {
      expect(exprs, m).toContain(m);
    }
    expect(exprs).toMatch(/sum by \(subject\) \(rate\(orderflow_nats_failed_total/);
    expect(exprs).toMatch(/by \(outcome, reason\)/);
  });
});

describe.each(Object.entries(SCENARIOS))('helm template (%s)', (name, values) => {
  const docs = render(values);
  const deployments = docs.filter((d) => d.kind === 'Deployment');

  it('every rendered document validates against its Kubernetes / CRD schema', () => {
    for (const d of docs) validateAny(d, `${name}:${String((d.metadata as Dict).name)}`);
    const kinds = new Set(docs.map((d) => String(d.kind)));
    const expected = ['Deployment', 'Service', 'ConfigMap', 'NetworkPolicy', 'Role', 'RoleBinding', 'ServiceAccount', 'Stream', 'Consumer'];
    if (name !== 'dev') expected.push('PodDisruptionBudget'); // dev runs one replica of each, no PDBs
    for (const k of expected) expect(kinds, k).toContain(k);
  });

  it('no two resources share a kind and name', () => {
    const ids = docs.map((d) => `${String(d.kind)}/${String((d.metadata as Dict).name)}`);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it(
    'pods are hardened and drain safely: non-root, read-only root fs, no capabilities, RuntimeDefault seccomp, ' +
      'probes, preStop, grace >= drain',
    () => {
      const v = effective(values) as { shutdown: { timeoutMs: number; preStopSleepSeconds: number } };
      expect(deployments.length).toBeGreaterThanOrEqual(4);
      for (const d of deployments) {
        const spec = podSpec(d);
        const n = String((d.metadata as Dict).name);
        expect(spec.securityContext, n).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
        for (const c of spec.containers) {
          expect(c.securityContext, n).toMatchObject({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          });
          expect(c.resources, n).toHaveProperty('limits');
          expect(c.readinessProbe, n).toBeDefined();
          if (n.endsWith('-jaeger')) continue;
          expect(c.livenessProbe, n).toMatchObject({ httpGet: { path: '/health' } });
          expect(c.readinessProbe, n).toMatchObject({ httpGet: { path: '/ready' } });
          expect(c.startupProbe, n).toMatchObject({ httpGet: { path: '/health' } });
          expect(c.lifecycle, n).toMatchObject({ preStop: { exec: { command: ['sleep', String(v.shutdown.preStopSleepSeconds)] } } });
          expect(spec.terminationGracePeriodSeconds!, n).toBeGreaterThanOrEqual(
            v.shutdown.preStopSleepSeconds + v.shutdown.timeoutMs / 1000,
          );
          expect(spec.topologySpreadConstraints?.length, n).toBeGreaterThan(0);
          expect((d.spec as { strategy?: { rollingUpdate?: Dict } }).strategy?.rollingUpdate, n).toMatchObject({ maxUnavailable: 0 });
        }
      }
    },
  );

  it('Services, PDBs, HPAs and NetworkPolicies select pods that exist', () => {
    const pods = deployments.map(podLabels);
    for (const d of docs) {
      const n = `${String(d.kind)}/${String((d.metadata as Dict).name)}`;
      const spec = d.spec as Dict;
      if (d.kind === 'Service')
        expect(
          pods.some((l) => matches(spec.selector as Record<string, string>, l)),
          n,
        ).toBe(true);
      if (d.kind === 'PodDisruptionBudget' || d.kind === 'NetworkPolicy') {
        const sel = ((d.kind === 'NetworkPolicy' ? spec.podSelector : spec.selector) as { matchLabels: Record<string, string> })
          .matchLabels;
        expect(
          pods.some((l) => matches(sel, l)),
          n,
        ).toBe(true);
      }
      if (d.kind === 'HorizontalPodAutoscaler') {
        const target = (spec.scaleTargetRef as Dict).name;
        expect(
          deployments.some((x) => (x.metadata as Dict).name === target),
          n,
        ).toBe(true);
      }
    }
  });

  // The topology is derived from the service definitions (test/support/topology.ts): a consumer a service declares needs its resource here.
  it('Stream/Consumer resources equal the derived topology (streams, filters, maxDeliver 5, ackWait 30s, backoff, DLQ subjects)', () => {
    const v = effective(values) as { subjectNamespace: string; jetstream: { replicas: number } };
    const replicas = name === 'dev' ? 1 : v.jetstream.replicas; // values-dev.yaml (a file) sets R1
    const topo = platformTopology({ namespace: v.subjectNamespace, replicas, storage: 'file' });
    const streams = docs.filter((d) => d.kind === 'Stream').map((d) => d.spec as Dict);
    const consumers = docs.filter((d) => d.kind === 'Consumer').map((d) => d.spec as Dict);
    expect(streams.map((s) => s.name).sort()).toEqual(topo.streams.map((s) => s.name).sort());
    for (const s of topo.streams) {
      expect(
        streams.find((x) => x.name === s.name),
        s.name,
      ).toMatchObject({
        subjects: s.subjects,
        storage: s.storage,
        replicas: s.replicas,
        retention: s.retention,
        maxAge: s.maxAge,
        duplicateWindow: s.duplicateWindow,
      });
    }
    expect(consumers).toHaveLength(topo.consumers.length);
    for (const c of topo.consumers) {
      expect(
        consumers.find((x) => x.durableName === c.durableName),
        c.durableName,
      ).toMatchObject({
        streamName: c.streamName,
        filterSubject: c.filterSubject,
        ackPolicy: 'explicit',
        ackWait: '30s',
        maxDeliver: 5,
        backoff: ['1s', '5s', '15s', '30s'],
        deadLetter: c.deadLetter,
      });
    }
  });

  it(
    'NetworkPolicies: egress only to DNS, NATS, Postgres, order-service (inventory, payment), the gateway ' +
      '(payment), OTLP and the API server (operator)',
    () => {
      for (const d of docs.filter((x) => x.kind === 'NetworkPolicy')) {
        const spec = d.spec as { policyTypes: string[]; egress: { ports?: { port: number | string }[] }[] };
        expect(spec.policyTypes).toEqual(['Ingress', 'Egress']);
        const ports = new Set(spec.egress.flatMap((e) => (e.ports ?? []).map((p) => p.port)));
        // 3001-3003: the console's egress to the services' HTTP endpoints (its only peers besides NATS).
        // 3001: inventory and payment ask order-service how an order ended.
        const allowed = String((d.metadata as Dict).name).endsWith('-console')
          ? [53, 4222, 3001, 3002, 3003]
          : [53, 4222, 5432, 443, 6443, 3001, 3004, 4318];
        for (const p of ports) expect(allowed, `${String((d.metadata as Dict).name)} egress port ${String(p)}`).toContain(p);
      }
    },
  );
});

describe('chart refuses unsafe or incomplete values', () => {
  it.each([
    ['no database', [GATEWAY], /database.url or database.existingSecret/],
    ['no gateway', [DB], /gatewayUrl is required/],
    ['external NATS without url', [DB, GATEWAY, { nats: { enabled: false } }], /nats.url is required|\/nats\/url/],
    [
      'grace period shorter than the drain',
      [DB, GATEWAY, { shutdown: { terminationGracePeriodSeconds: 20 } }],
      /terminationGracePeriodSeconds/,
    ],
  ] as [string, Dict[], RegExp][])('%s', (_name, values, re) => {
    expect(renderFailure(values)).toMatch(re);
  });

  it('dev values wire the OTLP endpoint to the in-chart Jaeger', () => {
    const docs = render(SCENARIOS.dev!);
    const cm = docs.find((d) => d.kind === 'ConfigMap' && String((d.metadata as Dict).name).endsWith('-config'))!;
    expect((cm.data as Dict).OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://orderflow-jaeger:4318');
    expect(docs.some((d) => d.kind === 'Service' && (d.metadata as Dict).name === 'orderflow-jaeger')).toBe(true);
    const prod = render(SCENARIOS.default!);
    expect(prod.some((d) => String((d.metadata as Dict).name).endsWith('-jaeger'))).toBe(false);
  });
});
