/**
 * k8s/, the plain manifests for kubectl users, without a cluster: the generated parts equal a fresh
 * `helm template` (scripts/gen-k8s-manifests.ts), every document validates against the Kubernetes
 * OpenAPI schemas (kubernetes-models) or its CRD, and no object — Kubernetes or JetStream — is
 * defined twice. kubectl's own verdict (apply --dry-run=server) is in k8s-apply.test.ts.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { root, type Dict } from './helm.js';
import { plainManifests, GENERATED_DIRS } from './plain-manifests.js';
import { validateK8s, knownKind, yamlFiles, loadDocs, crdValidators } from './k8s-validate.js';

const files = yamlFiles(join(root, 'k8s'));
const all = files.flatMap((f) => loadDocs(f, root));
const crValidators = crdValidators(all.map((d) => d.doc).filter((d) => d.kind === 'CustomResourceDefinition'));

describe('k8s/ plain manifests', () => {
  it('the generated directories are exactly what scripts/gen-k8s-manifests.ts renders from the chart now', () => {
    const fresh = plainManifests();
    const committed = GENERATED_DIRS.flatMap((dir) =>
      existsSync(join(root, dir)) ? readdirSync(join(root, dir)).map((f) => `${dir}/${f}`) : [],
    );
    expect(committed.sort(), 'run npx tsx scripts/gen-k8s-manifests.ts').toEqual([...fresh.keys()].sort());
    for (const [file, text] of fresh) {
      expect(readFileSync(join(root, file), 'utf8'), `${file} is stale: run npx tsx scripts/gen-k8s-manifests.ts`).toBe(text);
    }
  });

  it(
    'hold the CRDs, the NATS cluster, the platform (operator and Stream/Consumer resources included) and ' +
      'observability, and nothing else',
    () => {
      expect(readdirSync(join(root, 'k8s')).sort()).toEqual(['crds', 'nats', 'observability', 'platform']);
      const kinds = new Set(all.map((d) => String(d.doc.kind)));
      for (const k of ['CustomResourceDefinition', 'Namespace', 'StatefulSet', 'Deployment', 'Role', 'Stream', 'Consumer'])
        expect(kinds, k).toContain(k);
    },
  );

  it('every YAML document validates against the Kubernetes OpenAPI schema (or its CRD)', () => {
    for (const { file, doc } of all) {
      const where = `${file} ${String(doc.kind)}/${String((doc.metadata as Dict).name)}`;
      if (knownKind(doc)) {
        try {
          validateK8s(doc);
        } catch (e) {
          throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
        }
        continue;
      }
      const v = crValidators.get(`${String(doc.apiVersion)}/${String(doc.kind)}`);
      expect(v, `${where}: no schema for ${String(doc.apiVersion)}`).toBeDefined();
      expect(v!(doc), `${where}: ${JSON.stringify(v!.errors)}`).toBe(true);
    }
    expect(all.length).toBeGreaterThan(30);
  });

  it(
    'no object is defined twice: no kind/namespace/name, no JetStream stream and no durable consumer in two ' + 'files or under two names',
    () => {
      const seen = new Map<string, string>();
      const claim = (key: string, file: string) => {
        expect(seen.get(key), `${key} in ${file} and ${seen.get(key)}`).toBeUndefined();
        seen.set(key, file);
      };
      for (const { file, doc } of all) {
        const meta = doc.metadata as Dict;
        const group = String(doc.apiVersion).includes('/') ? String(doc.apiVersion).split('/')[0] : 'core';
        claim(`${group}/${String(doc.kind)}/${String(meta.namespace ?? '')}/${String(meta.name)}`, file);
        const spec = doc.spec as Dict;
        if (doc.kind === 'Stream') claim(`jetstream stream ${String(spec.name)}`, file);
        if (doc.kind === 'Consumer') claim(`jetstream consumer ${String(spec.streamName)}/${String(spec.durableName)}`, file);
      }
    },
  );

  it('NATS is a 3-node JetStream cluster on file storage with a quorum-keeping PDB, on the 2.12+ line', () => {
    const docs = loadDocs(join(root, 'k8s', 'nats', 'nats.yaml'), root).map((d) => d.doc);
    const sts = docs.find((d) => d.kind === 'StatefulSet')!;
    expect((sts.spec as Dict).replicas).toBe(3);
    const image = String((sts.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]!.image);
    const [, major, minor] = /^nats:(\d+)\.(\d+)/.exec(image) ?? [];
    expect(Number(major) * 100 + Number(minor), image).toBeGreaterThanOrEqual(212);
    const conf = String((docs.find((d) => d.kind === 'ConfigMap')!.data as Dict)['nats.conf']);
    expect(conf).toMatch(/jetstream\s*{[^}]*store_dir:\s*\/data/);
    expect(conf.match(/nats-\d\.nats-headless/g)).toHaveLength(3);
    expect((docs.find((d) => d.kind === 'PodDisruptionBudget')!.spec as Dict).maxUnavailable).toBe(1);
  });
});
