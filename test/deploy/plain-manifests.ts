/**
 * The plain kubectl manifests under k8s/crds, k8s/platform and k8s/observability: `helm template
 * --include-crds` of charts/orderflow (the real helm, test/deploy/helm.ts) with PLAIN_VALUES,
 * release and namespace "orderflow", split into one file per component, each object given its
 * namespace and the label app.kubernetes.io/managed-by: kubectl instead of helm's; the CRDs exactly
 * as the chart ships them (charts/orderflow/crds is their source). scripts/gen-k8s-manifests.ts
 * writes them; k8s-manifests.test.ts fails when the committed files differ from a fresh generation.
 * k8s/nats is the one hand-written part (the official nats chart cannot be rendered here).
 */
import YAML from 'yaml';
import { template, type Dict } from './helm.js';

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

/** The files scripts/gen-k8s-manifests.ts owns (it deletes others it finds in these directories). */
export const GENERATED_DIRS = ['k8s/crds', 'k8s/platform', 'k8s/observability'];

const HEADER = '# Generated from charts/orderflow by scripts/gen-k8s-manifests.ts (helm template); do not edit by hand.\n';
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition']);

function forKubectl(doc: Dict): Dict {
  const meta = (doc.metadata ?? {}) as Dict;
  const relabel = (labels: unknown) => {
    if (!labels || typeof labels !== 'object') return;
    const l = labels as Dict;
    delete l['helm.sh/chart'];
    l['app.kubernetes.io/managed-by'] = 'kubectl';
  };
  relabel(meta.labels);
  relabel((((doc.spec as Dict | undefined)?.template as Dict | undefined)?.metadata as Dict | undefined)?.labels);
  if (!CLUSTER_SCOPED.has(String(doc.kind))) doc.metadata = { name: meta.name, namespace: PLAIN_NAMESPACE, ...meta };
  return doc;
}

/** Which k8s/ file a rendered document belongs in. */
function home(source: string, doc: Dict): string {
  const name = String((doc.metadata as Dict).name);
  const component = String(((doc.metadata as Dict).labels as Dict | undefined)?.['app.kubernetes.io/component'] ?? '');
  if (source === 'templates/jaeger.yaml' || (doc.kind === 'NetworkPolicy' && name.endsWith('-jaeger')))
    return 'k8s/observability/jaeger.yaml';
  if (source === 'templates/dashboard.yaml') return 'k8s/observability/grafana-dashboard.yaml';
  const byTemplate: Record<string, string> = {
    'templates/configmap.yaml': 'k8s/platform/configmap.yaml',
    'templates/operator.yaml': 'k8s/platform/operator.yaml',
    'templates/networkpolicy.yaml': 'k8s/platform/networkpolicies.yaml',
    'templates/jetstream.yaml': 'k8s/platform/jetstream-resources.yaml',
  };
  if (byTemplate[source]) return byTemplate[source];
  if (source === 'templates/services.yaml' && component) return `k8s/platform/${component}.yaml`;
  throw new Error(`no k8s/ home for ${source} ${String(doc.kind)}/${name}`);
}

/** k8s/ path -> file text, freshly generated with helm. */
export function plainManifests(): Map<string, string> {
  const groups = new Map<string, Dict[]>();
  const add = (file: string, d: Dict) => groups.set(file, [...(groups.get(file) ?? []), d]);
  add('k8s/platform/00-namespace.yaml', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: PLAIN_NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
  });
  const out = new Map<string, string>();
  for (const { source, doc, text } of template([PLAIN_VALUES], { release: 'orderflow', namespace: PLAIN_NAMESPACE, includeCrds: true })) {
    if (source.startsWith('crds/')) out.set(`k8s/${source}`, HEADER + text);
    else add(home(source, doc), forKubectl(doc));
  }
  for (const [file, docs] of groups) {
    out.set(file, HEADER + docs.map((d) => YAML.stringify(d, { lineWidth: 0 })).join('---\n'));
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}
