/**
 * Deploy artefacts checked without a cluster or the helm binary: k8s/ manifests and the rendered
 * chart against Kubernetes OpenAPI schemas (kubernetes-models), custom resources against the CRDs'
 * openAPIV3Schema, values files against values.schema.json, the chart's topology against the kit's,
 * and the invariants a zero-loss rolling deploy needs. See docs/deploy.md for what needs a cluster.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Ajv } from 'ajv';
import { loadChart, renderChart, documents, mergeValues, FailError } from './helm-lite.js';
import { plainManifests } from './plain-manifests.js';
import { validateK8s, knownKind, yamlFiles, loadDocs, crdValidators, type Dict } from './k8s-validate.js';
import { platformTopology } from '../../services/kit/src/topology.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const chartDir = join(root, 'charts', 'orderflow');
const chart = loadChart(chartDir);
const DB = { database: { url: 'postgres://orderflow:pw@db:5432/orderflow' } };
const devValues = YAML.parse(readFileSync(join(chartDir, 'values-dev.yaml'), 'utf8')) as Dict;

/** Value sets the chart is rendered with: production-like, dev overlay, external NATS + auth + HPA. */
const SCENARIOS: Record<string, Dict> = {
  production: { ...DB, paymentService: { gatewayUrl: 'https://payments.example.com' } },
  dev: mergeValues(devValues, DB),
  externalNatsAuthHpa: mergeValues(DB, {
    nats: { enabled: false, url: 'tls://nats-a.example.com:4222,tls://nats-b.example.com:4222' },
    natsAuth: { existingSecret: 'nats-auth', credsSecret: 'nats-creds', tlsSecret: 'nats-tls' },
    database: { url: '', existingSecret: 'pg-app', existingSecretKey: 'uri' },
    subjectNamespace: 'staging',
    otel: { endpoint: 'http://otel-collector.observability:4318' },
    networkPolicy: { otlp: { port: 4318, to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }] } },
    sandboxGateway: { enabled: true },
    orderService: { autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 8, targetCPUUtilizationPercentage: 60 } },
  }),
  // One NATS user per workload (files/nats-auth.conf); details in nats-auth-chart.test.ts.
  perServiceNatsAuth: mergeValues(DB, {
    paymentService: { gatewayUrl: 'https://payments.example.com' },
    natsAuth: {
      perService: true,
      services: {
        orderService: { password: 'pw-order' },
        inventoryService: { existingSecret: 'nats-inventory' },
        paymentService: { password: 'pw-payment' },
        console: { existingSecret: 'nats-admin' },
        operator: { existingSecret: 'nats-admin' },
      },
    },
  }),
};

function render(values: Dict): Dict[] {
  return documents(renderChart(chart, { values })).map((d) => d.doc);
}

const crdDocs = (dir: string) => yamlFiles(dir).flatMap((f) => loadDocs(f, root)).map((d) => d.doc)
  .filter((d) => d.kind === 'CustomResourceDefinition');
const k8sCrds = crdDocs(join(root, 'k8s', 'crds'));
const chartCrds = crdDocs(join(chartDir, 'crds'));
const crValidators = crdValidators(k8sCrds.length ? k8sCrds : chartCrds);

function validateAny(doc: Dict, where: string): void {
  const av = String(doc.apiVersion);
  const kind = String(doc.kind);
  if (knownKind(doc)) {
    try { validateK8s(doc); } catch (e) { throw new Error(`${where} ${kind}: ${(e as Error).message}`, { cause: e }); }
    return;
  }
  if (av.startsWith('jetstream.orderflow.dev/')) {
    const v = crValidators.get(`${av}/${kind}`);
    if (!v) return; // CRDs not written yet: checked once k8s/crds exists
    if (!v(doc)) throw new Error(`${where} ${kind}: ${JSON.stringify(v.errors)}`);
    return;
  }
  throw new Error(`${where}: unknown apiVersion/kind ${av}/${kind}`);
}

type Container = { name: string; env?: { name: string; value?: string }[]; securityContext?: Dict; livenessProbe?: Dict; readinessProbe?: Dict; startupProbe?: Dict; lifecycle?: Dict; resources?: Dict };
type PodSpec = { containers: Container[]; securityContext?: Dict; terminationGracePeriodSeconds?: number; topologySpreadConstraints?: unknown[] };
const podSpec = (d: Dict) => ((d.spec as Dict).template as Dict).spec as PodSpec;
const podLabels = (d: Dict) => (((d.spec as Dict).template as Dict).metadata as Dict).labels as Record<string, string>;
const matches = (sel: Record<string, string> | undefined, labels: Record<string, string>) =>
  !!sel && Object.entries(sel).every(([k, v]) => labels[k] === v);

describe('the validators themselves', () => {
  it('reject a malformed Deployment and a malformed custom resource', () => {
    expect(() => validateK8s({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' },
      spec: { replicas: 'two', selector: {}, template: { spec: { containers: [{ image: 'a' }] } } } })).toThrow(/replicas must be integer/);
    expect(() => validateAny({ apiVersion: 'v9', kind: 'Nope' }, 'x')).toThrow(/unknown apiVersion/);
  });
});

describe('k8s/ plain manifests', () => {
  const files = yamlFiles(join(root, 'k8s'));
  it('exist for platform, nats and observability', () => {
    for (const dir of ['platform', 'nats', 'observability']) {
      expect(files.some((f) => f.includes(`/k8s/${dir}/`)), dir).toBe(true);
    }
  });

  it('every YAML document validates against the Kubernetes OpenAPI schema (or its CRD)', () => {
    let n = 0;
    for (const f of files) {
      for (const { file, doc } of loadDocs(f, root)) {
        validateAny(doc, file);
        n++;
      }
    }
    expect(n).toBeGreaterThan(20);
  });

  it('k8s/platform and k8s/observability are what scripts/gen-k8s-manifests.ts renders from the chart', () => {
    for (const [file, text] of plainManifests(root)) {
      const p = join(root, file);
      expect(existsSync(p), `${file} missing: run npx tsx scripts/gen-k8s-manifests.ts`).toBe(true);
      expect(readFileSync(p, 'utf8'), `${file} is stale: run npx tsx scripts/gen-k8s-manifests.ts`).toBe(text);
    }
  });

  it('NATS is a 3-node JetStream cluster on file storage with a quorum-keeping PDB', () => {
    const docs = loadDocs(join(root, 'k8s', 'nats', 'nats.yaml'), root).map((d) => d.doc);
    const sts = docs.find((d) => d.kind === 'StatefulSet')!;
    expect((sts.spec as Dict).replicas).toBe(3);
    const conf = String((docs.find((d) => d.kind === 'ConfigMap')!.data as Dict)['nats.conf']);
    expect(conf).toMatch(/jetstream\s*{[^}]*store_dir:\s*\/data/);
    expect(conf.match(/nats-\d\.nats-headless/g)).toHaveLength(3);
    expect((docs.find((d) => d.kind === 'PodDisruptionBudget')!.spec as Dict).maxUnavailable).toBe(1);
  });
});

describe('chart static parts', () => {
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as Dict;
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

  it('values.yaml and values-dev.yaml (merged) satisfy values.schema.json', () => {
    expect(validate(chart.defaults), JSON.stringify(validate.errors)).toBe(true);
    expect(validate(mergeValues(chart.defaults, devValues)), JSON.stringify(validate.errors)).toBe(true);
    for (const [name, v] of Object.entries(SCENARIOS)) {
      expect(validate(mergeValues(chart.defaults, v)), `${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it('values.schema.json rejects bad values', () => {
    const bad: Dict[] = [
      { logLevel: 'loud' },
      { orderService: { port: 70000 } },
      { jetstream: { replicas: 7 } },
      { jetstream: { consumerDefaults: { ackWait: '30 seconds' } } },
      { nats: { enabled: false, url: '' } },
      { podSecurityContext: { runAsNonRoot: false } },
      { unknownTopLevel: true },
      { sandboxGateway: { failureRate: 2 } },
    ];
    for (const b of bad) expect(validate(mergeValues(chart.defaults, b)), JSON.stringify(b)).toBe(false);
  });

  it('values.yaml is documented: every top-level key has a comment above it or its first field', () => {
    const lines = readFileSync(join(chartDir, 'values.yaml'), 'utf8').split('\n');
    lines.forEach((l, i) => {
      if (!/^[A-Za-z_]\w*:/.test(l)) return;
      const documented = /^\s*#/.test(lines[i - 1] ?? '') || /^\s*#/.test(lines[i + 1] ?? '');
      expect(documented, l).toBe(true);
    });
  });

  it('Chart.yaml depends on the official nats chart; its values ask for 3 clustered servers on JetStream file storage', () => {
    const deps = chart.meta.dependencies as { name: string; repository: string; condition: string }[];
    expect(deps).toContainEqual(expect.objectContaining({ name: 'nats', repository: 'https://nats-io.github.io/k8s/helm/charts/', condition: 'nats.enabled' }));
    const nats = chart.defaults.nats as { config: { cluster: Dict; jetstream: { enabled: boolean; fileStore: Dict } } };
    expect(nats.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
    expect(nats.config.jetstream.enabled).toBe(true);
    expect(nats.config.jetstream.fileStore).toMatchObject({ enabled: true });
  });

  it.skipIf(readdirSync(join(root, 'k8s')).includes('crds') === false || k8sCrds.length === 0)(
    'charts/orderflow/crds is identical to k8s/crds (scripts/sync-crds.mjs)', () => {
      const src = readdirSync(join(root, 'k8s', 'crds')).filter((f) => /\.ya?ml$/.test(f)).sort();
      const dst = existsSync(join(chartDir, 'crds')) ? readdirSync(join(chartDir, 'crds')).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
      expect(dst).toEqual(src);
      for (const f of src) {
        expect(readFileSync(join(chartDir, 'crds', f), 'utf8'), f).toBe(readFileSync(join(root, 'k8s', 'crds', f), 'utf8'));
      }
      for (const crd of chartCrds) validateK8s(crd);
    });

  it('the Grafana dashboard is valid JSON and charts every platform metric', () => {
    const dash = JSON.parse(readFileSync(join(chartDir, 'dashboards', 'orderflow.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    for (const m of ['orderflow_nats_published_total', 'orderflow_nats_consumed_total', 'orderflow_nats_failed_total',
      'orderflow_handler_duration_seconds', 'orderflow_outbox_lag_seconds', 'orderflow_consumer_pending',
      'orderflow_consumer_ack_pending', 'orderflow_dlq_depth', 'orderflow_circuit_breaker_state',
      'orderflow_saga_outcomes_total', 'orderflow_order_e2e_seconds']) {
      expect(exprs, m).toContain(m);
    }
    expect(exprs).toMatch(/sum by \(subject\) \(rate\(orderflow_nats_failed_total/);
    expect(exprs).toMatch(/by \(outcome, reason\)/);
  });
});

describe.each(Object.entries(SCENARIOS))('chart rendered with helm-lite (%s)', (name, values) => {
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

  it('pods are hardened and drain safely: non-root, read-only root fs, no capabilities, RuntimeDefault seccomp, probes, preStop, grace >= drain', () => {
    const v = mergeValues(chart.defaults, values) as { shutdown: { timeoutMs: number; preStopSleepSeconds: number } };
    expect(deployments.length).toBeGreaterThanOrEqual(4);
    for (const d of deployments) {
      const spec = podSpec(d);
      const n = String((d.metadata as Dict).name);
      expect(spec.securityContext, n).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      for (const c of spec.containers) {
        expect(c.securityContext, n).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        expect(c.resources, n).toHaveProperty('limits');
        expect(c.readinessProbe, n).toBeDefined();
        if (n.endsWith('-jaeger')) continue;
        expect(c.livenessProbe, n).toMatchObject({ httpGet: { path: '/health' } });
        expect(c.readinessProbe, n).toMatchObject({ httpGet: { path: '/ready' } });
        expect(c.startupProbe, n).toMatchObject({ httpGet: { path: '/health' } });
        expect(c.lifecycle, n).toMatchObject({ preStop: { exec: { command: ['sleep', String(v.shutdown.preStopSleepSeconds)] } } });
        expect(spec.terminationGracePeriodSeconds!, n).toBeGreaterThanOrEqual(v.shutdown.preStopSleepSeconds + v.shutdown.timeoutMs / 1000);
        expect(spec.topologySpreadConstraints?.length, n).toBeGreaterThan(0);
        expect((d.spec as { strategy?: { rollingUpdate?: Dict } }).strategy?.rollingUpdate, n).toMatchObject({ maxUnavailable: 0 });
      }
    }
  });

  it('Services, PDBs, HPAs and NetworkPolicies select pods that exist', () => {
    const pods = deployments.map(podLabels);
    for (const d of docs) {
      const n = `${String(d.kind)}/${String((d.metadata as Dict).name)}`;
      const spec = d.spec as Dict;
      if (d.kind === 'Service') expect(pods.some((l) => matches(spec.selector as Record<string, string>, l)), n).toBe(true);
      if (d.kind === 'PodDisruptionBudget' || d.kind === 'NetworkPolicy') {
        const sel = ((d.kind === 'NetworkPolicy' ? spec.podSelector : spec.selector) as { matchLabels: Record<string, string> }).matchLabels;
        expect(pods.some((l) => matches(sel, l)), n).toBe(true);
      }
      if (d.kind === 'HorizontalPodAutoscaler') {
        const target = (spec.scaleTargetRef as Dict).name;
        expect(deployments.some((x) => (x.metadata as Dict).name === target), n).toBe(true);
      }
    }
  });

  it('Stream/Consumer resources equal the kit topology (streams, filters, maxDeliver 5, ackWait 30s, backoff, DLQ subjects)', () => {
    const v = mergeValues(chart.defaults, values) as { subjectNamespace: string; jetstream: { replicas: number } };
    const topo = platformTopology({ namespace: v.subjectNamespace, replicas: v.jetstream.replicas, storage: 'file' });
    const streams = docs.filter((d) => d.kind === 'Stream').map((d) => d.spec as Dict);
    const consumers = docs.filter((d) => d.kind === 'Consumer').map((d) => d.spec as Dict);
    expect(streams.map((s) => s.name).sort()).toEqual(topo.streams.map((s) => s.name).sort());
    for (const s of topo.streams) {
      expect(streams.find((x) => x.name === s.name), s.name).toMatchObject({ subjects: s.subjects, storage: s.storage, replicas: s.replicas, retention: s.retention, maxAge: s.maxAge, duplicateWindow: s.duplicateWindow });
    }
    expect(consumers).toHaveLength(topo.consumers.length);
    for (const c of topo.consumers) {
      expect(consumers.find((x) => x.durableName === c.durableName), c.durableName).toMatchObject({
        streamName: c.streamName, filterSubject: c.filterSubject, ackPolicy: 'explicit', ackWait: '30s', maxDeliver: 5,
        backoff: ['1s', '5s', '15s', '30s'], deadLetter: c.deadLetter,
      });
    }
  });

  it('NetworkPolicies: egress only to DNS, NATS, Postgres, the gateway (payment), OTLP and the API server (operator)', () => {
    for (const d of docs.filter((x) => x.kind === 'NetworkPolicy')) {
      const spec = d.spec as { policyTypes: string[]; egress: { ports?: { port: number | string }[] }[] };
      expect(spec.policyTypes).toEqual(['Ingress', 'Egress']);
      const ports = new Set(spec.egress.flatMap((e) => (e.ports ?? []).map((p) => p.port)));
      // 3001-3003: the console's egress to the services' HTTP endpoints (its only peers besides NATS).
      const allowed = String((d.metadata as Dict).name).endsWith('-console') ? [53, 4222, 3001, 3002, 3003] : [53, 4222, 5432, 443, 6443, 3004, 4318];
      for (const p of ports) expect(allowed, `${String((d.metadata as Dict).name)} egress port ${String(p)}`).toContain(p);
    }
  });
});

describe('chart refuses unsafe or incomplete values', () => {
  it.each([
    ['no database', { paymentService: { gatewayUrl: 'https://p' } }, /database.url or database.existingSecret/],
    ['no gateway', { ...DB }, /gatewayUrl is required/],
    ['external NATS without url', { ...DB, paymentService: { gatewayUrl: 'https://p' }, nats: { enabled: false } }, /nats.url is required/],
    ['grace period shorter than the drain', { ...DB, paymentService: { gatewayUrl: 'https://p' }, shutdown: { terminationGracePeriodSeconds: 20 } }, /terminationGracePeriodSeconds/],
  ])('%s', (_name, values, re) => {
    expect(() => renderChart(chart, { values: values as Dict })).toThrow(FailError);
    expect(() => renderChart(chart, { values: values as Dict })).toThrow(re);
  });

  it('dev values wire the OTLP endpoint to the in-chart Jaeger', () => {
    const docs = render(SCENARIOS.dev!);
    const cm = docs.find((d) => d.kind === 'ConfigMap' && String((d.metadata as Dict).name).endsWith('-config'))!;
    expect((cm.data as Dict).OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://orderflow-jaeger:4318');
    expect(docs.some((d) => d.kind === 'Service' && (d.metadata as Dict).name === 'orderflow-jaeger')).toBe(true);
    const prod = render(SCENARIOS.production!);
    expect(prod.some((d) => String((d.metadata as Dict).name).endsWith('-jaeger'))).toBe(false);
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const instr = lines.map((l) => /^\s*([A-Z]+)\s/.exec(l)?.[1]).filter((x): x is string => !!x);
  it('is multi-stage, non-root, exec-form CMD, no HEALTHCHECK, no remote ADD, cached npm ci', () => {
    expect(instr.filter((i) => i === 'FROM').length).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/^ARG SERVICE$/m);
    const users = lines.filter((l) => /^\s*USER\s/.test(l));
    expect(users.at(-1)).toMatch(/USER\s+(node|nonroot|\d{3,})/);
    expect(instr).not.toContain('HEALTHCHECK');
    expect(lines.filter((l) => /^\s*ADD\s/.test(l) && /https?:\/\//.test(l))).toHaveLength(0);
    expect(text).toMatch(/--mount=type=cache,target=\/root\/\.npm\s*\\\s*\n\s*npm ci/);
    expect(text).toMatch(/turbo@?\S* prune/);
    const cmd = lines.filter((l) => /^\s*CMD\s/.test(l)).at(-1)!;
    expect(cmd).toMatch(/^CMD \[.*"node".*\]$/);
    // The last stage ships compiled output only: no COPY of the whole context.
    const last = text.slice(text.lastIndexOf('\nFROM '));
    expect(last).not.toMatch(/^COPY \. /m);
    expect(last).toMatch(/COPY --from=build/);
  });
  it('.dockerignore keeps node_modules, dist and .git out of the context', () => {
    const ign = readFileSync(join(root, '.dockerignore'), 'utf8');
    for (const p of ['**/node_modules', '**/dist', '.git']) expect(ign).toContain(p);
  });
});
