/**
 * The chart as the real helm renders it (scripts/tools.sh builds helm), for the operator tests
 * that run the operator with the chart's own ServiceAccount, Roles and settings.
 *
 * The official nats chart (a dependency in Chart.yaml) cannot be downloaded here, and helm
 * refuses to render a chart whose dependency is missing even with its condition off: unless
 * `helm dependency build` has fetched it, a copy of the chart without that entry is rendered, in
 * external-NATS mode — which changes none of the operator's objects.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parseDocument } from 'yaml';
import { ensureTools, toolBin } from '../../../test/support/tools.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHART = join(ROOT, 'charts/orderflow');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

/** The Kubernetes version helm renders for: the kube-apiserver the tests run (a plain go-built helm assumes v1.20). */
function kubeVersion(): string {
  const m = /k8s\.io\/kubernetes (v\d+\.\d+\.\d+)/.exec(readFileSync(join(ROOT, 'tools/kubernetes/go.mod'), 'utf8'));
  if (!m) throw new Error('tools/kubernetes/go.mod: no k8s.io/kubernetes requirement');
  return m[1]!;
}

/** `helm template <release> charts/orderflow --namespace <ns> -f values-dev.yaml` in external-NATS mode. */
export function renderChart(release: string, namespace: string, set: Record<string, string> = {}): K8sObject[] {
  ensureTools(['helm']);
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-chart-'));
  try {
    let chart = CHART;
    const vendored = existsSync(join(CHART, 'charts')) && readdirSync(join(CHART, 'charts')).some((f) => f.startsWith('nats'));
    if (!vendored) {
      chart = join(dir, 'orderflow');
      cpSync(CHART, chart, { recursive: true });
      const meta = parseDocument(readFileSync(join(chart, 'Chart.yaml'), 'utf8'));
      meta.delete('dependencies');
      writeFileSync(join(chart, 'Chart.yaml'), meta.toString());
    }
    const values: Record<string, string> = {
      'nats.enabled': 'false',
      'nats.url': 'nats://nats:4222',
      'database.url': 'postgres://orderflow@postgres:5432/orderflow',
      ...set,
    };
    const out = execFileSync(
      toolBin('helm'),
      [
        'template',
        release,
        chart,
        '--namespace',
        namespace,
        '--kube-version',
        kubeVersion(),
        '-f',
        join(chart, 'values-dev.yaml'),
        ...Object.entries(values).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
      ],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          HELM_CACHE_HOME: join(dir, 'cache'),
          HELM_CONFIG_HOME: join(dir, 'config'),
          HELM_DATA_HOME: join(dir, 'data'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    return parseAllDocuments(out)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((d): d is K8sObject => Boolean(d?.kind));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

/** The operator's Deployment and the RBAC objects that serve its ServiceAccount. */
export function operatorObjects(docs: K8sObject[]): {
  deployment: K8sObject;
  serviceAccount: string;
  rbac: K8sObject[];
  env: Record<string, string>;
} {
  const deployment = docs.find((d) => d.kind === 'Deployment' && d.metadata.labels?.['app.kubernetes.io/component'] === 'operator');
  if (!deployment) throw new Error('the chart rendered no operator Deployment');
  const pod = (
    deployment as unknown as {
      spec: { template: { spec: { serviceAccountName: string; containers: { env?: { name: string; value?: string }[] }[] } } };
    }
  ).spec.template.spec;
  const serviceAccount = pod.serviceAccountName;
  const bindsOurs = (b: K8sObject): boolean =>
    ((b as unknown as { subjects?: { kind: string; name: string }[] }).subjects ?? []).some(
      (s) => s.kind === 'ServiceAccount' && s.name === serviceAccount,
    );
  const bindings = docs.filter((d) => (d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding') && bindsOurs(d));
  const roleNames = new Set(
    bindings.map((b) => {
      const { roleRef } = b as unknown as { roleRef: { kind: string; name: string } };
      return `${roleRef.kind}/${roleRef.name}`;
    }),
  );
  const rbac = docs.filter(
    (d) =>
      RBAC_KINDS.has(d.kind) &&
      ((d.kind === 'ServiceAccount' && d.metadata.name === serviceAccount) ||
        bindings.includes(d) ||
        roleNames.has(`${d.kind}/${d.metadata.name}`)),
  );
  const env = Object.fromEntries((pod.containers[0]?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
  return { deployment, serviceAccount, rbac, env };
}
