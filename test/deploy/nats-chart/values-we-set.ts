/**
 * The value paths charts/orderflow's values files hand to the official nats chart: every leaf
 * under `nats:` except the keys this chart reads itself (`enabled` is the dependency's condition,
 * `url` the external-NATS address; helm passes both down and the nats chart ignores them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { describeValues } from './describe-values.js';

export const OURS = new Set(['enabled', 'url']);
export const VALUES_FILES = ['values.yaml', 'values-dev.yaml', 'values-nats-auth.yaml'];

/** A path segment as written in values-we-set.yaml: quoted when it contains a dot. */
const segment = (s: string) => (s.includes('.') ? JSON.stringify(s) : s);

/** file -> sorted value paths (segments joined by '.', dotted keys quoted) it sets under nats:. */
export function natsValuesWeSet(chartDir: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const file of VALUES_FILES) {
    const nats = (YAML.parse(readFileSync(join(chartDir, file), 'utf8')) as { nats?: Record<string, unknown> }).nats ?? {};
    const sub = Object.fromEntries(Object.entries(nats).filter(([k]) => !OURS.has(k)));
    out[file] = leafPaths(sub)
      .map((p) => p.map(segment).join('.'))
      .sort();
  }
  return out;
}

function leafPaths(v: unknown, prefix: string[] = []): string[][] {
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
    return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => leafPaths(x, [...prefix, k]));
  }
  return [prefix];
}

/** Splits a path of values-we-set.yaml back into segments. */
export function splitPath(path: string): string[] {
  return [...path.matchAll(/"((?:[^"\\]|\\.)*)"|([^.]+)/g)].map((m) => (m[1] !== undefined ? (JSON.parse(`"${m[1]}"`) as string) : m[2]!));
}

export { describeValues };
