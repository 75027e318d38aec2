/**
 * Writes the trimmed description of the official nats chart's values.yaml that
 * nats-subchart.test.ts checks our value paths against: every key path and the kind of its
 * default, nothing else (no comments, no defaults, no templates). The chart cannot be downloaded
 * here; read its source (github.com/nats-io/k8s, helm/charts/nats) and run
 *   npx tsx test/deploy/nats-chart/describe-values.ts <path to its values.yaml> <chart version> <commit>
 * which prints the description to stdout.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';

export type Kind = 'map' | 'list' | 'null' | 'bool' | 'int' | 'number' | 'string';

/** Leaf key paths of a values tree with the kind of their default; an empty map is a free-form "map". */
export function describeValues(values: unknown, prefix: string[] = []): [string, Kind][] {
  if (values && typeof values === 'object' && !Array.isArray(values)) {
    const entries = Object.entries(values as Record<string, unknown>);
    if (entries.length === 0 && prefix.length > 0) return [[prefix.join('.'), 'map']];
    return entries.flatMap(([k, v]) => describeValues(v, [...prefix, k]));
  }
  return [[prefix.join('.'), kindOf(values)]];
}

export function kindOf(v: unknown): Kind {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'number';
  if (typeof v === 'string') return 'string';
  return 'map';
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/test\//, '/test/'))) {
  const [file, version, commit] = process.argv.slice(2);
  if (!file || !version || !commit) {
    console.error('usage: describe-values.ts <values.yaml> <chart version> <commit>');
    process.exit(2);
  }
  const paths = describeValues(YAML.parse(readFileSync(file, 'utf8')));
  if (paths.some(([p]) => p.split('.').some((s) => s === ''))) throw new Error('a key contains a dot: the path notation needs quoting');
  const out = [
    "# Key paths of the official nats Helm chart's values.yaml and the kind of each default",
    '# (map = a free-form map, {} by default: merge/patch blocks, env, labels; any key below it is',
    '# accepted). Written by test/deploy/nats-chart/describe-values.ts from the chart source; a',
    '# description, not a copy: no comments, defaults or templates.',
    YAML.stringify(
      {
        chart: 'nats',
        version,
        source: `https://github.com/nats-io/k8s/blob/${commit}/helm/charts/nats/values.yaml`,
        paths: Object.fromEntries(paths),
      },
      { lineWidth: 0 },
    ),
  ];
  process.stdout.write(out.join('\n'));
}
