/**
 * The Kubernetes manifests: CRDs and RBAC/Deployment validated against the Kubernetes OpenAPI
 * schemas (kubernetes-models), example resources validated against the CRDs' own
 * openAPIV3Schema (ajv), and the examples kept equal to the platform topology (derived from the
 * service definitions, test/support/topology.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import {
  CustomResourceDefinition,
  type ICustomResourceDefinition,
} from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { platformTopology } from '../../test/support/topology.js';
import { loadResources } from '../src/cli/load-resources.js';

const K8S = new URL('../../k8s/', import.meta.url).pathname;
type Doc = { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, unknown> };

// A directory of k8s/ or one file (the operator and the saga's resources live in the chart-generated k8s/platform).
function docs(path: string): Doc[] {
  const files = path.endsWith('.yaml')
    ? [path]
    : readdirSync(join(K8S, path))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => join(path, f));
  return files.flatMap((f) => parseAllDocuments(readFileSync(join(K8S, f), 'utf8')).map((d) => d.toJS() as Doc));
}

// ajv-formats is CommonJS with a default export.
type AddFormats = (a: Ajv) => Ajv;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as unknown as AddFormats;

const MODELS: Record<string, new (d: never) => { validate(): void }> = {
  CustomResourceDefinition: CustomResourceDefinition as never,
  ServiceAccount: ServiceAccount as never,
  ClusterRole: ClusterRole as never,
  ClusterRoleBinding: ClusterRoleBinding as never,
  Role: Role as never,
  RoleBinding: RoleBinding as never,
  Deployment: Deployment as never,
  Service: Service as never,
  PodDisruptionBudget: PodDisruptionBudget as never,
};

describe('manifests against the Kubernetes OpenAPI schemas', () => {
  for (const dir of ['crds', 'platform/operator.yaml']) {
    it(`k8s/${dir}/*.yaml are valid Kubernetes objects`, () => {
      const all = docs(dir);
      expect(all.length).toBeGreaterThan(0);
      for (const d of all) {
        const Model = MODELS[d.kind];
        expect(Model, `no model for ${d.kind}`).toBeDefined();
        expect(() => new Model!(d as never).validate(), `${d.kind}/${d.metadata.name}`).not.toThrow();
      }
    });
  }

  // Stream and Consumer were v1alpha1 first and keep serving it; the kinds added since start at v1beta1.
  const COLUMNS: Record<string, string[]> = {
    Stream: ['Ready', 'Messages', 'Pending', 'Ack Pending', 'Reason', 'Age'],
    Consumer: ['Stream', 'Ready', 'Pending', 'Ack Pending', 'Reason', 'Age'],
    KeyValue: ['Ready', 'Values', 'Bytes', 'Reason', 'Age'],
    ObjectStore: ['Ready', 'Bytes', 'Reason', 'Age'],
    NatsConnection: ['Ready', 'Server Version', 'Domain', 'Reason', 'Age'],
  };
  it(
    'CRDs: v1beta1 served and stored, v1alpha1 served with the same schema and columns where it existed (conversion None); ' +
      'status subresource; live numbers as printer columns',
    () => {
      const crds = docs('crds') as unknown as ICustomResourceDefinition[];
      expect(crds.map((c) => c.spec.names.kind).sort()).toEqual(Object.keys(COLUMNS).sort());
      for (const crd of crds) {
        const kind = crd.spec.names.kind;
        const [beta, alpha] = crd.spec.versions;
        expect(crd.spec.conversion?.strategy ?? 'None').toBe('None');
        if (kind === 'Stream' || kind === 'Consumer') {
          expect([beta, alpha].map((v) => [v!.name, v!.served, v!.storage])).toEqual([
            ['v1beta1', true, true],
            ['v1alpha1', true, false],
          ]);
          expect(alpha!.deprecated).toBe(true);
          expect(alpha!.schema).toEqual(beta!.schema);
          expect(alpha!.additionalPrinterColumns).toEqual(beta!.additionalPrinterColumns);
        } else {
          expect(
            crd.spec.versions.map((v) => [v.name, v.served, v.storage]),
            kind,
          ).toEqual([['v1beta1', true, true]]);
        }
        expect(beta!.subresources?.status).toEqual({});
        const columns = beta!.additionalPrinterColumns?.filter((c) => !c.priority).map((c) => c.name);
        expect(columns, kind).toEqual(COLUMNS[kind]);
      }
    },
  );
});

describe('example resources against the CRDs', () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const validators = new Map(
    (docs('crds') as unknown as ICustomResourceDefinition[]).map((crd) => [
      crd.spec.names.kind,
      ajv.compile(crd.spec.versions[0]!.schema!.openAPIV3Schema as object),
    ]),
  );

  it('every resource in k8s/platform/jetstream-resources.yaml validates', () => {
    const examples = docs('platform/jetstream-resources.yaml');
    expect(examples.map((d) => d.kind).sort()).toEqual([...Array(6).fill('Consumer'), ...Array(4).fill('Stream')]);
    for (const d of examples) {
      const validate = validators.get(d.kind)!;
      expect(validate(d), `${d.kind}/${d.metadata.name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
  });

  const bad: [string, string, Record<string, unknown>, string][] = [
    ['Stream', 'storage enum', { name: 'S', subjects: ['s.>'], storage: 'disk' }, 'must be equal to one of the allowed values'],
    ['Stream', 'maxAge pattern', { name: 'S', subjects: ['s.>'], maxAge: '7 days' }, 'must match pattern'],
    ['Stream', 'replicas minimum', { name: 'S', subjects: ['s.>'], replicas: 0 }, 'must be >= 1'],
    ['Stream', 'no subjects', { name: 'S', subjects: [] }, 'must NOT have fewer than 1 items'],
    ['Consumer', 'backoff pattern', { streamName: 'S', durableName: 'd', backoff: ['soon'] }, 'must match pattern'],
    ['Consumer', 'ackPolicy enum', { streamName: 'S', durableName: 'd', ackPolicy: 'maybe' }, 'allowed values'],
    ['Consumer', 'wildcard dead letter', { streamName: 'S', durableName: 'd', deadLetter: { subject: 'dlq.>' } }, 'must match pattern'],
    ['KeyValue', 'history maximum', { bucket: 'b', history: 65 }, 'must be <= 64'],
    ['KeyValue', 'bucket pattern', { bucket: 'a.b' }, 'must match pattern'],
    ['KeyValue', 'ttl pattern', { bucket: 'b', ttl: '1 day' }, 'must match pattern'],
    ['ObjectStore', 'storage enum', { bucket: 'b', storage: 'disk' }, 'must be equal to one of the allowed values'],
    ['ObjectStore', 'no bucket', { ttl: '1h' }, "must have required property 'bucket'"],
  ];
  it.each(bad)('%s with bad %s is rejected', (kind, _what, spec, message) => {
    const validate = validators.get(kind)!;
    expect(validate({ apiVersion: 'jetstream.orderflow.dev/v1beta1', kind, metadata: { name: 'x' }, spec })).toBe(false);
    expect(ajv.errorsText(validate.errors)).toContain(message);
  });

  it('k8s/platform/jetstream-resources.yaml is exactly the topology derived from the definitions (R3, kept on delete)', async () => {
    const t = platformTopology({ replicas: 3 });
    const keep = <T>(x: T) => ({ ...x, preventDelete: true });
    expect(await loadResources(join(K8S, 'platform', 'jetstream-resources.yaml'))).toEqual({
      streams: t.streams.map(keep),
      consumers: t.consumers.map(keep),
      keyValues: [],
      objectStores: [],
      namingConnections: [],
    });
  });
});
