/**
 * The official nats chart as our dependency. Its chart repository cannot be reached from this
 * machine, so the chart is neither downloaded nor rendered here: the value paths we hand it
 * (nats-chart/values-we-set.yaml) are checked against a trimmed description of its values.yaml
 * (nats-chart/nats-2.14.2-values.yaml, key paths and kinds read from the chart source), and the
 * names and labels we derive from it against what its templates compute (quoted below from
 * helm/charts/nats/templates/_helpers.tpl at that version). Our own templates are rendered by the
 * real helm in external-NATS mode and, for our side of bundled mode, from a copy of the chart
 * without the dependency entry (test/deploy/helm.ts). The last test renders the real subchart
 * once `helm dependency build` has fetched it, and is skipped otherwise.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { render, sourceChart, natsSubchartPresent, type Dict } from './helm.js';
import { natsValuesWeSet, splitPath, VALUES_FILES } from './nats-chart/values-we-set.js';
import { kindOf, type Kind } from './nats-chart/describe-values.js';

const here = join(sourceChart, '..', '..', 'test', 'deploy', 'nats-chart');
const description = YAML.parse(readFileSync(join(here, 'nats-2.14.2-values.yaml'), 'utf8')) as {
  chart: string;
  version: string;
  paths: Record<string, Kind>;
};
const weSet = YAML.parse(readFileSync(join(here, 'values-we-set.yaml'), 'utf8')) as Record<string, string[]>;
const chartMeta = YAML.parse(readFileSync(join(sourceChart, 'Chart.yaml'), 'utf8')) as {
  dependencies: { name: string; version: string; repository: string; condition: string }[];
};

/** Why a value at `path` (value `v`) is not something the nats chart reads, or undefined if it is. */
export function checkPath(paths: Record<string, Kind>, path: string[], v: unknown): string | undefined {
  for (let i = 1; i < path.length; i++) {
    const kind = paths[path.slice(0, i).join('.')];
    if (kind === 'map') return undefined; // below a free-form map: any key
    if (kind !== undefined) return `${path.slice(0, i).join('.')} is a ${kind} in the nats chart, not a map`;
  }
  const full = path.join('.');
  const kind = paths[full];
  if (kind === undefined) {
    return Object.keys(paths).some((p) => p.startsWith(`${full}.`))
      ? `${full} is a tree of settings in the nats chart, not a value`
      : `${full} is not a value of the nats chart`;
  }
  const ours = kindOf(v);
  const fits =
    kind === ours || (kind === 'null' && ['string', 'int', 'number', 'bool'].includes(ours)) || (kind === 'number' && ours === 'int');
  return fits ? undefined : `${full}: the nats chart expects a ${kind}, we set a ${ours}`;
}

const valueAt = (obj: unknown, path: string[]) => path.reduce<unknown>((o, k) => (o as Dict | undefined)?.[k], obj);
const natsOf = (file: string) => (YAML.parse(readFileSync(join(sourceChart, file), 'utf8')) as { nats?: Dict }).nats ?? {};

describe('official nats chart dependency', () => {
  it('Chart.yaml depends on the 2.x line (chart version = NATS version, 2.12 and newer) at or above the described version', () => {
    const dep = chartMeta.dependencies.find((d) => d.name === 'nats');
    expect(dep).toMatchObject({ repository: 'https://nats-io.github.io/k8s/helm/charts/', condition: 'nats.enabled' });
    const m = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(dep!.version);
    expect(m, `caret range expected, got ${dep!.version}`).not.toBeNull();
    const [major, minor, patch] = m!.slice(1).map(Number) as [number, number, number];
    expect(major).toBe(2);
    const [dMajor, dMinor, dPatch] = description.version.split('.').map(Number) as [number, number, number];
    expect([major, minor, patch]).toEqual([dMajor, dMinor, dPatch]);
    expect(minor).toBeGreaterThanOrEqual(12);
  });

  it('values-we-set.yaml lists exactly the nats paths our values files set', () => {
    expect(Object.keys(weSet).sort()).toEqual([...VALUES_FILES].sort());
    expect(natsValuesWeSet(sourceChart), 'regenerate test/deploy/nats-chart/values-we-set.yaml (see its header)').toEqual(weSet);
  });

  it('every path we set is a value of the nats chart (or below one of its free-form maps), of the kind it expects', () => {
    const problems: string[] = [];
    for (const [file, paths] of Object.entries(weSet)) {
      const nats = natsOf(file);
      for (const p of paths) {
        const segs = splitPath(p);
        const why = checkPath(description.paths, segs, valueAt(nats, segs));
        if (why) problems.push(`${file}: nats.${p}: ${why}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the check catches a misspelt key, a value where the chart has settings, and a wrong kind', () => {
    expect(checkPath(description.paths, ['config', 'jetstream', 'fileStorage', 'enabled'], true)).toMatch(/not a value of the nats chart/);
    expect(checkPath(description.paths, ['config', 'jetstream'], true)).toMatch(/tree of settings/);
    expect(checkPath(description.paths, ['config', 'cluster', 'replicas'], 'three')).toMatch(/expects a int, we set a string/);
    expect(checkPath(description.paths, ['config', 'cluster', 'enabled', 'x'], 1)).toMatch(/is a bool in the nats chart/);
    expect(checkPath(description.paths, ['container', 'env', 'ANY', 'valueFrom'], {})).toBeUndefined();
  });

  it(
    'the features we rely on are in the description: $include keys in config.merge, ConfigMap merge, env from ' +
      'Secrets, topology spread by key',
    () => {
      for (const p of ['config.merge', 'configMap.merge', 'container.env', 'podTemplate.topologySpreadConstraints']) {
        expect(description.paths[p], p).toBe('map');
      }
      expect(description.paths['config.nats.port']).toBe('int');
      expect(description.paths.fullnameOverride).toBe('null');
      expect(description.paths.nameOverride).toBe('null');
    },
  );
});

describe("our side of bundled mode agrees with the nats chart's names and labels", () => {
  // From helm/charts/nats/templates/_helpers.tpl (2.14.2): "nats.fullname" is fullnameOverride,
  // else the release name when it contains the chart name ("nats"), else "<release>-nats";
  // "nats.selectorLabels" are app.kubernetes.io/name (= nameOverride or "nats"),
  // app.kubernetes.io/instance (= release) and app.kubernetes.io/component: nats; the client
  // Service is named nats.fullname and listens on config.nats.port (default 4222).
  const natsFullname = (release: string, override = '') => override || (release.includes('nats') ? release : `${release}-nats`);
  const base = { database: { url: 'postgres://u:p@db:5432/o' }, paymentService: { gatewayUrl: 'https://pay.example.com' } };

  it.each([
    ['orderflow', ''],
    ['my-nats-platform', ''],
    ['shop', 'bus'],
  ])('release %s (fullnameOverride "%s"): NATS_URL names the nats chart\'s client Service on 4222', (release, override) => {
    const docs = render([base, { nats: { fullnameOverride: override } }], { release });
    const cm = docs.find((d) => d.kind === 'ConfigMap' && String((d.metadata as Dict).name).endsWith('-config'))!;
    expect((cm.data as Dict).NATS_URL).toBe(`nats://${natsFullname(release, override)}:4222`);
  });

  it("NetworkPolicies reach the bundled NATS pods by the nats chart's selector labels", () => {
    expect(natsOf('values.yaml')).not.toHaveProperty('nameOverride');
    const docs = render([base], { release: 'orderflow' });
    const natsPeers = docs
      .filter((d) => d.kind === 'NetworkPolicy')
      .flatMap((d) => (d.spec as { egress: { to?: { podSelector?: { matchLabels: Dict } }[]; ports?: { port: number }[] }[] }).egress)
      .filter((e) => e.ports?.some((p) => p.port === 4222))
      .flatMap((e) => e.to ?? []);
    expect(natsPeers.length).toBeGreaterThan(0);
    const podLabels = {
      'app.kubernetes.io/name': 'nats',
      'app.kubernetes.io/instance': 'orderflow',
      'app.kubernetes.io/component': 'nats',
    };
    for (const peer of natsPeers) {
      for (const [k, v] of Object.entries(peer.podSelector!.matchLabels)) expect(podLabels, k).toHaveProperty([k], v);
    }
  });

  it.skipIf(!natsSubchartPresent())(
    'with the subchart fetched (helm dependency build): 3 clustered servers with JetStream on file storage',
    () => {
      const docs = render([base]);
      const sts = docs.find((d) => d.kind === 'StatefulSet' && ((d.metadata as Dict).labels as Dict)['app.kubernetes.io/name'] === 'nats')!;
      expect((sts.spec as Dict).replicas).toBe(3);
      const conf = String(
        (docs.find((d) => d.kind === 'ConfigMap' && (d.metadata as Dict).name === 'orderflow-nats-config')!.data as Dict)['nats.conf'],
      );
      expect(conf).toMatch(/jetstream/);
      expect(conf).toMatch(/cluster/);
    },
  );
});
