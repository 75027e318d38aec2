/** Builds the plain kubectl manifests in k8s/platform and k8s/observability from the chart. */
import { join } from 'node:path';
import YAML from 'yaml';
import { loadChart, renderChart, documents } from './helm-lite.js';

type Dict = Record<string, unknown>;

export const PLAIN_NAMESPACE = 'orderflow';

/** Values the plain manifests are rendered with. */
export const PLAIN_VALUES: Dict = {
  nats: { enabled: false, url: 'nats://nats.orderflow.svc:4222' },
  database: { existingSecret: 'orderflow-db', existingSecretKey: 'DATABASE_URL' },
  sandboxGateway: { enabled: true },
  jaeger: { enabled: true },
  networkPolicy: {
    externalNats: { port: 4222, to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'nats' } } }] },
  },
};

const HEADER = (what: string) =>
  `# Generated from charts/orderflow by scripts/gen-k8s-manifests.ts (${what}); do not edit by hand.\n`;

function strip(doc: Dict): Dict {
  const meta = (doc.metadata ?? {}) as Dict;
  const cleanLabels = (labels: unknown) => {
    if (!labels || typeof labels !== 'object') return;
    const l = labels as Dict;
    delete l['helm.sh/chart'];
    l['app.kubernetes.io/managed-by'] = 'kubectl';
  };
  cleanLabels(meta.labels);
  const spec = doc.spec as Dict | undefined;
  const tmpl = spec?.template as Dict | undefined;
  if (tmpl) cleanLabels((tmpl.metadata as Dict | undefined)?.labels);
  const kind = String(doc.kind);
  if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition'].includes(kind)) {
    doc.metadata = { name: meta.name, namespace: PLAIN_NAMESPACE, ...meta };
  }
  return doc;
}

export function plainManifests(root: string): Map<string, string> {
  const chart = loadChart(join(root, 'charts', 'orderflow'));
  const rendered = renderChart(chart, { values: PLAIN_VALUES, releaseName: 'orderflow', namespace: PLAIN_NAMESPACE });
  const docs = documents(rendered);
  const groups = new Map<string, Dict[]>();
  const add = (file: string, d: Dict) => groups.set(file, [...(groups.get(file) ?? []), d]);
  add('k8s/platform/00-namespace.yaml', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: PLAIN_NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
  });
  for (const { file, doc } of docs) {
    const d = strip(doc);
    const kind = String(d.kind);
    const component = String(((d.metadata as Dict).labels as Dict | undefined)?.['app.kubernetes.io/component'] ?? '');
    if (file === 'jaeger.yaml' || (kind === 'NetworkPolicy' && String((d.metadata as Dict).name).endsWith('-jaeger'))) add('k8s/observability/jaeger.yaml', d);
    else if (file === 'dashboard.yaml') add('k8s/observability/grafana-dashboard.yaml', d);
    else if (file === 'configmap.yaml') add('k8s/platform/configmap.yaml', d);
    else if (file === 'operator.yaml') add('k8s/platform/operator.yaml', d);
    else if (file === 'networkpolicy.yaml') add('k8s/platform/networkpolicies.yaml', d);
    else if (file === 'jetstream.yaml') add('k8s/platform/jetstream-resources.yaml', d);
    else if (file === 'services.yaml') add(`k8s/platform/${component || 'misc'}.yaml`, d);
    else throw new Error(`no plain-manifest home for ${file} ${kind}`);
  }
  const out = new Map<string, string>();
  for (const [file, ds] of groups) {
    const body = ds.map((d) => YAML.stringify(d, { lineWidth: 0 })).join('---\n');
    out.set(file, HEADER('kubectl apply') + body);
  }
  return out;
}
